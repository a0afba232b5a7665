// A terminal-client user (`natter connect` in tmux, run by tests/web_page.rs) and the page in
// the same room: each sees what the other says, /me included, and the page lists the TUI user.

import { run, openPage, login, waitMessage, type, assertClean, waitText, control, WAIT } from './lib.mjs';

await run('tui', async (browser) => {
  const page = await openPage(browser);
  await login(page, 'webber');
  await waitText(page, '#conv-title', '#lobby');
  await page.locator('#member-list .member-button', { hasText: 'termie' }).waitFor({ timeout: WAIT });
  await control('tui-sees webber joined');

  await type(page, 'hello terminal, 你好 😀');
  await control('tui-sees <webber> hello terminal, 你好 😀');
  await type(page, '/me waves at termie');
  await control('tui-sees * webber waves at termie');

  await control('tui-say hello browser, from the terminal');
  await waitMessage(page, 'hello browser, from the terminal', 'termie');
  await control('tui-say webber: a mention');
  await page.locator('#messages .msg.mentioned', { hasText: 'a mention' }).waitFor({ timeout: WAIT });
  assertClean(page);
});
