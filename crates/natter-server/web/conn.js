// The connection to the server: one WebSocket at a time to /ws on the page's own origin,
// speaking the native protocol (docs/protocol.md, one JSON frame per text message). It keeps
// the session alive across drops the way natter's terminal client does
// (crates/natter-client/src/conn/): reconnect with exponential backoff and jitter, log in
// again (resume token, never a password), join the rooms again, fetch what was missed
// (`history` after the last message id seen, page by page), and resend every message not yet
// acknowledged with its original `cid` under the same `client_secret`, so that the server
// drops the ones it already stored: nothing lost, nothing doubled (§4, §6).
//
// A server that is one node of several (a cluster) tells the page the WebSocket URLs of the
// others (`web_peers`, in /config.json): when the connection is lost, the page tries the next
// URL of the list (its own first, then the peers, round robin), at once while some URL of the
// round is untried and after the backoff once a full round failed, and catches up there the
// same way: message ids are the cluster's.
//
// It knows nothing of the DOM: it hands every frame to the page (`app.onFrame`) and tells it
// about the connection (`app.onState`), the login, and the fate of each message sent.

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A silent connection is asked for a `pong` this often... */
const PING_EVERY_MS = 25_000;
/** ...and given up for dead (then reconnected) when nothing at all came back this long. */
const PONG_WAIT_MS = 10_000;
/** How many messages one catch-up `history` asks for. */
const CATCH_UP_PAGE = 200;
/** A rate-limited message is sent again after this long. */
const RATE_RETRY_MS = 1_100;
/** After a drop the server may hold our old nick a moment: wait for it this many times. */
const NICK_WAITS = 3;
/** The oldest unacknowledged messages kept across a reload (sessionStorage), at most. */
const OUTBOX_MAX = 500;
/** The most other nodes the page moves between (the server allows no more either). */
const PEERS_MAX = 16;
/** A WebSocket that has not opened after this long is given up (a node gone silent). */
const OPEN_WAIT_MS = 10_000;

const STORE_LOGIN = 'natter.login';
const STORE_SECRET = 'natter.secret';
const STORE_OUTBOX = 'natter.outbox';

/** Errors answering `hello` that a reconnect cannot fix by waiting. */
const LOGIN_FATAL = new Set(['invalid_nick', 'nick_registered', 'bad_password', 'unsupported_version', 'too_many_attempts']);

/** Case-folded name, as the server compares nicks and rooms (ASCII and Unicode lower case). */
export function fold(name) {
  return name.toLowerCase();
}

/** `bytes` random bytes as hex, from the browser's CSPRNG (works on plain http too). */
export function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The delay before reconnect attempt `attempt` (from 1): doubling from 0.5 s up to 30 s, the
 * upper half random so that a restarted server is not hit by every page at once. */
export function backoffDelay(attempt, random = Math.random()) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt - 1, 16));
  return base / 2 + (base / 2) * random;
}

/** localStorage / sessionStorage that never throws (private mode, quota, disabled storage). */
function storage(kind) {
  return {
    get(key) {
      try {
        const v = window[kind].getItem(key);
        return v === null ? null : JSON.parse(v);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        window[kind].setItem(key, JSON.stringify(value));
      } catch {
        // Storage full or disabled: the page works, it only forgets on reload.
      }
    },
    remove(key) {
      try {
        window[kind].removeItem(key);
      } catch {
        // As above.
      }
    },
  };
}

export const local = storage('localStorage');
export const session = storage('sessionStorage');

/** The host (and port) of a WebSocket URL, to name a server to the user. */
export function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/**
 * The URLs a page tries, in order: its own server's, then the other nodes' (`peers`, from
 * /config.json), each once, only ws:// and wss:// URLs, at most 1 + PEERS_MAX.
 */
export function serverUrls(own, peers) {
  const urls = [own];
  for (const p of Array.isArray(peers) ? peers : []) {
    if (urls.length > PEERS_MAX) break;
    if (typeof p === 'string' && /^wss?:\/\/[^\s]+$/i.test(p) && !urls.includes(p)) urls.push(p);
  }
  return urls;
}

/** The saved login of this browser: `{nick, account, token}` or null. */
export function savedLogin() {
  const s = local.get(STORE_LOGIN);
  return s && typeof s.nick === 'string' ? s : null;
}

/** A chat message on its way: kept until the server acknowledges or refuses it. */
class Outgoing {
  constructor(cid, target, text, action) {
    this.cid = cid;
    /** `{room}` or `{to}`. */
    this.target = target;
    this.text = text;
    this.action = action;
    /** Connection generation it was last sent on. */
    this.sentOn = -1;
    /** Not before this time (ms), after `rate_limited`. */
    this.retryAt = 0;
  }
}

/** The session with the server. `app` receives everything (see the methods called on it). */
export class Session {
  constructor(app, wsUrl) {
    this.app = app;
    /** The servers to try, the page's own first; `current` indexes the one in use or next. */
    this.urls = [wsUrl];
    this.current = 0;
    /** URLs of the present round of attempts not tried yet. */
    this.untriedInRound = 0;
    /** The URL of the last connection that logged in, to tell the user of a move. */
    this.lastUrl = null;
    this.ws = null;
    /** Counts connections, so an old socket's late events are ignored and resends happen once per connection. */
    this.generation = 0;
    this.state = 'stopped';
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.nick = '';
    this.wantedNick = '';
    this.password = null;
    this.account = null;
    this.maxLine = 16384;
    this.loggedInOnce = false;
    this.ready = false;
    this.nickWaits = 0;
    this.nextId = 1;
    /** Request id -> what it asked, for the answers and errors that carry it. */
    this.requests = new Map();
    /** Folded room -> room name: the rooms to be in, in join order. */
    this.rooms = new Map();
    /** Folded rooms whose `joined` came on this connection. */
    this.joinedNow = new Set();
    /** Folded room -> highest message id seen. */
    this.lastMid = new Map();
    this.outbox = [];
    this.clientSecret = session.get(STORE_SECRET);
    if (typeof this.clientSecret !== 'string' || this.clientSecret.length < 16) {
      this.clientSecret = randomHex(16);
      session.set(STORE_SECRET, this.clientSecret);
    }
    window.addEventListener('online', () => {
      if (this.state === 'waiting') this.reconnectNow();
    });
  }

  /** The WebSocket URL in use, or tried next. */
  get wsUrl() {
    return this.urls[this.current];
  }

  /** Learns the other nodes' WebSocket URLs (/config.json): tried when the connection is lost. */
  setPeers(peers) {
    const url = this.wsUrl;
    this.urls = serverUrls(this.urls[0], peers);
    this.current = Math.max(0, this.urls.indexOf(url));
  }

  /**
   * Starts the session as `nick` in `rooms`; `password` logs in to the account of that name
   * at once. `patient`: the nick was this browser's a moment ago (a reload), so a refusal
   * because it is taken is waited out a few times, as after a drop.
   */
  start(nick, password, rooms = [], patient = false, serverPassword = null) {
    this.patient = patient;
    /** The server's own password (`--password`), kept in memory only, for reconnects. */
    this.serverPassword = serverPassword || null;
    this.rooms = new Map(rooms.filter((r) => typeof r === 'string' && r.startsWith('#')).map((r) => [fold(r), r]));
    this.lastMid.clear();
    this.wantedNick = nick;
    this.nick = nick;
    this.password = password || null;
    this.loggedInOnce = false;
    this.nickWaits = 0;
    this.attempt = 0;
    this.restoreOutbox();
    this.connect();
  }

  /** The messages a reload left unacknowledged, sent again once logged in. */
  restoreOutbox() {
    const saved = session.get(STORE_OUTBOX);
    if (!Array.isArray(saved)) return;
    for (const o of saved.slice(0, OUTBOX_MAX)) {
      if (typeof o?.cid !== 'string' || typeof o?.text !== 'string' || typeof o?.target !== 'object') continue;
      if (this.outbox.some((x) => x.cid === o.cid)) continue;
      const out = new Outgoing(o.cid, o.target, o.text, !!o.action);
      this.outbox.push(out);
      this.app.onRestored(out);
    }
  }

  saveOutbox() {
    session.set(STORE_OUTBOX, this.outbox.slice(0, OUTBOX_MAX).map(({ cid, target, text, action }) => ({ cid, target, text, action })));
  }

  connect() {
    clearTimeout(this.timer);
    this.generation += 1;
    const gen = this.generation;
    this.ready = false;
    this.joinedNow.clear();
    this.requests.clear();
    this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.wsUrl);
    } catch (e) {
      this.lost(gen, `cannot open ${this.wsUrl}: ${e.message}`);
      return;
    }
    this.ws = ws;
    const url = this.wsUrl;
    setTimeout(() => {
      // A node that does not answer at all (gone from the network): the next one is tried.
      if (gen !== this.generation || ws.readyState !== WebSocket.CONNECTING) return;
      ws.close();
      this.lost(gen, `no answer from ${hostOf(url)}`);
    }, OPEN_WAIT_MS);
    ws.onopen = () => {
      if (gen !== this.generation) return;
      this.lastHeard = Date.now();
      this.sendHello();
      this.startPings(gen);
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation) return;
      this.lastHeard = Date.now();
      if (typeof ev.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        // A server turning a connection away says why in a line of its own (`*** bye: ...`).
        const text = ev.data.startsWith('*** ') ? ev.data.slice(4).trim() : 'the server sent something that is not JSON; ignored';
        if (this.loggedInOnce) this.app.onProblem(text);
        else this.lastRefusal = text;
        return;
      }
      if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') return;
      try {
        this.onFrame(frame);
      } catch (e) {
        // A frame this page does not understand (a newer server?) costs that frame only.
        console.error('natter: could not handle a frame', frame, e);
        this.app.onProblem(`could not show a "${frame.type}" frame from the server`);
      }
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      const why = ev.reason || this.lastRefusal || (this.loggedInOnce ? 'the connection was lost' : 'could not reach the server');
      this.lastRefusal = null;
      this.lost(gen, why);
    };
  }

  sendHello() {
    const hello = { type: 'hello', v: 1, nick: this.nick, client_secret: this.clientSecret, id: 'hello' };
    if (this.serverPassword) hello.password = this.serverPassword;
    const saved = savedLogin();
    if (this.password) {
      hello.account = this.wantedNick;
      hello.account_password = this.password;
    } else if (saved && saved.token && fold(saved.nick) === fold(this.wantedNick)) {
      hello.resume = saved.token;
    }
    this.write(hello);
  }

  startPings(gen) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (gen !== this.generation || !this.ws) return;
      const silent = Date.now() - this.lastHeard;
      if (silent > PING_EVERY_MS + PONG_WAIT_MS) {
        // Nothing came back, not even our pong: the network dropped without telling us.
        this.ws.close();
        this.lost(gen, 'the server stopped answering');
      } else if (silent > PING_EVERY_MS) {
        this.write({ type: 'ping', id: 'alive' });
      }
    }, PONG_WAIT_MS / 2);
  }

  /** The connection `gen` ended: try again later, unless we stopped. */
  lost(gen, why) {
    if (gen !== this.generation) return;
    clearInterval(this.pingTimer);
    this.ws = null;
    this.generation += 1;
    if (this.state === 'stopped') return;
    this.app.onDisconnected();
    // A connection that was logged in starts a new round of attempts.
    if (this.ready) this.untriedInRound = 0;
    this.ready = false;
    this.current = (this.current + 1) % this.urls.length;
    let delay = 0;
    if (this.untriedInRound > 0) {
      this.untriedInRound -= 1;
    } else {
      this.attempt += 1;
      this.untriedInRound = this.urls.length - 1;
      delay = backoffDelay(this.attempt);
    }
    const next = this.urls.length > 1 ? hostOf(this.wsUrl) : null;
    this.setState('waiting', { why, retryAt: Date.now() + delay, next });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Skips the wait before the next attempt. */
  reconnectNow() {
    if (this.state !== 'waiting') return;
    this.connect();
  }

  /** Ends the session for good: `quit` when connected, no reconnect. */
  stop(reason) {
    const ws = this.ws;
    this.state = 'stopped';
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    this.generation += 1;
    this.ws = null;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(reason ? { type: 'quit', reason } : { type: 'quit' }));
      ws.close(1000);
    } else if (ws) {
      ws.close();
    }
    this.app.onState('stopped', {});
  }

  /** Forgets what this browser keeps of the session (the saved login, unsent messages). */
  forget() {
    local.remove(STORE_LOGIN);
    session.remove(STORE_OUTBOX);
    this.outbox = [];
  }

  setState(state, detail = {}) {
    this.state = state;
    this.app.onState(state, detail);
  }

  write(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** True when `frame` fits the server's line limit (counted in UTF-8 bytes). */
  fits(frame) {
    return new TextEncoder().encode(JSON.stringify(frame)).length <= this.maxLine;
  }

  /**
   * Sends a request with a fresh id, remembering `meta` for its answer; false when not
   * connected (the page says so). A request whose answer carries no id needs no meta.
   */
  request(frame, meta = { kind: frame.type }) {
    if (!this.ready) return false;
    const id = this.nextId++;
    this.requests.set(id, meta);
    return this.write({ ...frame, id });
  }

  /** What the request with this id asked (and forgets it), or undefined. */
  takeRequest(id) {
    if (id === undefined) return undefined;
    const meta = this.requests.get(id);
    this.requests.delete(id);
    return meta;
  }

  /** Joins a room (kept across reconnects once joined). */
  join(room, key, meta = {}) {
    const frame = { type: 'join', room };
    if (key) frame.key = key;
    return this.request(frame, { kind: 'join', room, ...meta });
  }

  /** Leaves a room for good (not joined again after a reconnect). */
  part(room, reason) {
    this.rooms.delete(fold(room));
    this.lastMid.delete(fold(room));
    this.saveRooms();
    const frame = { type: 'part', room };
    if (reason) frame.reason = reason;
    return this.write(frame);
  }

  saveRooms() {
    this.app.onRoomsChanged([...this.rooms.values()]);
  }

  /**
   * Queues a message to `target` (`{room}` or `{to}`) and sends it when it can. Returns the
   * outgoing message, or a string saying why it cannot be sent at all.
   */
  say(target, text, action) {
    const out = new Outgoing(`w-${randomHex(12)}`, target, text, action);
    const probe = { type: 'send', ...target, text, action: action || undefined, cid: out.cid, id: 999_999_999 };
    if (!this.fits(probe)) {
      return `too long: the server takes at most ${this.maxLine} bytes per message; split it`;
    }
    this.outbox.push(out);
    this.saveOutbox();
    this.flush();
    return out;
  }

  /** Sends every queued message that can go now and was not sent on this connection. */
  flush() {
    if (!this.ready) return;
    const now = Date.now();
    let later = Infinity;
    for (const o of this.outbox) {
      if (o.sentOn === this.generation) continue;
      if (o.retryAt > now) {
        later = Math.min(later, o.retryAt);
        continue;
      }
      // A room being joined again waits for its `joined`, so the send is not refused.
      if (o.target.room && this.rooms.has(fold(o.target.room)) && !this.joinedNow.has(fold(o.target.room))) continue;
      const frame = { type: 'send', ...o.target, text: o.text, cid: o.cid };
      if (o.action) frame.action = true;
      const id = this.nextId++;
      this.requests.set(id, { kind: 'send', cid: o.cid });
      if (this.write({ ...frame, id })) o.sentOn = this.generation;
    }
    if (later !== Infinity) setTimeout(() => this.flush(), later - now);
  }

  /** Records message id `mid` seen in `room`, for the catch-up after a reconnect. */
  seen(room, mid) {
    if (!room || typeof mid !== 'number') return;
    const key = fold(room);
    if (!this.rooms.has(key)) return;
    if (!(this.lastMid.get(key) >= mid)) this.lastMid.set(key, mid);
  }

  onFrame(f) {
    let meta = f.type === 'error' || f.id !== undefined ? this.takeRequest(f.id) : undefined;
    switch (f.type) {
      case 'welcome':
        this.onWelcome(f);
        break;
      case 'joined':
        meta = meta ?? { kind: 'join' };
        this.onJoined(f, meta);
        break;
      case 'message':
        this.seen(f.room, f.mid);
        break;
      case 'history':
        for (const m of f.messages ?? []) this.seen(m.room, m.mid);
        if (meta?.kind === 'catch-up' && f.more && f.messages?.length) {
          const last = f.messages[f.messages.length - 1].mid;
          this.request({ type: 'history', room: f.room, after: last, limit: CATCH_UP_PAGE }, meta);
        }
        break;
      case 'ack':
        this.onAck(f);
        break;
      case 'part':
        if (fold(f.nick) === fold(this.nick)) this.forgetRoom(f.room);
        break;
      case 'kick':
        if (fold(f.nick) === fold(this.nick)) this.forgetRoom(f.room);
        break;
      case 'nick':
        if (fold(f.old) === fold(this.nick)) this.nick = f.new;
        break;
      case 'account':
        this.onAccount(f);
        break;
      case 'resume_token':
        this.account = f.account;
        local.set(STORE_LOGIN, { nick: this.wantedNick, account: f.account, token: f.token });
        break;
      case 'error':
        if (this.onError(f, meta)) return;
        break;
      case 'bye':
        this.app.onBye(f.reason);
        break;
      default:
        break;
    }
    this.app.onFrame(f, meta);
  }

  onWelcome(f) {
    this.nick = f.nick;
    if (typeof f.max_line === 'number') this.maxLine = f.max_line;
    this.nickWaits = 0;
    this.attempt = 0;
    this.ready = true;
    const first = !this.loggedInOnce;
    this.loggedInOnce = true;
    const movedFrom = this.lastUrl !== null && this.lastUrl !== this.wsUrl ? hostOf(this.lastUrl) : null;
    this.lastUrl = this.wsUrl;
    this.setState('online', { first, server: hostOf(this.wsUrl), movedFrom });
    // Back in every room we were in: #lobby comes by itself, the others by asking.
    if (!this.rooms.has('#lobby') && this.rooms.size > 0) this.write({ type: 'part', room: '#lobby' });
    for (const [key, room] of this.rooms) {
      if (key !== '#lobby') this.join(room, undefined, { rejoin: true });
    }
    if (!this.password) this.app.onLoggedIn(first);
    this.flush();
  }

  onJoined(f, meta) {
    const key = fold(f.room);
    const wasIn = this.rooms.has(key);
    const last = this.lastMid.get(key);
    if (!wasIn) {
      this.rooms.set(key, f.room);
      this.saveRooms();
    }
    this.joinedNow.add(key);
    const history = Array.isArray(f.history) ? f.history : [];
    const first = history.find((m) => typeof m.mid === 'number');
    for (const m of history) this.seen(m.room ?? f.room, m.mid);
    // The join replays the latest messages; when they do not reach back to the last one we
    // saw, the rest comes page by page.
    if (last !== undefined && history.length > 0 && (!first || first.mid > last + 1)) {
      this.request({ type: 'history', room: f.room, after: last, limit: CATCH_UP_PAGE }, { kind: 'catch-up' });
    }
    // The page counts what a rejoin replays as new.
    meta.rejoined = wasIn && last !== undefined;
    this.flush();
  }

  forgetRoom(room) {
    const key = fold(room);
    this.rooms.delete(key);
    this.lastMid.delete(key);
    this.joinedNow.delete(key);
    this.saveRooms();
    // Messages still waiting for that room cannot go any more.
    for (const o of this.outbox.filter((o) => o.target.room && fold(o.target.room) === key)) {
      this.dropOutgoing(o, `you are not in ${room} any more`);
    }
  }

  onAck(f) {
    const i = this.outbox.findIndex((o) => o.cid === f.cid);
    if (i < 0) return;
    const [o] = this.outbox.splice(i, 1);
    this.saveOutbox();
    if (o.target.room) this.seen(o.target.room, f.mid);
    this.app.onAcked(o, f);
  }

  dropOutgoing(o, why) {
    const i = this.outbox.indexOf(o);
    if (i >= 0) this.outbox.splice(i, 1);
    this.saveOutbox();
    this.app.onSendFailed(o, why);
  }

  /** An error: true when handled here (and not shown as such). */
  onError(f, meta) {
    if (f.id === 'hello') return this.onHelloError(f);
    if (meta?.kind === 'send') {
      const o = this.outbox.find((x) => x.cid === meta.cid);
      if (!o) return true;
      if (f.code === 'rate_limited' || f.code === 'busy') {
        o.retryAt = Date.now() + RATE_RETRY_MS;
        o.sentOn = -1;
        setTimeout(() => this.flush(), RATE_RETRY_MS);
        return true;
      }
      if (f.code === 'store_failed') {
        // Delivered to those online but not stored: it was sent; say so, do not resend.
        this.dropOutgoing(o, f.message);
        return true;
      }
      this.dropOutgoing(o, f.message);
      return true;
    }
    if (meta?.kind === 'join' && meta.rejoin) this.forgetRoom(meta.room);
    return false;
  }

  onHelloError(f) {
    if (f.code === 'bad_resume_token') {
      local.remove(STORE_LOGIN);
      this.account = null;
      return false;
    }
    if (!this.ready) {
      // Refused before the welcome: not logged in.
      if (f.code === 'nick_in_use' && (this.loggedInOnce || this.patient)) {
        // Our old session (before the drop, or before a reload) may hold the nick until the
        // server notices it is gone: wait for it a few times, then take another.
        this.nickWaits += 1;
        if (this.nickWaits > NICK_WAITS) {
          if (!this.loggedInOnce) {
            this.stop();
            this.app.onLoginFailed(f.message, f.code);
            return true;
          }
          this.nick = `${this.nick}_`;
        }
        this.ws?.close();
        this.lost(this.generation, f.message);
        return true;
      }
      if (!this.loggedInOnce || LOGIN_FATAL.has(f.code)) {
        this.stop();
        this.app.onLoginFailed(f.message, f.code);
        return true;
      }
      return false;
    }
    // The account login of the hello failed after the welcome.
    if (this.password) {
      this.password = null;
      this.stop();
      this.app.onLoginFailed(f.message, f.code);
      return true;
    }
    return false;
  }

  onAccount(f) {
    if (f.change === 'logged_out') {
      this.account = null;
      local.remove(STORE_LOGIN);
      return;
    }
    this.account = f.account;
    const fromHello = f.id === 'hello';
    if (fromHello && fold(this.nick) !== fold(this.wantedNick) && fold(f.account) === fold(this.wantedNick)) {
      // Logged in as the account whose nick our dropped session still held (we came back as
      // nick_): the server gives it back to its owner.
      this.write({ type: 'nick', nick: this.wantedNick });
    }
    if (fromHello && this.password) {
      // Logged in with the password: from now on a token stands for it.
      this.password = null;
      this.app.onLoggedIn(true);
    } else if (fromHello && f.change === 'logged_in') {
      // Resumed with the saved token: it stays good.
      return;
    }
    // A password login, a registration or a password change: ask for a token to keep.
    this.request({ type: 'resume_token' }, { kind: 'resume_token' });
  }
}
