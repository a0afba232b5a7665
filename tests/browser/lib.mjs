// What the browser tests share: Debian's chromium driven by playwright-core, the page's
// login, and the other kinds of users talking to the same server over real sockets (a native
// JSON client and a text-mode "nc" user, with node's `net`). tests/web_page.rs starts the
// server and runs each script with NATTER_URL (the page) and NATTER_TCP (host:port).
//
// Waits are on what a user would see (Playwright polls the DOM) or on the server's answers
// (a native `ping`/`pong` barrier); none is a guess at how long something takes.

import { chromium } from 'playwright-core';
import net from 'node:net';
import readline from 'node:readline';

export const URL_ = process.env.NATTER_URL ?? process.argv[2];
const [TCP_HOST, TCP_PORT] = (process.env.NATTER_TCP ?? '').split(':');
/** How long one wait for the page or a socket lasts before the test fails. */
export const WAIT = 15_000;

if (!URL_) {
  console.error('usage: NATTER_URL=http://127.0.0.1:PORT/ NATTER_TCP=127.0.0.1:PORT node SCRIPT.mjs');
  process.exit(2);
}

/** Fails the test with `message` unless `cond`. */
export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

/** Runs the test body with a deadline; prints PASS or FAIL and sets the exit status. */
export async function run(name, body, deadlineMs = 120_000) {
  const timer = setTimeout(() => {
    console.error(`FAIL ${name}: did not finish within ${deadlineMs / 1000} s`);
    process.exit(1);
  }, deadlineMs);
  let browser;
  try {
    browser = await chromium.launch({ executablePath: process.env.NATTER_CHROMIUM ?? '/usr/bin/chromium' });
    await body(browser);
    console.log(`PASS ${name}`);
    process.exitCode = 0;
  } catch (e) {
    console.error(`FAIL ${name}: ${e.stack ?? e}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    await browser?.close().catch(() => {});
    for (const s of openSockets) s.destroy();
    controlInput?.close();
  }
  // Nothing left to wait for (a socket or stdin would keep node running).
  process.exit();
}

/**
 * A page on the server, watched for what must never happen: a script error, a
 * Content-Security-Policy violation (inline script or style), a file the server does not have
 * (an error status), a request to another origin.
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const origin = new URL(URL_).origin;
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A server the test killed refuses connections: expected then, and only that.
    if (m.type() === 'error' && !/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(m.text())) {
      page.problems.push(`console error: ${m.text()}`);
    }
  });
  page.on('response', (r) => {
    if (r.status() >= 400) page.problems.push(`${r.status()} for ${r.url()}`);
  });
  /** Origins besides the page's own it may reach: the other nodes a script lets it move to. */
  page.otherOrigins = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== origin && u.origin !== origin.replace(/^http/, 'ws') && !page.otherOrigins.includes(u.origin)) {
      page.problems.push(`request to another origin: ${r.url()}`);
    }
  });
  return page;
}

/** Fails when the page had a script error, a CSP violation or a foreign request. */
export function assertClean(page) {
  check(page.problems.length === 0, `the page misbehaved:\n${page.problems.join('\n')}`);
}

/** Opens the page and logs in as `nick` (with the account password when given). */
export async function login(page, nick, password) {
  await page.goto(URL_);
  await page.locator('#login-nick').fill(nick);
  if (password) await page.locator('#login-password').fill(password);
  await page.locator('#login-submit').click();
  await page.locator('#app').waitFor({ state: 'visible', timeout: WAIT });
  await waitText(page, '#me-nick', nick);
}

/** Waits until the element's text is `text` (or matches it, for a RegExp). */
export async function waitText(page, selector, text) {
  await page.waitForFunction(
    ([sel, t, isRe]) => {
      const node = document.querySelector(sel);
      if (!node) return false;
      return isRe ? new RegExp(t).test(node.textContent) : node.textContent === t;
    },
    [selector, text instanceof RegExp ? text.source : text, text instanceof RegExp],
    { timeout: WAIT },
  );
}

/** The shown conversation's messages: `{from, text, mid, pending, failed, own}`, in order. */
export async function shownMessages(page) {
  return page.$$eval('#messages .msg', (rows) => rows.map((r) => ({
    from: r.querySelector('.nick')?.textContent ?? '',
    text: r.querySelector('.body > .text')?.textContent ?? '',
    mid: r.dataset.mid ? Number(r.dataset.mid) : undefined,
    pending: r.classList.contains('pending'),
    failed: r.classList.contains('failed'),
    own: r.classList.contains('own'),
  })));
}

/** Waits until a shown message has exactly `text` (from `from`, when given). */
export async function waitMessage(page, text, from) {
  await page.waitForFunction(
    ([t, f]) => [...document.querySelectorAll('#messages .msg')].some((r) =>
      r.querySelector('.body > .text')?.textContent === t && (!f || r.querySelector('.nick')?.textContent === f)),
    [text, from ?? null],
    { timeout: WAIT },
  );
}

/** Types a line in the composer and presses Enter, as a user does. */
export async function type(page, line) {
  const input = page.locator('#input');
  await input.fill(line);
  await input.press('Enter');
}

/** Switches to a conversation by clicking it in the side list. */
export async function openConv(page, name) {
  await page.locator('.conv-button', { hasText: name }).first().click();
  await waitText(page, '#conv-title', name);
}

const openSockets = new Set();

/** A line-reading TCP client: `lines()` yields what arrived; `expect` waits for a match. */
class LineClient {
  constructor() {
    this.socket = net.connect(Number(TCP_PORT), TCP_HOST || '127.0.0.1');
    openSockets.add(this.socket);
    this.socket.setEncoding('utf8');
    this.buffer = '';
    this.queue = [];
    /** Every line received, for counting after the fact. */
    this.all = [];
    this.waiters = [];
    this.closed = false;
    this.socket.on('data', (d) => {
      this.buffer += d;
      let i;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i).replace(/\r$/, '');
        this.buffer = this.buffer.slice(i + 1);
        this.queue.push(line);
        this.all.push(line);
      }
      this.wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.socket.on('error', () => {});
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  write(line) {
    this.socket.write(`${line}\n`);
  }

  /** Waits for a line for which `match` is true; returns it (and drops the lines before). */
  async expect(match, what = String(match)) {
    const test = typeof match === 'function' ? match : (l) => l.includes(match);
    const deadline = Date.now() + WAIT;
    const seen = [];
    for (;;) {
      while (this.queue.length) {
        const line = this.queue.shift();
        if (test(line)) return line;
        seen.push(line.slice(0, 200));
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; saw ${seen.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line ${what} within ${WAIT} ms; saw:\n${seen.slice(-30).join('\n')}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close() {
    this.socket.destroy();
    openSockets.delete(this.socket);
  }
}

let nextPing = 1;

/** A native-protocol user (docs/protocol.md), logged in as `nick`. */
export class NativeUser extends LineClient {
  static async login(nick) {
    const u = new NativeUser();
    u.nick = nick;
    u.send({ type: 'hello', nick });
    await u.frame((f) => f.type === 'welcome', 'welcome');
    await u.frame((f) => f.type === 'joined' && f.room === '#lobby', 'joined #lobby');
    return u;
  }

  send(frame) {
    this.write(JSON.stringify(frame));
  }

  /** Waits for a frame for which `match` is true. */
  async frame(match, what) {
    const line = await this.expect((l) => {
      try {
        return match(JSON.parse(l));
      } catch {
        return false;
      }
    }, what);
    return JSON.parse(line);
  }

  /** Everything the server sent before answering a fresh `ping` has arrived. */
  async barrier() {
    const id = `b${nextPing++}`;
    this.send({ type: 'ping', id });
    await this.frame((f) => f.type === 'pong' && f.id === id, `pong ${id}`);
  }

  /** Sends a room message and waits for its `ack`; returns the ack. */
  async say(room, text, extra = {}) {
    const id = `s${nextPing++}`;
    this.send({ type: 'send', room, text, id, ...extra });
    return this.frame((f) => f.id === id && (f.type === 'ack' || f.type === 'error'), `ack ${id}`);
  }

  /** Joins a room and waits for `joined`. */
  async join(room) {
    this.send({ type: 'join', room });
    return this.frame((f) => f.type === 'joined' && f.room.toLowerCase() === room.toLowerCase(), `joined ${room}`);
  }
}

/** A text-mode user, as with `nc HOST PORT`: the first line is the nick. */
export class TextUser extends LineClient {
  static async login(nick) {
    const u = new TextUser();
    u.write(nick);
    await u.expect(`Hello ${nick}`);
    await u.expect('you are in #lobby');
    return u;
  }

  /** Everything before a made-up `/help` topic's answer has arrived (tests/common's barrier). */
  async barrier() {
    const id = `barrier${nextPing++}x`;
    this.write(`/help ${id}`);
    await this.expect(`/${id};`);
  }
}

/** Asks tests/web_page.rs to do something to the server (`kill`, `start`) and waits until done. */
export async function control(what) {
  console.log(`CONTROL ${what}`);
  const rl = controlLines();
  const line = await rl.next();
  check(!line.done && line.value === `done ${what}`, `the test harness answered ${JSON.stringify(line.value)} to ${what}`);
}

let controlInput;
let controlIterator;
function controlLines() {
  if (!controlIterator) {
    controlInput = readline.createInterface({ input: process.stdin });
    controlIterator = controlInput[Symbol.asyncIterator]();
  }
  return controlIterator;
}
