// The page moves to another node when its own goes away, and catches up there: nothing lost,
// nothing doubled. tests/web_page.rs starts node A on a SQLite file with B's WebSocket URL as
// a peer (`--web-peer`, NATTER_PEER here); B's port is reserved and refuses connections until
// B starts on the same file (servers started one after the other on one file share accounts,
// history and message ids, as the nodes of a cluster share their store). B lists A's page
// origin in `--web-origin`, as the docs tell operators to.
//
// 1. The page, loaded from A, chats there.
// 2. A is killed (SIGKILL). The page says it is trying B. The user types a message.
// 3. Meanwhile a node C the page does not know runs on the file and takes three messages.
// 4. B starts. The page moves there by itself, says so, shows the three missed messages once
//    and in order, and sends the typed message once. The page's Content-Security-Policy lets
//    it reach B (no violation), and it reaches no other origin.

import { run, openPage, login, waitMessage, type, check, assertClean, NativeUser, shownMessages, control, URL_, WAIT } from './lib.mjs';

const PEER = process.env.NATTER_PEER;
check(PEER, 'NATTER_PEER (node B\'s WebSocket URL) is not set');

/** Waits until every own message shown is acknowledged (none "sending…"). */
async function allAcked(page, texts) {
  await page.waitForFunction((ts) => {
    const own = [...document.querySelectorAll('#messages .msg.own')];
    return document.querySelectorAll('#messages .msg.pending').length === 0
      && ts.every((t) => own.some((r) => r.querySelector('.body > .text')?.textContent === t && r.dataset.mid));
  }, texts, { timeout: WAIT * 2 });
}

await run('failover', async (browser) => {
  const nat = await NativeUser.login('nat');
  const page = await openPage(browser);
  page.otherOrigins.push(new URL(PEER).origin);
  const homeHost = new URL(URL_).host;
  const peerHost = new URL(PEER).host;

  // --- 1. On node A. ---
  await login(page, 'web');
  await nat.frame((f) => f.type === 'join' && f.nick === 'web', 'web joins');
  await nat.say('#lobby', 'before the crash');
  await waitMessage(page, 'before the crash', 'nat');
  await type(page, 'acked before');
  await allAcked(page, ['acked before']);
  nat.close();

  // --- 2. Node A dies. ---
  await control('kill-a');
  await page.locator('#status', { hasText: `Trying ${peerHost}` }).waitFor({ timeout: WAIT });
  await type(page, 'typed with no node up');
  check(await page.locator('#messages .msg.pending').count() === 1, 'the typed message waits');

  // --- 3. and 4. Another node takes messages; then node B comes up. ---
  await control('meanwhile');
  await control('start-b');
  const moved = `connected to ${peerHost} (moved from ${homeHost})`;
  await page.locator('#messages .line', { hasText: moved }).waitFor({ timeout: WAIT * 4 });
  await page.locator('#status').waitFor({ state: 'hidden', timeout: WAIT });
  await waitMessage(page, 'missed 3', 'ann');
  await allAcked(page, ['acked before', 'typed with no node up']);

  const rows = (await shownMessages(page)).filter((r) => r.mid !== undefined);
  const texts = rows.map((r) => r.text);
  const want = ['before the crash', 'acked before', 'missed 1', 'missed 2', 'missed 3', 'typed with no node up'];
  check(JSON.stringify(texts) === JSON.stringify(want), `shown: ${JSON.stringify(texts)}`);
  const mids = rows.map((r) => r.mid);
  check(mids.every((m, i) => i === 0 || m > mids[i - 1]), `message ids not in order: ${mids.join(',')}`);
  check(await page.locator('#messages .line', { hasText: moved }).count() === 1, 'the move is told once');
  assertClean(page);
});
