// Turning what people wrote into DOM nodes. Everything a user chose (text, nicks, topics,
// reasons) becomes text nodes, never markup: the only elements made are the page's own
// (`a` for an http(s) link, `mark` for a mention, `bdi` to isolate each piece's direction), so
// a `<script>` or `<img onerror>` in a message stays text, and a right-to-left override in one
// message cannot reverse the nick or time beside it.

/** Creates an element with a class and, optionally, text content (never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// A link candidate: http:// or https:// then anything up to whitespace or a character that
// cannot be in a URL. Other schemes (javascript:, data:, file:) are never links.
const LINK = /\bhttps?:\/\/[^\s<>"'`\u0000-\u001f\u007f]+/giu;
// Punctuation that ends a sentence rather than the URL.
const TRAILING = /[.,;:!?)\]}'"»]+$/u;

/** The URL as a safe link target, or null: only absolute http(s) URLs with a host. */
export function safeHref(candidate) {
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return null;
  return url.href;
}

/** A regular expression finding `nick` as a word, case-insensitively. */
export function mentionPattern(nick) {
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_])(${escaped})(?![\\p{L}\\p{N}_])`, 'iu');
}

/** True when `text` names `nick` as a word. */
export function mentions(text, nick) {
  return nick !== '' && mentionPattern(nick).test(text);
}

/** Appends `text` to `parent`, with each mention of `nick` in a `mark`. */
function appendWithMentions(parent, text, nick) {
  if (!nick) {
    parent.append(document.createTextNode(text));
    return;
  }
  const re = new RegExp(mentionPattern(nick).source, 'giu');
  let at = 0;
  for (const m of text.matchAll(re)) {
    const start = m.index + m[1].length;
    parent.append(document.createTextNode(text.slice(at, start)));
    parent.append(el('mark', 'mention', m[2]));
    at = start + m[2].length;
  }
  parent.append(document.createTextNode(text.slice(at)));
}

/**
 * The body of a message as a `bdi` element: text nodes, http(s) links (opened in a new tab,
 * without referrer or opener) and mentions of `me` marked.
 */
export function messageBody(text, me) {
  const body = el('bdi', 'text');
  let at = 0;
  for (const m of text.matchAll(LINK)) {
    let url = m[0];
    const trail = url.match(TRAILING);
    // Keep a closing parenthesis that closes one opened inside the URL (wikipedia links).
    if (trail && !(trail[0] === ')' && url.includes('('))) url = url.slice(0, url.length - trail[0].length);
    const href = safeHref(url);
    if (!href) continue;
    appendWithMentions(body, text.slice(at, m.index), me);
    const a = el('a', 'link', url);
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    body.append(a);
    at = m.index + url.length;
  }
  appendWithMentions(body, text.slice(at), me);
  return body;
}

/** A nick in its own direction-isolated element, coloured by a hash of its folded form. */
export function nickNode(nick, className = 'nick') {
  const node = el('bdi', className, nick);
  node.dataset.hue = String(nickHue(nick));
  return node;
}

/** One of 12 colour classes for `nick`, stable across sessions and pages. */
export function nickHue(nick) {
  let h = 0;
  for (const ch of nick.toLowerCase()) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 12;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const shortFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', hour12: false });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });

/** A `time` element for a server timestamp (ms): the local time, the full date as a tooltip;
 * `short`: 24-hour digits only, for the margin of a continued message. */
export function timeNode(ts, short = false) {
  const d = new Date(ts);
  const node = el('time', short ? 'time margin-time' : 'time', (short ? shortFormat : timeFormat).format(d));
  node.dateTime = d.toISOString();
  node.title = fullFormat.format(d);
  return node;
}

/** The local calendar day of a timestamp, as a key that compares days. */
export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "Today", "Yesterday" or the full date of a timestamp's day, for a date separator. */
export function dayLabel(ts, now = Date.now()) {
  if (dayKey(ts) === dayKey(now)) return 'Today';
  if (dayKey(ts) === dayKey(now - 86_400_000)) return 'Yesterday';
  return dayFormat.format(new Date(ts));
}
