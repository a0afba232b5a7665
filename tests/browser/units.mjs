// The page's pure parts, without a browser: slash-command parsing (every mistake gets its
// usage line), which link targets are allowed, what counts as a mention, the reconnect
// backoff, the list of nodes to move between. Node imports the page's own modules from crates/natter-server/web/.

import assert from 'node:assert/strict';

const web = new URL('../../crates/natter-server/web/', import.meta.url);
globalThis.window = { addEventListener() {} };
const { parseInput, CommandError } = await import(new URL('commands.js', web));
const { safeHref, mentions } = await import(new URL('render.js', web));
const { backoffDelay, serverUrls, hostOf } = await import(new URL('conn.js', web));

const room = { kind: 'room', name: '#rust' };
const priv = { kind: 'private', name: 'ann' };
const fails = (line, current, usage) => assert.throws(() => parseInput(line, current), (e) => e instanceof CommandError && e.message.includes(usage), line);

// Plain text and its escapes.
assert.deepEqual(parseInput('hello', room), { do: 'say', text: 'hello', action: false });
assert.deepEqual(parseInput('   ', room), { do: 'nothing' });
assert.deepEqual(parseInput('//etc/passwd is a path', room), { do: 'say', text: '/etc/passwd is a path', action: false });
assert.deepEqual(parseInput('/me waves  twice', room), { do: 'say', text: 'waves  twice', action: true });
assert.deepEqual(parseInput('/msg bob hi there', room), { do: 'private', to: 'bob', text: 'hi there' });
assert.deepEqual(parseInput('/query bob', room), { do: 'private', to: 'bob', text: null });
assert.deepEqual(parseInput('/join rust', room), { do: 'join', room: '#rust', key: undefined });
assert.deepEqual(parseInput('/join #club sesame', room), { do: 'join', room: '#club', key: 'sesame' });
assert.deepEqual(parseInput('/part', room), { do: 'part', room: '#rust', reason: undefined });
assert.deepEqual(parseInput('/part #other gone fishing', room), { do: 'part', room: '#other', reason: 'gone fishing' });
assert.deepEqual(parseInput('/topic', room).frame, { type: 'topic', room: '#rust' });
assert.deepEqual(parseInput('/topic new topic here', room).frame, { type: 'topic', room: '#rust', topic: 'new topic here' });
assert.deepEqual(parseInput('/who', room).frame, { type: 'who', room: '#rust' });
assert.deepEqual(parseInput('/who *', room).frame, { type: 'who' });
assert.deepEqual(parseInput('/who', priv).frame, { type: 'who' });
assert.deepEqual(parseInput('/op ann', room).frame, { type: 'mode', room: '#rust', changes: [{ mode: 'op', nick: 'ann', on: true }] });
assert.deepEqual(parseInput('/devoice ann', room).frame, { type: 'mode', room: '#rust', changes: [{ mode: 'voice', nick: 'ann', on: false }] });
assert.deepEqual(parseInput('/ban', room).frame, { type: 'bans', room: '#rust' });
assert.deepEqual(parseInput('/unban spam*', room).frame, { type: 'mode', room: '#rust', changes: [{ mode: 'ban', mask: 'spam*', on: false }] });
assert.deepEqual(parseInput('/kick ann flooding again', room).frame, { type: 'kick', room: '#rust', nick: 'ann', reason: 'flooding again' });
assert.deepEqual(parseInput('/away lunch', room).frame, { type: 'away', text: 'lunch' });
assert.deepEqual(parseInput('/back', room).frame, { type: 'away' });
assert.deepEqual(parseInput('/login ann correct horse', room), { do: 'frame', frame: { type: 'login', name: 'ann', password: 'correct horse' }, secret: true });
assert.deepEqual(parseInput('/QUIT bye all', room), { do: 'quit', reason: 'bye all' });
assert.deepEqual(parseInput('/history', room), { do: 'older' });

// Mistakes: the usage line, nothing sent.
fails('/me', room, 'usage: /me does something');
fails('/msg', room, 'usage: /msg nick message');
fails('/join', room, 'usage: /join #room');
fails('/part', priv, 'usage: /part #room');
fails('/nick', room, 'usage: /nick newname');
fails('/nick two words', room, 'a nickname has no spaces');
fails('/kick', room, 'usage: /kick');
fails('/invite bob', priv, '/invite nick works in a room');
fails('/ephemeral maybe', room, 'usage: /ephemeral');
fails('/login ann', room, 'usage: /login nick password');
fails('/passwd only-one', room, 'usage: /passwd old new');
fails('/frobnicate now', room, 'unknown command /frobnicate');

// Links: only absolute http(s) with a host.
assert.equal(safeHref('https://example.org/a?b=c#d'), 'https://example.org/a?b=c#d');
assert.equal(safeHref('http://[::1]:8080/'), 'http://[::1]:8080/');
for (const bad of ['javascript:alert(1)', 'JAVASCRIPT:alert(1)', 'data:text/html,x', 'file:///etc/passwd', 'vbscript:x', 'http://', '//example.org', 'not a url']) {
  assert.equal(safeHref(bad), null, bad);
}

// Mentions: the nick as a word, any case, any script around it.
assert.ok(mentions('hey ann, look', 'ann'));
assert.ok(mentions('ANN: look', 'ann'));
assert.ok(mentions('(ann)', 'ann'));
assert.ok(mentions('[b]ob? [b]ob!', '[b]ob'));
assert.ok(!mentions('annual report', 'ann'));
assert.ok(!mentions('joann', 'ann'));
assert.ok(!mentions('anything', ''));
assert.ok(mentions('你好 李雷', '李雷'));

// Backoff: doubling from 0.5 s, capped at 30 s, in the upper half of each step.
assert.equal(backoffDelay(1, 0), 250);
assert.equal(backoffDelay(1, 1), 500);
assert.equal(backoffDelay(3, 0), 1000);
assert.equal(backoffDelay(30, 1), 30_000);
assert.equal(backoffDelay(1000, 0), 15_000);

// The nodes a page moves between: its own first, the peers once each, only WebSocket URLs,
// at most 16 peers, whatever /config.json holds.
const own = 'wss://a.example/ws';
assert.deepEqual(serverUrls(own, undefined), [own]);
assert.deepEqual(serverUrls(own, { peers: 'x' }), [own]);
assert.deepEqual(
  serverUrls(own, ['wss://b.example/ws', own, 'wss://b.example/ws', 'https://c.example/', 'javascript:alert(1)', 7, null, 'ws://d:7878/ws']),
  [own, 'wss://b.example/ws', 'ws://d:7878/ws'],
);
assert.equal(serverUrls(own, Array.from({ length: 100 }, (_, i) => `wss://n${i}.example/ws`)).length, 17);
assert.equal(hostOf('wss://b.example:8443/ws'), 'b.example:8443');
assert.equal(hostOf('not a url'), 'not a url');

console.log('PASS units');
