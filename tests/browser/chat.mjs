// A browser user chats with a native-protocol user and a text-mode (nc) user in the same
// room, joins a room it operates, sets its topic, talks privately, and finds unread counts,
// mentions, the "new messages" line, slash commands and keyboard switching where a user
// would look for them.

import { run, openPage, login, waitMessage, type, openConv, check, assertClean, NativeUser, TextUser, waitText, shownMessages, WAIT } from './lib.mjs';

await run('chat', async (browser) => {
  const nat = await NativeUser.login('nat');
  const txt = await TextUser.login('txt');
  const page = await openPage(browser);
  // The browser's notifications, recorded: the permission asked, the notifications shown.
  await page.addInitScript(() => {
    window.__asked = 0;
    window.__shown = [];
    window.Notification = class {
      constructor(title, options) {
        window.__shown.push({ title, body: options?.body });
      }
      close() {}
      static get permission() {
        return window.__permission ?? 'default';
      }
      static async requestPermission() {
        window.__asked += 1;
        window.__permission = 'granted';
        return 'granted';
      }
    };
  });
  await login(page, 'web');
  await waitText(page, '#conv-title', '#lobby');
  const log = await page.$eval('#log', (l) => [l.getAttribute('role'), l.getAttribute('aria-live'), l.getAttribute('aria-label')]);
  check(log[0] === 'log' && log[1] === 'polite' && log[2], `the message log is ${log}`);

  // Notifications are asked for on a click, never on load.
  check(await page.evaluate(() => window.__asked) === 0, 'the page asked for notifications by itself');
  await page.locator('#notify-button').click();
  await page.locator('#notify-button').waitFor({ state: 'hidden', timeout: WAIT });
  check(await page.evaluate(() => window.__asked) === 1, 'the button did not ask for notifications');
  await nat.frame((f) => f.type === 'join' && f.nick === 'web', 'web joins #lobby');

  // Everyone in the members list.
  for (const nick of ['nat', 'txt', 'web']) {
    await page.locator('#member-list .member-button', { hasText: nick }).waitFor({ timeout: WAIT });
  }

  // Native and text-mode users are heard.
  await nat.say('#lobby', 'hello from native');
  await waitMessage(page, 'hello from native', 'nat');
  txt.write('hello from nc');
  await waitMessage(page, 'hello from nc', 'txt');

  // The page is heard by both, emoji and CJK intact.
  const greeting = 'hello from the web 你好 😀 مرحبا';
  await type(page, greeting);
  const m = await nat.frame((f) => f.type === 'message' && f.from === 'web', 'the page message');
  check(m.text === greeting && m.room === '#lobby', `native user got ${JSON.stringify(m)}`);
  await txt.expect(`<web> ${greeting}`);
  // Acknowledged: no longer "sending".
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages .msg.own')].some((r) =>
    r.querySelector('.body > .text')?.textContent === t && !r.classList.contains('pending') && r.dataset.mid), greeting, { timeout: WAIT });

  // /me is an action.
  await type(page, '/me waves');
  const action = await nat.frame((f) => f.type === 'message' && f.from === 'web' && f.action === true, 'the action');
  check(action.text === 'waves', `action text ${action.text}`);
  await txt.expect('* web waves');

  // A mention is highlighted.
  await nat.say('#lobby', 'Web: are you there?');
  await page.locator('#messages .msg.mentioned mark.mention', { hasText: 'Web' }).waitFor({ timeout: WAIT });

  // Tab completes a member's nick.
  await page.locator('#input').fill('na');
  await page.locator('#input').press('Tab');
  check(await page.locator('#input').inputValue() === 'nat: ', `Tab made ${await page.locator('#input').inputValue()}`);
  await page.locator('#input').fill('');

  // A long word wraps inside the log instead of widening it.
  await nat.say('#lobby', 'x'.repeat(3000));
  await waitMessage(page, 'x'.repeat(3000), 'nat');
  const overflow = await page.$eval('#log', (l) => l.scrollWidth - l.clientWidth);
  check(overflow <= 0, `a 3000-character word overflows the log by ${overflow}px`);

  // /join creates a room the page operates; the member list marks the operator.
  await type(page, '/join #rust');
  await waitText(page, '#conv-title', '#rust');
  await page.locator('#member-list .member-button[aria-label^="web (operator"]').waitFor({ timeout: WAIT });
  await nat.join('#rust');
  await page.locator('#member-list .member-button', { hasText: 'nat' }).waitFor({ timeout: WAIT });
  await type(page, '/topic Rust talk https://www.rust-lang.org/');
  const topic = await nat.frame((f) => f.type === 'topic' && f.room === '#rust', 'topic');
  check(topic.topic === 'Rust talk https://www.rust-lang.org/' && topic.by === 'web', `topic ${JSON.stringify(topic)}`);
  await waitText(page, '#conv-topic', 'Rust talk https://www.rust-lang.org/');
  const topicLink = await page.$eval('#conv-topic a', (a) => [a.href, a.rel, a.target]);
  check(topicLink[0] === 'https://www.rust-lang.org/' && topicLink[1].includes('noopener') && topicLink[1].includes('noreferrer') && topicLink[2] === '_blank', `topic link ${topicLink}`);

  // Unread counts and a mention mark for the room not shown.
  await nat.say('#lobby', 'one');
  await nat.say('#lobby', 'two');
  await nat.say('#lobby', 'three, web');
  await page.locator('.conv-button[aria-label="#lobby, 3 unread, mentions you"]').waitFor({ timeout: WAIT });
  await waitText(page, '.conv-button[data-key="#lobby"] .badge', '@ 3');
  const shown = await page.evaluate(() => window.__shown);
  check(shown.some((n) => n.title === 'nat in #lobby' && n.body === 'three, web'), `notifications: ${JSON.stringify(shown)}`);
  check(!shown.some((n) => n.body === 'one'), 'a message without a mention notified');
  await openConv(page, '#lobby');
  await page.locator('#messages .new-line').waitFor({ timeout: WAIT });
  const afterLine = await page.$eval('#messages .new-line', (l) => l.nextElementSibling.querySelector('.body > .text').textContent);
  check(afterLine === 'one', `the "new messages" line is before ${JSON.stringify(afterLine)}, not before "one"`);
  check(await page.locator('.conv-button[data-key="#lobby"] .badge').count() === 0, 'the badge stays after reading');

  // A private message opens a conversation with an unread mark; the page answers in it.
  nat.send({ type: 'send', to: 'web', text: 'psst, web' });
  await page.locator('.conv-button[data-key="@nat"] .badge').waitFor({ timeout: WAIT });
  await openConv(page, 'nat');
  await waitMessage(page, 'psst, web', 'nat');
  check((await page.evaluate(() => window.__shown)).some((n) => n.title === 'nat (private)' && n.body === 'psst, web'), 'no notification for a private message');
  await type(page, 'hi back');
  const back = await nat.frame((f) => f.type === 'message' && f.from === 'web' && !f.room, 'private answer');
  check(back.text === 'hi back' && back.to === 'nat', `private answer ${JSON.stringify(back)}`);
  // /msg from anywhere goes to the same conversation.
  await openConv(page, '#lobby');
  await type(page, '/msg nat second thought');
  await waitText(page, '#conv-title', 'nat');
  const second = await nat.frame((f) => f.type === 'message' && f.from === 'web' && !f.room, 'private /msg');
  check(second.text === 'second thought', `private /msg ${second.text}`);

  // Alt+Up/Down walk the side list: #lobby, #rust, nat. Each keeps its unsent draft.
  await page.locator('#input').fill('a draft for nat');
  await page.locator('#input').press('Alt+ArrowUp');
  await waitText(page, '#conv-title', '#rust');
  check(await page.locator('#input').inputValue() === '', 'the draft followed to another room');
  await page.locator('#input').press('Alt+ArrowUp');
  await waitText(page, '#conv-title', '#lobby');
  await page.locator('#input').press('Alt+ArrowDown');
  await waitText(page, '#conv-title', '#rust');
  await page.locator('#input').press('Alt+ArrowDown');
  await waitText(page, '#conv-title', 'nat');
  check(await page.locator('#input').inputValue() === 'a draft for nat', 'the draft was lost');
  await page.locator('#input').fill('');
  await page.locator('#input').press('Alt+ArrowUp');
  await waitText(page, '#conv-title', '#rust');

  // Commands answered in the log; mistakes get their usage, nothing is sent.
  await type(page, '/who');
  await page.locator('#messages .line', { hasText: '#rust (2): nat, web' }).waitFor({ timeout: WAIT });
  await type(page, '/nick');
  await page.locator('#messages .line.error', { hasText: 'usage: /nick newname' }).waitFor({ timeout: WAIT });
  await type(page, '/frobnicate');
  await page.locator('#messages .line.error', { hasText: 'unknown command /frobnicate' }).waitFor({ timeout: WAIT });
  await type(page, '/help');
  await page.locator('#messages .line.help', { hasText: '/join #room' }).waitFor({ timeout: WAIT });
  await type(page, '/nick webby');
  await waitText(page, '#me-nick', 'webby');
  await nat.frame((f) => f.type === 'nick' && f.old === 'web' && f.new === 'webby', 'nick change');

  // /part leaves: the room leaves the side list.
  await type(page, '/part #rust see you');
  const part = await nat.frame((f) => f.type === 'part' && f.nick === 'webby', 'part');
  check(part.reason === 'see you', `part ${JSON.stringify(part)}`);
  await page.locator('.conv-button[data-key="#rust"]').waitFor({ state: 'detached', timeout: WAIT });

  // Nothing the page showed twice.
  await openConv(page, '#lobby');
  const texts = (await shownMessages(page)).filter((r) => r.mid !== undefined).map((r) => r.mid);
  check(new Set(texts).size === texts.length, `a message id is shown twice: ${texts}`);
  assertClean(page);
});
