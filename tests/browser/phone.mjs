// A 390x844 phone: the side list is a drawer (the ☰ button opens it; a choice, Esc or a tap
// outside closes it), nothing is wider than the screen, the composer stays on screen.

import { run, openPage, login, waitMessage, type, check, assertClean, NativeUser, waitText, WAIT } from './lib.mjs';

await run('phone', async (browser) => {
  const nat = await NativeUser.login('nat');
  const page = await openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, colorScheme: 'dark' });
  await login(page, 'pocket');
  await waitText(page, '#conv-title', '#lobby');
  // The system's dark mode is followed.
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(background === 'rgb(26, 29, 33)', `the dark page's background is ${background}`);

  const sidebar = page.locator('#sidebar');
  check(!(await sidebar.isVisible()), 'the side list is shown beside the chat on a phone');
  const drawerButton = page.locator('#drawer-open');
  check(await drawerButton.isVisible(), 'no button opens the side list');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `the page is ${width}px wide on a 390px screen`);

  // Open, then close with Esc: focus goes back to the button.
  await drawerButton.tap();
  await sidebar.waitFor({ state: 'visible', timeout: WAIT });
  check(await drawerButton.getAttribute('aria-expanded') === 'true', 'aria-expanded not true');
  await page.keyboard.press('Escape');
  await sidebar.waitFor({ state: 'hidden', timeout: WAIT });
  check(await page.evaluate(() => document.activeElement.id) === 'drawer-open', 'focus did not return to the drawer button');

  // Open, then tap outside.
  await drawerButton.tap();
  await sidebar.waitFor({ state: 'visible', timeout: WAIT });
  await page.locator('#drawer-scrim').tap({ position: { x: 370, y: 400 } });
  await sidebar.waitFor({ state: 'hidden', timeout: WAIT });

  // Join a room from the drawer: the drawer closes on the new room.
  await drawerButton.tap();
  await page.locator('#join-room').fill('#pocket');
  await page.locator('#join-form button').tap();
  await waitText(page, '#conv-title', '#pocket');
  await sidebar.waitFor({ state: 'hidden', timeout: WAIT });

  // A message from elsewhere shows on the drawer button; choosing the room closes the drawer.
  await nat.say('#lobby', 'ping from the lobby');
  await page.locator('#drawer-unread', { hasText: '1' }).waitFor({ timeout: WAIT });
  await drawerButton.tap();
  await page.locator('.conv-button[data-key="#lobby"]').tap();
  await waitText(page, '#conv-title', '#lobby');
  await sidebar.waitFor({ state: 'hidden', timeout: WAIT });
  await waitMessage(page, 'ping from the lobby', 'nat');

  // The members panel opens over the log and closes with Esc.
  await page.locator('#members-toggle').tap();
  await page.locator('#members').waitFor({ state: 'visible', timeout: WAIT });
  await page.keyboard.press('Escape');
  await page.locator('#members').waitFor({ state: 'hidden', timeout: WAIT });

  // Sending with the Send button; the composer is on screen.
  const box = await page.locator('#composer').boundingBox();
  check(box && box.y + box.height <= 844 && box.y > 400, `composer at ${JSON.stringify(box)}`);
  await page.locator('#input').fill('typed on a phone 📱');
  await page.locator('#send').tap();
  const m = await nat.frame((f) => f.type === 'message' && f.from === 'pocket', 'phone message');
  check(m.text === 'typed on a phone 📱', `got ${m.text}`);
  const after = await page.evaluate(() => document.documentElement.scrollWidth);
  check(after <= 390, `the page grew to ${after}px`);
  assertClean(page);
});
