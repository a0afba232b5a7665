// Hostile text renders as text: markup, event handlers, javascript: links and bidi overrides in
// messages, actions, topics and private messages make no element, no attribute, no script run
// (window.__pwned stays undefined), and links are only http(s), opened without opener or
// referrer.

import { run, openPage, login, waitMessage, type, check, assertClean, NativeUser, waitText, openConv, WAIT } from './lib.mjs';

const PAYLOADS = [
  '<script>window.__pwned = 1</script>',
  '<img src=x onerror="window.__pwned = 2">',
  '<svg onload="window.__pwned = 3"></svg>',
  'javascript:window.__pwned = 4',
  '[click me](javascript:window.__pwned = 5)',
  '<a href="javascript:window.__pwned = 6">innocent</a>',
  'JaVaScRiPt:window.__pwned=7 and data:text/html,<script>window.__pwned=8</script>',
  'http://example.com/"><img src=x onerror=window.__pwned=9>',
  '<style>body { display: none }</style><iframe src="javascript:window.__pwned=10"></iframe>',
  '{{constructor.constructor("window.__pwned = 11")()}} ${window.__pwned = 12}',
  '&lt;b&gt;entities stay entities&lt;/b&gt; &amp;',
  'user\u202Eexe.txt reversed',
  '\u2067isolate opened, never closed',
];

await run('hostile', async (browser) => {
  const mallory = await NativeUser.login('mallory');
  const page = await openPage(browser);
  await login(page, 'victim');
  await waitText(page, '#conv-title', '#lobby');
  await mallory.frame((f) => f.type === 'join' && f.nick === 'victim', 'victim joins');

  for (const p of PAYLOADS) await mallory.say('#lobby', p);
  await mallory.say('#lobby', '<b>bold</b> <img src=x onerror="window.__pwned = 13">', { action: true });
  for (const p of PAYLOADS) await waitMessage(page, p, 'mallory');
  await waitMessage(page, '<b>bold</b> <img src=x onerror="window.__pwned = 13">');

  // A hostile topic and a hostile private message.
  await mallory.join('#evil');
  mallory.send({ type: 'topic', room: '#evil', topic: '<img src=x onerror="window.__pwned = 14"> javascript:alert(1)' });
  await mallory.frame((f) => f.type === 'topic' && f.room === '#evil', 'topic set');
  await type(page, '/join #evil');
  await waitText(page, '#conv-topic', '<img src=x onerror="window.__pwned = 14"> javascript:alert(1)');
  mallory.send({ type: 'send', to: 'victim', text: '<img src=x onerror="window.__pwned = 15"> http://evil.example/<script>' });
  await page.locator('.conv-button[data-key="@mallory"]').waitFor({ timeout: WAIT });
  await openConv(page, 'mallory');
  await waitMessage(page, '<img src=x onerror="window.__pwned = 15"> http://evil.example/<script>', 'mallory');
  const privateLinks = await page.$$eval('#messages a', (as) => as.map((a) => a.href));
  check(privateLinks.length === 1 && privateLinks[0] === 'http://evil.example/', `private links ${privateLinks}`);

  // A room name may hold markup too (no spaces): listed, joined and shown as text.
  const evilRoom = '#<img/src=x/onerror=window.__pwned=17>';
  await mallory.join(evilRoom);
  await type(page, '/rooms');
  const listed = page.locator('#messages .line', { hasText: evilRoom });
  await listed.waitFor({ timeout: WAIT });
  await listed.locator('button').click();
  await waitText(page, '#conv-title', evilRoom);
  await page.locator(`.conv-button[aria-label="${evilRoom}"]`).waitFor({ timeout: WAIT });

  await openConv(page, '#lobby');
  for (const p of PAYLOADS) await waitMessage(page, p, 'mallory');
  const found = await page.evaluate(() => ({
    pwned: window.__pwned,
    elements: document.querySelectorAll('#app img, #app script, #app svg, #app iframe, #app style, #app b').length,
    handlers: [...document.querySelectorAll('#app *')].filter((n) => [...n.attributes].some((a) => a.name.startsWith('on'))).length,
    links: [...document.querySelectorAll('#app a')].map((a) => ({ href: a.getAttribute('href'), rel: a.rel, target: a.target })),
  }));
  check(found.pwned === undefined, `window.__pwned is ${found.pwned}`);
  check(found.elements === 0, `${found.elements} img/script/svg/iframe/style/b elements were made from text`);
  check(found.handlers === 0, `${found.handlers} elements have on* attributes`);
  // The only link: the http one in payload 8, cut before the quote.
  check(found.links.length === 1 && found.links[0].href === 'http://example.com/', `links: ${JSON.stringify(found.links)}`);
  check(found.links[0].rel.includes('noopener') && found.links[0].rel.includes('noreferrer') && found.links[0].target === '_blank', `link attributes ${JSON.stringify(found.links[0])}`);

  // A right-to-left override stays inside its message: the text is isolated, and the nick and
  // time beside it are separate elements.
  const bidi = await page.evaluate((t) => {
    const row = [...document.querySelectorAll('#messages .msg')].find((r) => r.querySelector('.body > .text')?.textContent === t);
    const text = row.querySelector('.body > .text');
    return { tag: text.tagName, isolate: getComputedStyle(text).unicodeBidi, nickIsolate: getComputedStyle(row.querySelector('.nick')).unicodeBidi };
  }, PAYLOADS[11]);
  check(bidi.tag === 'BDI' && bidi.isolate.includes('isolate') && bidi.nickIsolate.includes('isolate'), `bidi: ${JSON.stringify(bidi)}`);

  // The composer sends markup as text too.
  await type(page, '<img src=x onerror="window.__pwned = 16">');
  const echoed = await mallory.frame((f) => f.type === 'message' && f.from === 'victim', 'the victim typed markup');
  check(echoed.text === '<img src=x onerror="window.__pwned = 16">', `sent ${echoed.text}`);
  check(await page.evaluate(() => window.__pwned) === undefined, 'own markup ran');
  assertClean(page);
});
