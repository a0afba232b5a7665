// A server with a password of its own (`--password sesame`): the login form asks for it once
// the server refuses the login without it, says so when it is wrong, never keeps it in the
// browser, and the page keeps it in memory to reconnect.

import { run, openPage, check, assertClean, waitText, URL_, WAIT } from './lib.mjs';

await run('server_password', async (browser) => {
  const page = await openPage(browser);
  await page.goto(URL_);
  check(await page.locator('#server-password-field').isHidden(), 'the server password is asked before the server wants one');
  await page.locator('#login-nick').fill('guarded');
  await page.locator('#login-submit').click();
  await page.locator('#login-error', { hasText: 'this server needs a password' }).waitFor({ timeout: WAIT });
  await page.locator('#server-password-field').waitFor({ state: 'visible', timeout: WAIT });
  await page.locator('#login-server-password').fill('open sesame');
  await page.locator('#login-submit').click();
  await page.locator('#login-error', { hasText: 'give the right one' }).waitFor({ timeout: WAIT });
  check(await page.locator('#app').isHidden(), 'the chat opened with a wrong server password');
  await page.locator('#login-server-password').fill('sesame');
  await page.locator('#login-submit').click();
  await page.locator('#app').waitFor({ state: 'visible', timeout: WAIT });
  await waitText(page, '#me-nick', 'guarded');
  const kept = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  check(!kept.includes('sesame'), `the server password is kept in the browser: ${kept}`);
  assertClean(page);
});
