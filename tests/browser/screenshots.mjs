// The screenshots of docs/web.md: a team's morning in #lobby and #design, taken on a desktop
// (1280x800, light) and a phone (390x844, dark; and its drawer open). Run by
// tests/web_page.rs's ignored test `screenshots` (cargo test --test web_page screenshots --
// --ignored), which writes docs/web-desktop.png, docs/web-phone.png, docs/web-phone-drawer.png.

import { run, openPage, login, waitMessage, type, openConv, NativeUser, TextUser, waitText, WAIT } from './lib.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** docs/ of this repository, unless NATTER_SHOTS names another directory. */
const out = process.env.NATTER_SHOTS ?? fileURLToPath(new URL('../../docs/', import.meta.url));

await run('screenshots', async (browser) => {
  const alice = await NativeUser.login('alice');
  const bob = await TextUser.login('bob');
  const carol = await NativeUser.login('carol');
  await alice.join('#design');
  alice.send({ type: 'topic', room: '#design', topic: 'Mockups for v2: https://example.org/v2 · review Thursday' });
  await carol.join('#design');

  const page = await openPage(browser, { colorScheme: 'light' });
  await login(page, 'dana');
  await waitText(page, '#conv-title', '#lobby');
  await alice.say('#lobby', 'good morning! ☕');
  bob.write('morning all. the deploy went out at 8, no alarms so far');
  await bob.barrier();
  await carol.say('#lobby', 'nice. dana, could you look at the release notes before lunch?');
  await type(page, 'sure, on it 👍');
  await alice.say('#lobby', 'the changelog is at https://example.org/changelog#v2-0');
  await carol.say('#lobby', 'Tokyo office says 東京は晴れです 🌤');
  await alice.say('#lobby', 'is reading the diff', { action: true });
  await waitMessage(page, 'is reading the diff');
  await type(page, '/join #design');
  await waitText(page, '#conv-title', '#design');
  await alice.say('#design', 'new header colours are up, feedback welcome');
  await carol.say('#design', 'love the contrast in dark mode');
  await type(page, 'the sidebar spacing looks much better');
  await waitMessage(page, 'love the contrast in dark mode');
  await carol.say('#lobby', 'dana: thanks!');
  alice.send({ type: 'send', to: 'dana', text: 'got a minute for a quick call?' });
  await page.locator('.conv-button[data-key="@alice"] .badge').waitFor({ timeout: WAIT });
  await openConv(page, '#lobby');
  await page.waitForFunction(() => document.querySelectorAll('#messages .msg.pending').length === 0, null, { timeout: WAIT });
  await page.locator('#input').fill('looks good to me — ship it');
  await page.mouse.move(0, 0);
  await page.screenshot({ path: path.join(out, 'web-desktop.png') });

  const phone = await openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: 'dark', deviceScaleFactor: 2 });
  await login(phone, 'erin');
  await waitText(phone, '#conv-title', '#lobby');
  await alice.say('#lobby', 'welcome erin 👋');
  await carol.say('#lobby', 'erin, the onboarding doc: https://example.org/onboarding');
  await waitMessage(phone, 'erin, the onboarding doc: https://example.org/onboarding');
  await type(phone, 'thanks both! reading it now');
  await phone.waitForFunction(() => document.querySelectorAll('#messages .msg.pending').length === 0, null, { timeout: WAIT });
  await phone.mouse.move(0, 0);
  await phone.screenshot({ path: path.join(out, 'web-phone.png') });
  await phone.locator('#drawer-open').tap();
  await phone.locator('#sidebar').waitFor({ state: 'visible', timeout: WAIT });
  await phone.waitForFunction(() => getComputedStyle(document.getElementById('sidebar')).transform === 'none', null, { timeout: WAIT });
  await phone.screenshot({ path: path.join(out, 'web-phone-drawer.png') });
});
