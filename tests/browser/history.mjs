// Scrolling back through 500 stored messages: the join shows the latest, scrolling up loads
// older pages (native `history` with `before`) above them without moving what the reader was
// looking at, until the room's first message; every message once, in order, under a date line.

import { run, openPage, login, waitMessage, type, check, assertClean, NativeUser, waitText, shownMessages, WAIT } from './lib.mjs';

const COUNT = 500;
const label = (i) => `m-${String(i).padStart(3, '0')}`;

await run('history', async (browser) => {
  const seed = await NativeUser.login('seed');
  await seed.join('#big');
  // 500 messages through a native connection, all acknowledged (stored) before the page looks.
  for (let i = 1; i <= COUNT; i += 1) seed.send({ type: 'send', room: '#big', text: label(i), id: i });
  await seed.frame((f) => f.type === 'ack' && f.id === COUNT, 'the last ack');

  const page = await openPage(browser);
  await login(page, 'reader');
  await type(page, '/join #big');
  await waitText(page, '#conv-title', '#big');
  await waitMessage(page, label(COUNT), 'seed');
  const first = await shownMessages(page);
  check(first.length < COUNT && first.length >= 50, `the join showed ${first.length} messages`);
  check(first[first.length - 1].text === label(COUNT), 'the newest message is last');
  // The log starts at the bottom, on the newest message.
  const atBottom = await page.$eval('#log', (l) => l.scrollHeight - l.scrollTop - l.clientHeight < 5);
  check(atBottom, 'the log does not start scrolled to the newest message');

  // Scroll up until the room's beginning; each page lands above what was read.
  await page.locator('#log').hover();
  for (let round = 0; round < 40; round += 1) {
    if (await page.locator('#messages .log-start').count()) break;
    const before = (await shownMessages(page)).length;
    const topMid = await page.$eval('#messages .msg', (r) => r.dataset.mid);
    await page.mouse.wheel(0, -100_000);
    await page.waitForFunction((n) => document.querySelectorAll('#messages .msg').length > n || document.querySelector('#messages .log-start'), before, { timeout: WAIT });
    // What was at the top is still where the reader left it: not scrolled away to the top.
    const kept = await page.$eval('#log', (l, mid) => {
      const row = l.querySelector(`.msg[data-mid="${mid}"]`);
      return row.getBoundingClientRect().top - l.getBoundingClientRect().top;
    }, topMid);
    check(kept >= -5, `after loading older messages the previous top row is ${kept}px above the view`);
  }
  await page.locator('#messages .log-start', { hasText: 'This is the beginning of #big.' }).waitFor({ timeout: WAIT });
  const all = await shownMessages(page);
  check(all.length === COUNT, `${all.length} messages shown, not ${COUNT}`);
  for (let i = 0; i < COUNT; i += 1) {
    check(all[i].text === label(i + 1), `message ${i} is ${all[i].text}, not ${label(i + 1)}`);
  }
  check(await page.locator('#messages .day', { hasText: 'Today' }).count() === 1, 'one "Today" date line');

  // Reading the beginning, a new message does not pull the reader down: a button says so.
  const reading = await page.$eval('#log', (l) => l.scrollTop);
  await seed.say('#big', 'fresh news');
  await page.locator('#jump').waitFor({ state: 'visible', timeout: WAIT });
  const top = await page.$eval('#log', (l) => l.scrollTop);
  check(Math.abs(top - reading) < 5, `the log moved from ${reading} to ${top} when a message came`);
  await page.locator('#jump').click();
  await page.locator('#jump').waitFor({ state: 'hidden', timeout: WAIT });
  const bottom = await page.$eval('#log', (l) => l.scrollHeight - l.scrollTop - l.clientHeight);
  check(bottom < 5, `after the jump the log is ${bottom}px above its end`);
  assertClean(page);
});
