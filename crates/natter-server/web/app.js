// The page: what the user sees and does. State per conversation (rooms and private
// conversations), rendering of the message log, the side list, members, the composer and
// its slash commands, notifications. The connection is conn.js's; the text-to-DOM rules are
// render.js's (every piece of user text is a text node); the commands are commands.js's.

import { Session, fold, local, savedLogin } from './conn.js';
import { parseInput, CommandError, HELP } from './commands.js';
import { el, messageBody, nickNode, timeNode, dayKey, dayLabel, mentions } from './render.js';

const STORE_NICK = 'natter.nick';
const STORE_ROOMS = 'natter.rooms';
/** How many older messages one scroll-up asks for. */
const OLDER_PAGE = 100;
/** Start loading older messages when the log is scrolled this close to its top (px). */
const OLDER_MARGIN = 300;
/** At most this many messages are kept per conversation; older ones are fetched again on scroll. */
const KEEP_MAX = 5000;

const $ = (id) => document.getElementById(id);

/** One conversation: a room or a private one with a nick. */
class Conv {
  constructor(kind, name) {
    this.kind = kind;
    this.name = name;
    this.key = kind === 'room' ? fold(name) : `@${fold(name)}`;
    this.topic = '';
    /** Folded nick -> nick. */
    this.members = new Map();
    this.ops = new Set();
    this.voiced = new Set();
    this.count = 0;
    /** Items in display order: messages (with or without mid) and the page's own lines. */
    this.items = [];
    /** Message ids shown, to drop a message that arrives twice (replay, catch-up, resend). */
    this.mids = new Set();
    this.unread = 0;
    this.mention = false;
    /** The item before which the "new messages" line is drawn. */
    this.marker = null;
    this.firstUnread = null;
    this.hasOlder = false;
    this.loadingOlder = false;
    this.historyAsked = false;
    this.ephemeral = false;
  }

  /** The smallest message id held, or undefined. */
  oldestMid() {
    for (const it of this.items) if (typeof it.mid === 'number') return it.mid;
    return undefined;
  }
}

let itemSeq = 0;
/** A row of the log. `kind`: 'msg' (someone's message), 'own' (ours, maybe pending), 'line' (the page's). */
function item(kind, fields) {
  itemSeq += 1;
  return { kind, key: itemSeq, ts: Date.now(), ...fields };
}

class App {
  constructor() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.session = new Session(this, `${scheme}//${location.host}/ws`);
    this.loadPeers();
    /** Key -> Conv, in side-list order within each kind. */
    this.convs = new Map();
    this.current = null;
    this.me = '';
    this.lastPrivateFrom = null;
    this.away = new Set();
    this.stickToBottom = true;
    this.bindUi();
    this.showLogin();
    const nick = local.get(STORE_NICK);
    if (typeof nick === 'string' && nick !== '') {
      $('login-nick').value = nick;
      // A nick this browser used before: log in again at once (with its saved token, if any).
      this.submitLogin(nick, '', true);
    }
  }

  /** Asks the server for the other nodes to move to (/config.json); none when it cannot say. */
  loadPeers() {
    fetch('/config.json', { cache: 'no-cache' })
      .then((r) => (r.ok ? r.json() : {}))
      .then((config) => this.session.setPeers(config?.peers))
      .catch(() => {});
  }

  // ---- Login ----------------------------------------------------------------------------

  showLogin(error) {
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = error ?? '';
    $('login-submit').disabled = false;
    $('login-submit').textContent = 'Chat';
    if (!$('login-nick').value) $('login-nick').focus();
    else $('login-password').focus();
  }

  submitLogin(nick, password, patient = false) {
    $('login-error').textContent = '';
    $('login-submit').disabled = true;
    $('login-submit').textContent = 'Connecting…';
    const rooms = local.get(STORE_ROOMS);
    this.pendingNick = nick;
    this.session.start(nick, password, Array.isArray(rooms) ? rooms : [], patient, $('login-server-password').value);
  }

  onLoginFailed(message, code) {
    // What the refused session showed (a password login refused after the welcome) goes.
    this.forgetConversations();
    if (code === 'bad_password' || code === 'too_many_attempts') $('server-password-field').hidden = false;
    this.showLogin(message);
    if (code === 'bad_password') $('login-server-password').focus();
  }

  forgetConversations() {
    this.convs.clear();
    this.current = null;
    this.me = '';
    this.banner('');
    this.renderSideList();
  }

  onLoggedIn(first) {
    local.set(STORE_NICK, this.pendingNick);
    $('login-password').value = '';
    $('login-server-password').value = '';
    if (!first) return;
    $('login').hidden = true;
    $('app').hidden = false;
    this.updateNotifyButton();
    $('input').focus();
  }

  // ---- Connection ----------------------------------------------------------------------

  onState(state, detail) {
    const status = $('status');
    const text = $('status-text');
    clearInterval(this.countdown);
    $('reconnect-now').hidden = true;
    if (state === 'online') {
      status.hidden = true;
      $('send').disabled = false;
      if (detail.movedFrom) this.lineEverywhere(`connected to ${detail.server} (moved from ${detail.movedFrom})`);
      else if (!detail.first) this.lineEverywhere('reconnected');
      return;
    }
    if (state === 'stopped') {
      status.hidden = true;
      return;
    }
    status.hidden = false;
    if (state === 'connecting') {
      text.textContent = this.session.loggedInOnce ? 'Reconnecting…' : 'Connecting…';
    } else if (state === 'waiting') {
      if (!this.session.loggedInOnce && $('app').hidden) {
        // Still trying; the form stays usable to try another nickname.
        this.showLogin(`${detail.why}; trying again…`);
      }
      const tick = () => {
        const secs = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
        const where = detail.next ? `Trying ${detail.next}` : 'Trying again';
        text.textContent = `Disconnected (${detail.why}). ${where} in ${secs} s; what you type is sent then.`;
      };
      tick();
      this.countdown = setInterval(tick, 1000);
      $('reconnect-now').hidden = false;
    }
  }

  onDisconnected() {
    for (const c of this.convs.values()) c.loadingOlder = false;
    $('log-loading').hidden = true;
  }

  onBye(reason) {
    this.lineHere(`the server closed the session: ${reason}`, 'error');
  }

  onProblem(text) {
    this.lineHere(text, 'error');
  }

  onRoomsChanged(rooms) {
    local.set(STORE_ROOMS, rooms);
  }

  // ---- Frames --------------------------------------------------------------------------

  onFrame(f, meta) {
    const handler = FRAMES[f.type];
    if (handler) handler.call(this, f, meta);
  }

  conv(kind, name) {
    const key = kind === 'room' ? fold(name) : `@${fold(name)}`;
    let c = this.convs.get(key);
    if (!c) {
      c = new Conv(kind, name);
      this.convs.set(key, c);
      this.renderSideList();
    }
    return c;
  }

  /** The private conversation a message belongs to: the other party's. */
  privateOf(m) {
    const other = fold(m.from) === fold(this.me) && m.to ? m.to : m.from;
    return this.conv('private', other);
  }

  /**
   * Adds a message to its conversation in id order, once. `live`: it just happened (counts as
   * unread, may notify); history and catch-up pass `live` false or 'catch-up'.
   */
  addMessage(c, m, live) {
    if (typeof m.mid === 'number') {
      if (c.mids.has(m.mid)) return;
      c.mids.add(m.mid);
    }
    const own = fold(m.from) === fold(this.me);
    const it = item(own ? 'own' : 'msg', {
      mid: m.mid,
      ts: m.ts,
      from: m.from,
      text: String(m.text ?? ''),
      action: !!m.action,
      notice: !!m.notice,
      mention: !own && c.kind === 'room' && mentions(String(m.text ?? ''), this.me),
    });
    const appended = this.insertByMid(c, it) === c.items.length - 1;
    if (live && !own) this.noteUnread(c, it, live === true);
    if (c === this.current) {
      if (appended) this.appendNode(it);
      else this.renderLog();
      // Reading older messages: say that newer ones came, rather than pull the reader down.
      if (!this.stickToBottom && live) $('jump').hidden = false;
    }
  }

  /** Inserts `it` after every message with a smaller id (pending own messages stay last);
   * returns where it went. */
  insertByMid(c, it) {
    let i = c.items.length;
    if (typeof it.mid === 'number') {
      while (i > 0) {
        const prev = c.items[i - 1];
        if ((typeof prev.mid === 'number' && prev.mid > it.mid) || prev.pending) i -= 1;
        else break;
      }
    }
    c.items.splice(i, 0, it);
    if (c.items.length > KEEP_MAX) {
      // The oldest go; scrolling up fetches them again.
      const gone = c.items.splice(0, c.items.length - KEEP_MAX);
      for (const old of gone) c.mids.delete(old.mid);
      c.hasOlder = true;
      i -= gone.length;
    }
    return i;
  }

  noteUnread(c, it, notify) {
    const looking = c === this.current && !document.hidden;
    if (!looking) {
      if (c.unread === 0) c.firstUnread = it;
      c.unread += 1;
      if (it.mention || c.kind === 'private') c.mention = true;
      this.renderSideList();
    }
    if (notify && (it.mention || c.kind === 'private') && (!looking || !document.hasFocus())) {
      this.notify(c, it);
    }
  }

  /** A line of the page's own in conversation `c` (`cls`: 'error', 'info', or none). */
  line(c, text, cls, extra) {
    const it = item('line', { text, cls, extra });
    c.items.push(it);
    if (c === this.current) this.appendNode(it);
    return it;
  }

  lineHere(text, cls, extra) {
    if (this.current) this.line(this.current, text, cls, extra);
    else this.banner(text);
  }

  lineEverywhere(text) {
    for (const c of this.convs.values()) if (c.kind === 'room') this.line(c, text, 'info');
  }

  // ---- Sending -------------------------------------------------------------------------

  submitInput() {
    const input = $('input');
    const text = input.value;
    if (text.trim() === '') return;
    let action;
    try {
      action = parseInput(text, this.current && { kind: this.current.kind, name: this.current.name });
    } catch (e) {
      if (e instanceof CommandError) {
        this.lineHere(e.message, 'error');
        return;
      }
      throw e;
    }
    input.value = '';
    this.run(action, text);
  }

  run(a, typed) {
    const s = this.session;
    const offline = () => this.lineHere('not connected: that command needs the server; try again once reconnected', 'error');
    switch (a.do) {
      case 'nothing':
        return;
      case 'say':
        if (!this.current) return this.lineHere('join a room first: /join #room', 'error');
        return this.say(this.current, a.text, a.action);
      case 'private': {
        const c = this.conv('private', a.to);
        this.show(c);
        if (a.text) this.say(c, a.text, false);
        return;
      }
      case 'reply':
        if (!this.lastPrivateFrom) return this.lineHere('nobody has written to you privately yet', 'error');
        return this.say(this.conv('private', this.lastPrivateFrom), a.text, false);
      case 'join':
        if (!s.join(a.room, a.key, { show: true })) offline();
        return;
      case 'part':
        if (!s.part(a.room, a.reason)) offline();
        return;
      case 'help':
        for (const [cmd, what] of HELP) this.lineHere(`${cmd.padEnd(26)} ${what}`, 'help');
        return;
      case 'older':
        if (!this.current?.hasOlder) return this.lineHere('no older messages here', 'info');
        this.loadOlder(this.current);
        return;
      case 'clear':
        if (this.current) {
          this.current.items = [];
          this.current.hasOlder = this.current.mids.size > 0;
          this.current.mids.clear();
          this.renderLog();
        }
        return;
      case 'quit':
        this.signOut(a.reason, false);
        return;
      case 'frame':
        // (A command with a password is not echoed anywhere: the line is gone from the input.)
        if (!s.request(a.frame, { kind: a.frame.type, query: a.frame.type === 'topic' && a.frame.topic === undefined })) offline();
        return;
      default:
        this.lineHere(`cannot do that: ${typed}`, 'error');
    }
  }

  say(c, text, action) {
    const target = c.kind === 'room' ? { room: c.name } : { to: c.name };
    const out = this.session.say(target, text, action);
    if (typeof out === 'string') {
      this.line(c, out, 'error');
      return;
    }
    this.addPending(c, out);
  }

  /** Shows our message at once, marked as not yet acknowledged. */
  addPending(c, out) {
    const it = item('own', { from: this.me || this.session.nick, text: out.text, action: out.action, pending: true, cid: out.cid });
    c.items.push(it);
    if (c === this.current) {
      this.appendNode(it);
      this.scrollToBottom();
    }
  }

  onRestored(out) {
    const c = out.target.room ? this.conv('room', out.target.room) : this.conv('private', out.target.to);
    this.addPending(c, out);
  }

  findPending(cid) {
    for (const c of this.convs.values()) {
      const it = c.items.find((x) => x.cid === cid);
      if (it) return [c, it];
    }
    return [null, null];
  }

  onAcked(out, ack) {
    const [c, it] = this.findPending(out.cid);
    if (!c) return;
    const was = c.items.indexOf(it);
    c.items.splice(was, 1);
    if (typeof ack.mid === 'number' && c.mids.has(ack.mid)) {
      // Stored before the connection dropped and fetched back already: shown once.
      if (c === this.current) this.renderLog();
      return;
    }
    if (typeof ack.mid === 'number') c.mids.add(ack.mid);
    it.pending = false;
    it.mid = ack.mid;
    it.ts = ack.ts ?? it.ts;
    const now = this.insertByMid(c, it);
    if (c === this.current) {
      // Usually it stays where it was shown: updated in place, the log is not rebuilt.
      if (now === was && it.node?.isConnected) this.markSent(it);
      else this.renderLog();
    }
    if (ack.away) this.line(c, `${c.name} is away: ${ack.away}`, 'info');
    if (ack.offline) this.line(c, `${c.name} is offline: your message waits for their next login`, 'info');
  }

  /** A shown message of ours, now acknowledged: no longer faded, with the server's id and time. */
  markSent(it) {
    const node = it.node;
    node.classList.remove('pending');
    if (typeof it.mid === 'number') node.dataset.mid = String(it.mid);
    node.querySelector('.state')?.remove();
    for (const t of node.querySelectorAll('time')) t.replaceWith(timeNode(it.ts, t.classList.contains('margin-time')));
  }

  onSendFailed(out, why) {
    const [c, it] = this.findPending(out.cid);
    if (!c) return;
    it.pending = false;
    it.failed = why;
    if (c === this.current) this.renderLog();
  }

  // ---- Conversations -------------------------------------------------------------------

  /** Makes `c` the conversation shown. */
  show(c) {
    if (!c) return;
    const changed = this.current !== c;
    // Each conversation keeps what was being typed in it.
    if (changed && this.current) this.current.draft = $('input').value;
    if (changed) $('input').value = c.draft ?? '';
    this.current = c;
    // The "new messages" line: before the first message that came while away from here.
    if (changed) c.marker = c.unread ? c.firstUnread : null;
    else if (c.unread) c.marker = c.firstUnread;
    c.unread = 0;
    c.mention = false;
    c.firstUnread = null;
    this.renderHeader();
    this.renderMembers();
    this.renderSideList();
    this.renderLog();
    if (c.marker?.node) c.marker.node.scrollIntoView({ block: 'center' });
    else this.scrollToBottom();
    this.closeDrawer();
    if (c.kind === 'private' && !c.historyAsked && this.session.account) {
      // An account's private conversations are stored: show the latest.
      c.historyAsked = true;
      this.loadOlder(c);
    } else {
      this.maybeLoadOlder();
    }
  }

  /** Asks for the messages before the oldest one held. */
  loadOlder(c) {
    if (c.loadingOlder) return;
    const frame = { type: 'history', room: c.name, limit: OLDER_PAGE };
    const oldest = c.oldestMid();
    if (oldest !== undefined) frame.before = oldest;
    if (!this.session.request(frame, { kind: 'older', conv: c.key })) return;
    c.loadingOlder = true;
    if (c === this.current) $('log-loading').hidden = false;
  }

  /** Loads older messages when the log is scrolled near its top (or cannot scroll yet). */
  maybeLoadOlder() {
    const c = this.current;
    if (!c || !c.hasOlder || c.loadingOlder) return;
    if ($('log').scrollTop < OLDER_MARGIN) this.loadOlder(c);
  }

  /** Conversations in side-list order: rooms, then private ones. */
  ordered() {
    const all = [...this.convs.values()];
    return [...all.filter((c) => c.kind === 'room'), ...all.filter((c) => c.kind === 'private')];
  }

  removeConv(c) {
    this.convs.delete(c.key);
    if (this.current === c) {
      this.current = null;
      this.show(this.ordered()[0] ?? null);
      if (!this.current) this.renderAllEmpty();
    }
    this.renderSideList();
  }

  renderAllEmpty() {
    $('messages').replaceChildren();
    $('conv-title').textContent = 'No conversation';
    $('conv-topic').textContent = 'Join a room with /join #room, or in the side list.';
    $('member-list').replaceChildren();
  }

  // ---- Rendering -----------------------------------------------------------------------

  renderSideList() {
    const rooms = $('room-list');
    const privates = $('private-list');
    const roomNodes = [];
    const privateNodes = [];
    let unreadElsewhere = 0;
    for (const c of this.ordered()) {
      const li = el('li', 'conv');
      const b = el('button', 'conv-button');
      b.type = 'button';
      b.dataset.key = c.key;
      if (c === this.current) b.setAttribute('aria-current', 'page');
      b.append(c.kind === 'room' ? el('bdi', 'conv-name', c.name) : nickNode(c.name, 'conv-name'));
      let label = c.name;
      if (c.unread) {
        unreadElsewhere += c.unread;
        b.classList.add('unread');
        const badge = el('span', c.mention ? 'badge mention-badge' : 'badge', c.mention ? `@ ${c.unread}` : String(c.unread));
        badge.setAttribute('aria-hidden', 'true');
        b.append(badge);
        label += `, ${c.unread} unread${c.mention ? (c.kind === 'private' ? ', private' : ', mentions you') : ''}`;
      }
      b.setAttribute('aria-label', label);
      li.append(b);
      if (c.kind === 'private') {
        const close = el('button', 'conv-close', '×');
        close.type = 'button';
        close.dataset.close = c.key;
        close.setAttribute('aria-label', `Close the conversation with ${c.name}`);
        li.append(close);
        privateNodes.push(li);
      } else {
        roomNodes.push(li);
      }
    }
    rooms.replaceChildren(...roomNodes);
    privates.replaceChildren(...privateNodes);
    $('private-empty').hidden = privateNodes.length > 0;
    const badge = $('drawer-unread');
    badge.hidden = unreadElsewhere === 0;
    badge.textContent = unreadElsewhere ? String(unreadElsewhere) : '';
    document.title = unreadElsewhere ? `(${unreadElsewhere}) natter` : 'natter';
  }

  renderHeader() {
    const c = this.current;
    if (!c) return;
    $('conv-title').replaceChildren(c.kind === 'room' ? el('bdi', null, c.name) : nickNode(c.name));
    const topic = $('conv-topic');
    if (c.kind === 'room') {
      topic.replaceChildren(c.topic ? messageBody(c.topic, '') : document.createTextNode(c.ephemeral ? 'Nothing said here is stored.' : 'No topic: /topic text sets one'));
      topic.classList.toggle('empty', !c.topic);
    } else {
      topic.textContent = this.away.has(fold(c.name)) ? 'away' : 'private conversation';
    }
    $('leave-button').hidden = c.kind !== 'room';
    $('leave-button').setAttribute('aria-label', c.kind === 'room' ? `Leave ${c.name}` : 'Leave');
    $('members-toggle').hidden = c.kind !== 'room';
    $('members-count').textContent = c.kind === 'room' ? String(c.count || c.members.size) : '';
    $('input').placeholder = c.kind === 'room' ? `Message ${c.name}` : `Message ${c.name} privately`;
  }

  renderMembers() {
    const c = this.current;
    const list = $('member-list');
    if (!c || c.kind !== 'room') {
      list.replaceChildren();
      return;
    }
    const members = [...c.members.entries()].sort(([a], [b]) => {
      const rank = (k) => (c.ops.has(k) ? 0 : c.voiced.has(k) ? 1 : 2);
      return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
    });
    const nodes = members.map(([key, nick]) => {
      const li = el('li', 'member');
      const b = el('button', 'member-button');
      b.type = 'button';
      b.dataset.nick = nick;
      const mark = c.ops.has(key) ? '@' : c.voiced.has(key) ? '+' : '';
      const markNode = el('span', 'member-mark', mark);
      markNode.setAttribute('aria-hidden', 'true');
      b.append(markNode, nickNode(nick));
      const roles = [c.ops.has(key) && 'operator', c.voiced.has(key) && 'voiced', this.away.has(key) && 'away'].filter(Boolean);
      b.setAttribute('aria-label', `${nick}${roles.length ? ` (${roles.join(', ')})` : ''}: write privately`);
      if (this.away.has(key)) li.classList.add('away');
      li.append(b);
      return li;
    });
    const more = c.count > c.members.size ? [el('li', 'member more', `and ${c.count - c.members.size} more`)] : [];
    list.replaceChildren(...nodes, ...more);
    $('members-count').textContent = String(c.count || c.members.size);
  }

  /** Rebuilds the log of the current conversation, keeping the reader where they were. */
  renderLog() {
    const c = this.current;
    const log = $('log');
    const list = $('messages');
    const fromBottom = log.scrollHeight - log.scrollTop;
    const atBottom = this.stickToBottom;
    // A rebuilt log is not news: screen readers announce only what is added to it later.
    log.setAttribute('aria-busy', 'true');
    this.lastDay = null;
    this.lastFrom = null;
    const nodes = [];
    if (c) {
      if (!c.hasOlder && c.kind === 'room' && c.items.some((x) => typeof x.mid === 'number')) {
        nodes.push(el('li', 'log-start', `This is the beginning of ${c.name}.`));
      }
      for (const it of c.items) nodes.push(...this.nodesFor(c, it));
    }
    list.replaceChildren(...nodes);
    if (atBottom) this.scrollToBottom();
    else log.scrollTop = log.scrollHeight - fromBottom;
    requestAnimationFrame(() => log.setAttribute('aria-busy', 'false'));
  }

  /** Appends one item at the end of the shown log. */
  appendNode(it) {
    const log = $('log');
    const atBottom = this.stickToBottom;
    $('messages').append(...this.nodesFor(this.current, it));
    if (atBottom) this.scrollToBottom();
  }

  /** The rows for an item: a date line when the day changes, the "new" line, the item. */
  nodesFor(c, it) {
    const out = [];
    const day = dayKey(it.ts);
    if (day !== this.lastDay) {
      const sep = el('li', 'day');
      sep.setAttribute('role', 'separator');
      sep.append(el('span', null, dayLabel(it.ts)));
      out.push(sep);
      this.lastDay = day;
      this.lastFrom = null;
    }
    if (c.marker === it) {
      const sep = el('li', 'new-line');
      sep.setAttribute('role', 'separator');
      sep.append(el('span', null, 'new messages'));
      out.push(sep);
      this.lastFrom = null;
    }
    const li = it.kind === 'line' ? this.lineNode(it) : this.messageNode(it);
    it.node = li;
    out.push(li);
    return out;
  }

  lineNode(it) {
    const li = el('li', `line ${it.cls ?? ''}`);
    li.append(el('bdi', 'text', it.text));
    if (it.extra) li.append(it.extra);
    this.lastFrom = null;
    return li;
  }

  messageNode(it) {
    const li = el('li', 'msg');
    if (it.kind === 'own') li.classList.add('own');
    if (it.pending) li.classList.add('pending');
    if (it.failed) li.classList.add('failed');
    if (it.mention) li.classList.add('mentioned');
    if (it.notice) li.classList.add('notice');
    if (typeof it.mid === 'number') li.dataset.mid = String(it.mid);
    if (it.cid) li.dataset.cid = it.cid;
    // Consecutive messages of one person within five minutes share the nick.
    const continued = !it.action && this.lastFrom && fold(this.lastFrom.from) === fold(it.from) && it.ts - this.lastFrom.ts < 300_000;
    if (continued) li.classList.add('continued');
    const text = messageBody(it.text, it.kind === 'own' ? '' : this.me);
    const body = el('div', 'body');
    if (it.action) {
      // "* ann waves": the nick inside the line, isolated from the text's direction.
      li.classList.add('action');
      body.append('* ', nickNode(it.from), ' ', text, ' ', timeNode(it.ts));
    } else {
      // The nick and time head a run of one person's messages; the others show the time
      // in the margin on hover.
      const head = el('div', 'head');
      head.append(nickNode(it.from), ' ', timeNode(it.ts));
      li.append(head);
      if (continued) li.append(timeNode(it.ts, true));
      body.append(text);
    }
    li.append(body);
    if (it.pending) li.append(el('span', 'state', 'sending…'));
    if (it.failed) li.append(el('span', 'state error', `not sent: ${it.failed}`));
    this.lastFrom = it.action ? null : it;
    return li;
  }

  scrollToBottom() {
    const log = $('log');
    log.scrollTop = log.scrollHeight;
    this.stickToBottom = true;
    $('jump').hidden = true;
  }

  banner(text) {
    const b = $('banner');
    b.hidden = !text;
    b.textContent = text ?? '';
  }

  // ---- Notifications -------------------------------------------------------------------

  updateNotifyButton() {
    $('notify-button').hidden = !('Notification' in window) || Notification.permission !== 'default';
  }

  notify(c, it) {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    const title = c.kind === 'room' ? `${it.from} in ${c.name}` : `${it.from} (private)`;
    try {
      const n = new Notification(title, { body: it.text.slice(0, 200), tag: c.key, icon: '/assets/icon.svg' });
      n.onclick = () => {
        window.focus();
        this.show(c);
        n.close();
      };
    } catch {
      // Some browsers only notify from a service worker; the unread marks remain.
    }
  }

  // ---- Sign out ------------------------------------------------------------------------

  signOut(reason, forget) {
    if (forget && this.session.account) this.session.request({ type: 'logout' }, { kind: 'logout' });
    this.session.stop(reason);
    if (forget) {
      this.session.forget();
      local.remove(STORE_NICK);
      local.remove(STORE_ROOMS);
    }
    this.forgetConversations();
    this.showLogin(forget ? '' : 'You left the chat.');
  }

  /**
   * Tab after the start of a member's nick completes it (with ": " at the start of the line);
   * false when nothing matches, so that Tab moves the focus as usual.
   */
  completeNick() {
    const input = $('input');
    const c = this.current;
    if (!c || c.kind !== 'room' || input.selectionStart !== input.selectionEnd) return false;
    const before = input.value.slice(0, input.selectionStart);
    const word = before.match(/[^\s]+$/u)?.[0];
    if (!word) return false;
    const prefix = fold(word.replace(/^@/, ''));
    const found = [...c.members.values()].filter((n) => fold(n).startsWith(prefix) && fold(n) !== fold(this.me)).sort();
    if (found.length === 0) return false;
    const nick = found[0];
    const start = before.length - word.length;
    const suffix = start === 0 ? ': ' : ' ';
    input.value = `${before.slice(0, start)}${word.startsWith('@') ? '@' : ''}${nick}${suffix}${input.value.slice(before.length)}`;
    const at = start + (word.startsWith('@') ? 1 : 0) + nick.length + suffix.length;
    input.setSelectionRange(at, at);
    return true;
  }

  // ---- Drawer and keys -----------------------------------------------------------------

  openDrawer() {
    $('app').classList.add('drawer-open');
    $('drawer-scrim').hidden = false;
    $('drawer-open').setAttribute('aria-expanded', 'true');
    ($('sidebar').querySelector('[aria-current]') ?? $('sidebar').querySelector('button'))?.focus();
  }

  closeDrawer() {
    if (!$('app').classList.contains('drawer-open')) return;
    $('app').classList.remove('drawer-open');
    $('drawer-scrim').hidden = true;
    $('drawer-open').setAttribute('aria-expanded', 'false');
  }

  toggleMembers(show) {
    const panel = $('members');
    const on = show ?? panel.hidden;
    panel.hidden = !on;
    $('members-toggle').setAttribute('aria-expanded', String(on));
    $('members-toggle').setAttribute('aria-label', on ? 'Hide members' : 'Show members');
  }

  /** Switches to the conversation `step` places away in the side list. */
  cycle(step) {
    const all = this.ordered();
    if (all.length === 0) return;
    const i = Math.max(0, all.indexOf(this.current));
    this.show(all[(i + step + all.length) % all.length]);
    $('input').focus();
  }

  bindUi() {
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const nick = $('login-nick').value.trim();
      if (nick === '') {
        $('login-error').textContent = 'Type a nickname.';
        return;
      }
      if (fold(savedLogin()?.nick ?? '') !== fold(nick)) local.remove('natter.login');
      this.submitLogin(nick, $('login-password').value);
    });
    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitInput();
    });
    $('input').addEventListener('keydown', (e) => {
      if (e.key === 'Tab' && !e.shiftKey && !e.altKey && !e.ctrlKey && this.completeNick()) {
        e.preventDefault();
        return;
      }
      // Enter sends; Shift+Enter is a new line; an input method composing (CJK) keeps Enter.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submitInput();
      }
    });
    document.addEventListener('keydown', (e) => {
      if (e.altKey && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
        e.preventDefault();
        this.cycle(e.key === 'ArrowUp' ? -1 : 1);
      } else if (e.key === 'Escape') {
        if ($('app').classList.contains('drawer-open')) {
          this.closeDrawer();
          $('drawer-open').focus();
        } else if (!$('members').hidden && matchMedia('(max-width: 1000px)').matches) {
          this.toggleMembers(false);
        }
      }
    });
    $('sidebar').addEventListener('click', (e) => {
      const close = e.target.closest('[data-close]');
      if (close) {
        const c = this.convs.get(close.dataset.close);
        if (c) this.removeConv(c);
        return;
      }
      const b = e.target.closest('[data-key]');
      if (b) {
        this.show(this.convs.get(b.dataset.key));
        $('input').focus();
      }
    });
    $('join-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const name = $('join-room').value.trim();
      if (!name) return;
      this.run({ do: 'join', room: name.startsWith('#') ? name : `#${name}` }, name);
      $('join-room').value = '';
    });
    $('member-list').addEventListener('click', (e) => {
      const b = e.target.closest('[data-nick]');
      if (!b || fold(b.dataset.nick) === fold(this.me)) return;
      this.show(this.conv('private', b.dataset.nick));
      $('input').focus();
    });
    $('messages').addEventListener('click', (e) => {
      const join = e.target.closest('[data-join]');
      if (join) this.run({ do: 'join', room: join.dataset.join }, '');
      // A nick heading a message opens a private conversation with its owner.
      const nick = e.target.closest('.head .nick');
      if (nick && fold(nick.textContent) !== fold(this.me)) {
        this.show(this.conv('private', nick.textContent));
        $('input').focus();
      }
    });
    $('drawer-open').addEventListener('click', () => this.openDrawer());
    $('drawer-scrim').addEventListener('click', () => this.closeDrawer());
    $('members-toggle').addEventListener('click', () => this.toggleMembers());
    $('leave-button').addEventListener('click', () => {
      if (this.current?.kind === 'room') this.run({ do: 'part', room: this.current.name }, '');
    });
    $('logout').addEventListener('click', () => this.signOut(undefined, true));
    $('reconnect-now').addEventListener('click', () => this.session.reconnectNow());
    $('notify-button').addEventListener('click', async () => {
      try {
        await Notification.requestPermission();
      } finally {
        this.updateNotifyButton();
      }
    });
    const log = $('log');
    log.addEventListener('scroll', () => {
      this.stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      if (this.stickToBottom) $('jump').hidden = true;
      this.maybeLoadOlder();
    }, { passive: true });
    $('jump').addEventListener('click', () => {
      this.scrollToBottom();
      $('input').focus();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return;
      if (this.current?.unread) this.show(this.current);
      // A phone waking up: no need to wait out the backoff.
      this.session.reconnectNow();
    });
    if (matchMedia('(min-width: 1001px)').matches) this.toggleMembers(true);
  }
}

/** Room membership changes, applied to every room `nick` is in; returns those rooms. */
function roomsWith(app, nick) {
  return [...app.convs.values()].filter((c) => c.kind === 'room' && c.members.has(fold(nick)));
}

/** What each server frame does to the page. */
const FRAMES = {
  welcome(f) {
    this.me = f.nick;
    $('me-nick').textContent = f.nick;
    $('me-account').textContent = this.session.account ? `account ${this.session.account}` : 'guest';
  },
  joined(f, meta) {
    const c = this.conv('room', f.room);
    c.topic = f.topic ?? '';
    c.ephemeral = !!f.ephemeral;
    c.members = new Map((f.members ?? []).map((n) => [fold(n), n]));
    c.ops = new Set((f.operators ?? []).map(fold));
    c.voiced = new Set((f.voiced ?? []).map(fold));
    c.count = f.count ?? c.members.size;
    const history = Array.isArray(f.history) ? f.history : [];
    const firstJoin = c.mids.size === 0;
    // After a reconnect the replay holds what was missed: new to the reader.
    const catchingUp = !firstJoin && meta?.rejoined;
    for (const m of history) this.addMessage(c, { room: f.room, ...m }, catchingUp ? 'catch-up' : false);
    if (firstJoin) c.hasOlder = history.length > 0 && history[0].mid !== 1;
    if (!this.current || meta?.show) this.show(c);
    else if (c === this.current) {
      this.renderHeader();
      this.renderMembers();
      this.renderLog();
    }
  },
  message(f) {
    if (f.room) {
      this.addMessage(this.conv('room', f.room), f, true);
      return;
    }
    const c = this.privateOf(f);
    if (fold(f.from) !== fold(this.me)) this.lastPrivateFrom = f.from;
    this.addMessage(c, f, true);
  },
  history(f, meta) {
    if (typeof f.room !== 'string') return;
    const isRoom = f.room.startsWith('#');
    const c = this.convs.get(isRoom ? fold(f.room) : `@${fold(f.room)}`);
    if (!c) return;
    const messages = Array.isArray(f.messages) ? f.messages : [];
    if (meta?.kind === 'older') {
      c.loadingOlder = false;
      c.hasOlder = !!f.more;
      // Older messages go first, in order, keeping the reader's place.
      const fresh = messages.filter((m) => typeof m.mid !== 'number' || !c.mids.has(m.mid));
      for (const m of fresh) if (typeof m.mid === 'number') c.mids.add(m.mid);
      const own = (m) => fold(m.from) === fold(this.me);
      const items = fresh.map((m) => item(own(m) ? 'own' : 'msg', {
        mid: m.mid, ts: m.ts, from: m.from, text: String(m.text ?? ''), action: !!m.action, notice: !!m.notice,
        mention: !own(m) && isRoom && mentions(String(m.text ?? ''), this.me),
      }));
      c.items.splice(0, 0, ...items);
      if (c === this.current) {
        $('log-loading').hidden = true;
        this.renderLog();
        // A page that does not fill the log cannot be scrolled up: ask for the next one.
        requestAnimationFrame(() => this.maybeLoadOlder());
      }
      return;
    }
    if (meta?.kind === 'catch-up') {
      for (const m of messages) this.addMessage(c, { room: f.room, ...m }, 'catch-up');
      return;
    }
    // A /history typed by hand is not a command of this page; show what came anyway.
    for (const m of messages) this.addMessage(c, { room: f.room, ...m }, false);
  },
  join(f) {
    const c = this.conv('room', f.room);
    c.members.set(fold(f.nick), f.nick);
    c.count = Math.max(c.count + 1, c.members.size);
    this.line(c, `${f.nick} joined`, 'presence');
    if (c === this.current) this.renderMembers();
  },
  part(f) {
    const c = this.convs.get(fold(f.room));
    if (!c) return;
    if (fold(f.nick) === fold(this.me)) {
      this.removeConv(c);
      return;
    }
    c.members.delete(fold(f.nick));
    c.ops.delete(fold(f.nick));
    c.count = Math.max(c.members.size, c.count - 1);
    this.line(c, `${f.nick} left${f.reason ? ` (${f.reason})` : ''}`, 'presence');
    if (c === this.current) this.renderMembers();
  },
  kick(f) {
    const c = this.convs.get(fold(f.room));
    if (!c) return;
    const why = f.reason ? ` (${f.reason})` : '';
    if (fold(f.nick) === fold(this.me)) {
      this.removeConv(c);
      this.lineHere(`${f.by} removed you from ${f.room}${why}`, 'error');
      return;
    }
    c.members.delete(fold(f.nick));
    c.count = Math.max(c.members.size, c.count - 1);
    this.line(c, `${f.by} removed ${f.nick} from the room${why}`, 'presence');
    if (c === this.current) this.renderMembers();
  },
  quit(f) {
    for (const c of roomsWith(this, f.nick)) {
      c.members.delete(fold(f.nick));
      c.ops.delete(fold(f.nick));
      c.count = Math.max(c.members.size, c.count - 1);
      this.line(c, `${f.nick} went offline${f.reason ? ` (${f.reason})` : ''}`, 'presence');
    }
    this.renderMembers();
  },
  nick(f) {
    const was = fold(f.old);
    if (was === fold(this.me)) {
      this.me = f.new;
      $('me-nick').textContent = f.new;
      // A nick protection notice was about the old nick.
      this.banner('');
      this.lineHere(`you are now known as ${f.new}`, 'info');
    }
    for (const c of roomsWith(this, f.old)) {
      c.members.delete(was);
      c.members.set(fold(f.new), f.new);
      for (const set of [c.ops, c.voiced]) if (set.delete(was)) set.add(fold(f.new));
      if (was !== fold(this.me) || fold(f.new) !== fold(this.me)) this.line(c, `${f.old} is now known as ${f.new}`, 'presence');
    }
    const p = this.convs.get(`@${was}`);
    if (p && !this.convs.has(`@${fold(f.new)}`)) {
      this.convs.delete(p.key);
      p.name = f.new;
      p.key = `@${fold(f.new)}`;
      this.convs.set(p.key, p);
      this.line(p, `${f.old} is now known as ${f.new}`, 'presence');
      this.renderSideList();
    }
    this.renderHeader();
    this.renderMembers();
  },
  topic(f, meta) {
    const c = this.convs.get(fold(f.room));
    if (meta) {
      // The answer to a /topic query; the echo of our own change was shown as a change.
      if (!meta.query) return;
      this.lineHere(f.topic ? `topic of ${f.room}: ${f.topic}` : `${f.room} has no topic`, 'info');
      return;
    }
    if (!c) return;
    c.topic = f.topic ?? '';
    this.line(c, f.by ? `${f.by} set the topic: ${c.topic || '(none)'}` : `topic: ${c.topic}`, 'info');
    if (c === this.current) this.renderHeader();
  },
  mode(f) {
    const c = this.convs.get(fold(f.room));
    if (!c) return;
    const said = [];
    for (const ch of f.changes ?? []) {
      if (ch.mode === 'op' || ch.mode === 'voice') {
        const set = ch.mode === 'op' ? c.ops : c.voiced;
        if (ch.on) set.add(fold(ch.nick));
        else set.delete(fold(ch.nick));
        said.push(`${ch.on ? 'made' : 'unmade'} ${ch.nick} ${ch.mode === 'op' ? 'an operator' : 'voiced'}`);
      } else if (ch.mode === 'ban') {
        said.push(`${ch.on ? 'banned' : 'unbanned'} ${ch.mask}`);
      } else {
        said.push(`${ch.mode.replace('_', ' ')} ${ch.on ? 'on' : 'off'}${ch.key || ch.limit ? ` (${ch.key ?? ch.limit})` : ''}`);
      }
    }
    this.line(c, `${f.by} ${said.join(', ')}`, 'info');
    if (c === this.current) this.renderMembers();
  },
  members(f) {
    if (!Array.isArray(f.nicks)) return;
    const place = f.room ?? 'online';
    const more = f.more ? ` and more (${f.count} in all)` : '';
    this.lineHere(`${place} (${f.count ?? f.nicks.length}): ${f.nicks.join(', ')}${more}`, 'info');
  },
  rooms(f) {
    const rooms = f.rooms ?? [];
    this.lineHere(`${rooms.length} rooms:`, 'info');
    for (const r of rooms) {
      const join = el('button', 'link-button', 'join');
      join.type = 'button';
      join.dataset.join = r.name;
      join.setAttribute('aria-label', `Join ${r.name}`);
      this.lineHere(`${r.name} (${r.members} online)${r.ephemeral ? ' [ephemeral]' : ''}${r.topic ? ` — ${r.topic}` : ''}`, 'info', join);
    }
  },
  ignoring(f) {
    if (!Array.isArray(f.nicks)) return;
    this.lineHere(f.nicks.length ? `you ignore: ${f.nicks.join(', ')}` : 'you ignore nobody', 'info');
  },
  ignore_mode(f) {
    this.lineHere(f.on ? 'ignore mode on: room messages are hidden, private ones still arrive (/i to turn off)' : 'ignore mode off', 'info');
  },
  away(f, meta) {
    const key = fold(f.nick);
    if (f.text) this.away.add(key);
    else this.away.delete(key);
    if (meta) this.lineHere(f.text ? `you are away: ${f.text}` : 'you are back', 'info');
    this.renderMembers();
    if (this.current?.kind === 'private') this.renderHeader();
  },
  user_info(f) {
    const u = f.user ?? {};
    const parts = [`${u.nick} is ${u.ident ?? ''}`];
    if (u.realname) parts.push(`called ${u.realname}`);
    if (u.account) parts.push(`logged in as ${u.account}`);
    if (u.rooms?.length) parts.push(`in ${u.rooms.join(' ')}`);
    if (u.away) parts.push(`away: ${u.away}`);
    this.lineHere(parts.join('; '), 'info');
  },
  whowas(f) {
    this.lineHere(f.users?.length ? `${f.nick} was ${f.users.map((u) => u.ident).join(', ')}` : `nobody used ${f.nick} lately`, 'info');
  },
  invite(f) {
    if (fold(f.to) !== fold(this.me)) {
      this.lineHere(`you invited ${f.to} to ${f.room}`, 'info');
      return;
    }
    const join = el('button', 'link-button', `join ${f.room}`);
    join.type = 'button';
    join.dataset.join = f.room;
    this.lineHere(`${f.from} invites you to ${f.room}`, 'info', join);
  },
  room_modes(f) {
    const on = Object.entries(f.modes ?? {}).map(([k, v]) => (v === true ? k : `${k} ${v}`));
    this.lineHere(`${f.room}: ${on.length ? on.join(', ') : 'no settings'}`, 'info');
  },
  bans(f) {
    this.lineHere(f.bans?.length ? `${f.room} bans: ${f.bans.map((b) => b.mask).join(', ')}` : `${f.room} bans nobody`, 'info');
  },
  notice(f) {
    const c = f.room ? this.convs.get(fold(f.room)) : null;
    if (c) this.line(c, f.text, 'info');
    else this.lineHere(f.text, 'info');
  },
  account(f) {
    const said = { registered: 'registered the account', logged_in: 'logged in as', logged_out: 'logged out of', password_changed: 'changed the password of' };
    this.lineHere(`you ${said[f.change] ?? f.change} ${f.account}`, 'info');
    $('me-account').textContent = this.session.account ? `account ${this.session.account}` : 'guest';
    if (f.change === 'logged_in' || f.change === 'registered') this.banner('');
  },
  nick_protected(f) {
    this.banner(f.grace_secs
      ? `The nickname ${f.nick} is registered. If it is yours, type /login ${f.nick} PASSWORD within ${f.grace_secs} s; otherwise you will be renamed.`
      : `The nickname ${f.nick} is registered: its owner may take it back. /login ${f.nick} PASSWORD if it is yours.`);
  },
  error(f, meta) {
    if (meta?.kind === 'older') {
      const c = this.convs.get(meta.conv);
      if (c) c.loadingOlder = false;
      $('log-loading').hidden = true;
    }
    this.lineHere(f.message ?? f.code, 'error');
  },
};

new App();
