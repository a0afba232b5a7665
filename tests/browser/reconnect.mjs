// Nothing typed is lost or doubled when the connection goes away:
//
// 1. A network drop (the page's WebSocket cut by Playwright, new ones refused while "offline"),
//    right after the server stored a message whose `ack` never reached the page. While offline,
//    the user types two more messages and someone else says 120 things. Back online, the page
//    logs in again, fetches the 120 (more than a join replays, so page by page), resends its
//    three messages with their `cid`s: the stored one is recognised (shown once, delivered
//    once), the two others are sent once.
// 2. The server killed (SIGKILL) and started again on the same port and database while the
//    user types: the page reconnects by itself and sends what was typed, once.
// 3. The same with the page reloaded while the server is down (the browser's error page), and
//    loaded again once it is back: the typed messages survive in the tab (sessionStorage) and
//    are sent, once, when the page has logged in again by itself.

import { run, openPage, login, waitMessage, type, check, assertClean, NativeUser, waitText, shownMessages, control, URL_, WAIT } from './lib.mjs';

/** Waits until every own message shown is acknowledged (none "sending…"). */
async function allAcked(page, texts) {
  await page.waitForFunction((ts) => {
    const own = [...document.querySelectorAll('#messages .msg.own')];
    return document.querySelectorAll('#messages .msg.pending').length === 0
      && ts.every((t) => own.some((r) => r.querySelector('.body > .text')?.textContent === t && r.dataset.mid));
  }, texts, { timeout: WAIT * 2 });
}

/** Fails when a text or a message id is shown more than once. */
async function noDoubles(page) {
  const rows = await shownMessages(page);
  const mids = rows.filter((r) => r.mid !== undefined).map((r) => r.mid);
  check(new Set(mids).size === mids.length, `a message id is shown twice: ${mids.join(',')}`);
  const texts = rows.map((r) => r.text);
  const twice = texts.filter((t, i) => texts.indexOf(t) !== i);
  check(twice.length === 0, `shown twice: ${twice.join(' | ')}`);
  return rows;
}

await run('reconnect', async (browser) => {
  let nat = await NativeUser.login('nat');
  const page = await openPage(browser);

  // Every WebSocket of the page goes through here, so the test can cut it and hold back acks.
  let online = true;
  let holdAcks = false;
  const heldAcks = [];
  let ackWasHeld;
  const ackHeld = new Promise((resolve) => { ackWasHeld = resolve; });
  const routes = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
    if (!online) {
      ws.close({ code: 1006, reason: 'offline' });
      return;
    }
    const server = ws.connectToServer();
    routes.push({ ws, server });
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (holdAcks && JSON.parse(m).type === 'ack') {
        heldAcks.push(m);
        ackWasHeld();
        return;
      }
      ws.send(m);
    });
    server.onClose(() => ws.close());
    ws.onClose(() => server.close());
  });

  await login(page, 'web');
  await waitText(page, '#conv-title', '#lobby');
  await nat.frame((f) => f.type === 'join' && f.nick === 'web', 'web joins');
  await type(page, 'before the drop');
  await allAcked(page, ['before the drop']);

  // --- 1. A network drop after a message was stored but its ack lost. ---
  holdAcks = true;
  const heardBefore = nat.all.length;
  await type(page, 'stored, ack lost');
  await nat.frame((f) => f.type === 'message' && f.text === 'stored, ack lost', 'the message reached nat');
  // The server stored it and answered; the page never hears the answer.
  await ackHeld;
  check(JSON.parse(heldAcks[0]).cid !== undefined, 'the held ack has no cid');
  online = false;
  for (const r of routes.splice(0)) {
    r.server.close();
    r.ws.close({ code: 1006, reason: 'network down' });
  }
  holdAcks = false;
  await page.locator('#status', { hasText: 'Disconnected' }).waitFor({ timeout: WAIT });
  await nat.frame((f) => f.type === 'quit' && f.nick === 'web', 'the server saw web go');
  check(await page.locator('#messages .msg.pending', { hasText: 'stored, ack lost' }).count() === 1, 'the unacknowledged message is not shown as sending');

  await type(page, 'typed offline 1');
  await type(page, 'typed offline 2');
  const missed = Array.from({ length: 120 }, (_, i) => `missed ${String(i + 1).padStart(3, '0')}`);
  for (const [i, text] of missed.entries()) nat.send({ type: 'send', room: '#lobby', text, id: `m${i}` });
  await nat.frame((f) => f.type === 'ack' && f.id === `m${missed.length - 1}`, 'the last missed ack');

  online = true;
  await page.locator('#reconnect-now').click();
  await page.locator('#status').waitFor({ state: 'hidden', timeout: WAIT });
  await allAcked(page, ['stored, ack lost', 'typed offline 1', 'typed offline 2']);
  await waitMessage(page, missed[missed.length - 1], 'nat');
  await nat.barrier();
  // nat heard each page message once: the resend of the stored one was not delivered again.
  const heard = nat.all.slice(heardBefore).map((l) => JSON.parse(l)).filter((f) => f.type === 'message' && f.from === 'web').map((f) => f.text);
  check(JSON.stringify(heard.sort()) === JSON.stringify(['stored, ack lost', 'typed offline 1', 'typed offline 2']), `nat heard: ${JSON.stringify(heard)}`);
  const rows = await noDoubles(page);
  const texts = rows.map((r) => r.text);
  for (const t of ['before the drop', 'stored, ack lost', 'typed offline 1', 'typed offline 2', ...missed]) {
    check(texts.includes(t), `${t} is missing after the reconnect`);
  }
  const firstMissed = texts.indexOf(missed[0]);
  check(missed.every((t, i) => texts[firstMissed + i] === t), 'the missed messages are not in order');

  // --- 2. The server killed and restarted while the user types. ---
  await page.unrouteAll();
  nat.close();
  await control('kill');
  await page.locator('#status', { hasText: 'Disconnected' }).waitFor({ timeout: WAIT });
  const during = ['during the restart 1', 'during the restart 2 ✓', 'during the restart 3'];
  for (const t of during) await type(page, t);
  check(await page.locator('#messages .msg.pending').count() === 3, 'three messages wait while the server is down');
  await control('start');
  await page.locator('#status').waitFor({ state: 'hidden', timeout: WAIT * 3 });
  await allAcked(page, during);
  nat = await NativeUser.login('nat');
  nat.send({ type: 'history', room: '#lobby', limit: 500, id: 'h' });
  const history = await nat.frame((f) => f.type === 'history' && f.id === 'h', 'history');
  for (const t of ['before the drop', 'stored, ack lost', 'typed offline 1', 'typed offline 2', ...during]) {
    const n = history.messages.filter((m) => m.text === t).length;
    check(n === 1, `"${t}" is stored ${n} times`);
  }
  // nat, back, is seen by the page: the page is live on the new server.
  await nat.say('#lobby', 'after the restart');
  await waitMessage(page, 'after the restart', 'nat');
  await noDoubles(page);
  assertClean(page);

  // --- 3. The same, with the page reloaded while the server is down. ---
  nat.close();
  await control('kill');
  await page.locator('#status', { hasText: 'Disconnected' }).waitFor({ timeout: WAIT });
  const reloaded = ['typed, then reloaded 1', 'typed, then reloaded 2'];
  for (const t of reloaded) await type(page, t);
  // The server serves the page too: the reload shows the browser's error page...
  const failed = await page.reload().then(() => false, () => true);
  check(failed, 'the page reloaded with its server down');
  await control('start');
  // ...and the user loads the page again once the server is back. (Chromium may still be
  // committing its error page, which interrupts a navigation: then the user tries again.)
  // Each interrupted try waits for the navigation that interrupted it to finish loading first.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await page.goto(URL_);
      break;
    } catch (e) {
      if (attempt >= 10 || !String(e).includes('interrupted by another navigation')) throw e;
      await page.waitForLoadState('load', { timeout: WAIT }).catch(() => {});
    }
  }
  await page.locator('#app').waitFor({ state: 'visible', timeout: WAIT });
  await waitText(page, '#conv-title', '#lobby');
  await allAcked(page, reloaded);
  nat = await NativeUser.login('nat');
  nat.send({ type: 'history', room: '#lobby', limit: 500, id: 'h2' });
  const after = await nat.frame((f) => f.type === 'history' && f.id === 'h2', 'history');
  for (const t of [...during, ...reloaded]) {
    const n = after.messages.filter((m) => m.text === t).length;
    check(n === 1, `"${t}" is stored ${n} times`);
  }
  await noDoubles(page);
  assertClean(page);
});
