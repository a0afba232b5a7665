// Logging in from the page: a refused nickname is refused on the form with the reason.
// Accounts: /register makes the nickname an account; the page keeps a resume
// token (never the password) and a reload logs in again with it; Sign out forgets it (and
// revokes it); the login form logs in with the password, and says so when it is wrong.

import { run, openPage, login, type, check, assertClean, waitText, NativeUser, URL_, WAIT } from './lib.mjs';

const PASSWORD = 'correct horse battery';

/** Everything the page keeps in the browser, as one string. */
const kept = (page) => page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));

await run('account', async (browser) => {
  const page = await openPage(browser);

  // Nicknames the server refuses are refused on the form, with the server's reason.
  const holder = await NativeUser.login('taken');
  await page.goto(URL_);
  for (const [nick, reason] of [['9lives', 'a nickname must start with a letter'], ['taken', 'the nickname taken is taken; choose another'], ['ev\u202Eil', 'U+202E']]) {
    await page.locator('#login-nick').fill(nick);
    await page.locator('#login-submit').click();
    await page.locator('#login-error', { hasText: reason }).waitFor({ timeout: WAIT });
    check(await page.locator('#app').isHidden(), `the chat opened for ${nick}`);
  }
  holder.close();

  await login(page, 'acct');
  await waitText(page, '#me-account', 'guest');
  await type(page, `/register ${PASSWORD}`);
  await page.locator('#messages .line', { hasText: 'you registered the account acct' }).waitFor({ timeout: WAIT });
  await waitText(page, '#me-account', 'account acct');
  await page.waitForFunction(() => JSON.parse(localStorage.getItem('natter.login') ?? 'null')?.token?.length === 43, null, { timeout: WAIT });
  check(!(await kept(page)).includes(PASSWORD), 'the password is kept in the browser');
  check(!(await kept(page)).includes('horse'), 'part of the password is kept in the browser');
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('natter.login')).token);

  // A reload logs in again to the account with the token, no password typed.
  await type(page, '/join #kept');
  await waitText(page, '#conv-title', '#kept');
  await page.reload();
  await page.locator('#app').waitFor({ state: 'visible', timeout: WAIT });
  await waitText(page, '#me-nick', 'acct');
  await waitText(page, '#me-account', 'account acct');
  await page.locator('.conv-button[data-key="#kept"]').waitFor({ timeout: WAIT });
  check(await page.evaluate(() => JSON.parse(localStorage.getItem('natter.login')).token) === token, 'the token changed on a resume');

  // Sign out: nothing kept; the token no longer logs in.
  await page.locator('#logout').click();
  await page.locator('#login').waitFor({ state: 'visible', timeout: WAIT });
  const after = await kept(page);
  check(!after.includes(token) && !after.includes('natter.nick'), `kept after signing out: ${after}`);

  // The signed-out token is refused: a browser that still had it is a guest, told the
  // nickname is registered, and the dead token is forgotten.
  await page.evaluate((t) => {
    localStorage.setItem('natter.login', JSON.stringify({ nick: 'acct', account: 'acct', token: t }));
    localStorage.setItem('natter.nick', JSON.stringify('acct'));
  }, token);
  await page.reload();
  await page.locator('#app').waitFor({ state: 'visible', timeout: WAIT });
  await waitText(page, '#me-account', 'guest');
  await page.locator('#banner', { hasText: 'The nickname acct is registered' }).waitFor({ timeout: WAIT });
  await page.waitForFunction(() => localStorage.getItem('natter.login') === null, null, { timeout: WAIT });
  await page.locator('#logout').click();
  await page.locator('#login').waitFor({ state: 'visible', timeout: WAIT });

  // A wrong password is refused on the form; the right one logs in.
  await page.locator('#login-nick').fill('acct');
  await page.locator('#login-password').fill('wrong horse battery');
  await page.locator('#login-submit').click();
  await waitText(page, '#login-error', 'wrong account name or password');
  check(await page.locator('#app').isHidden(), 'the chat opened after a wrong password');
  await page.locator('#login-password').fill(PASSWORD);
  await page.locator('#login-submit').click();
  await page.locator('#app').waitFor({ state: 'visible', timeout: WAIT });
  await waitText(page, '#me-account', 'account acct');
  check(await page.locator('#login-password').inputValue() === '', 'the password stays in the form');
  await page.waitForFunction((old) => {
    const t = JSON.parse(localStorage.getItem('natter.login') ?? 'null')?.token;
    return t && t !== old;
  }, token, { timeout: WAIT });
  check(!(await kept(page)).includes(PASSWORD), 'the password is kept after a form login');

  // Between two accounts private messages are stored: after a reload, opening the
  // conversation brings them back from the server.
  const pal = await NativeUser.login('pal');
  pal.send({ type: 'register', password: 'pal password 123', id: 'r' });
  await pal.frame((f) => f.type === 'account' && f.id === 'r', 'pal registered');
  pal.send({ type: 'send', to: 'acct', text: 'stored between accounts', id: 'p' });
  const ack = await pal.frame((f) => f.id === 'p', 'ack');
  check(ack.type === 'ack' && typeof ack.mid === 'number', `the private message was not stored: ${JSON.stringify(ack)}`);
  await page.locator('.conv-button[data-key="@pal"]').waitFor({ timeout: WAIT });
  await page.reload();
  await waitText(page, '#me-account', 'account acct');
  check(await page.locator('.conv-button[data-key="@pal"]').count() === 0, 'the conversation list survived the reload');
  await type(page, '/query pal');
  await waitText(page, '#conv-title', 'pal');
  await page.locator('#messages .msg', { hasText: 'stored between accounts' }).waitFor({ timeout: WAIT });

  // A drop the server does not notice (its side of the connection stays open) leaves a
  // session holding the nick: the page comes back under another nick, and, logged in to the
  // account by its token, takes its nick back.
  const routes = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    routes.push({ ws, server });
  });
  await page.reload();
  await waitText(page, '#me-account', 'account acct');
  check(routes.length === 1, `${routes.length} routed connections`);
  routes[0].ws.close({ code: 1006, reason: 'network down' });
  await page.locator('#status', { hasText: 'Disconnected' }).waitFor({ timeout: WAIT });
  await waitText(page, '#me-nick', 'acct');
  await page.locator('#messages .line', { hasText: 'you are now known as acct' }).waitFor({ timeout: WAIT * 2 });
  await waitText(page, '#me-account', 'account acct');
  assertClean(page);
});
