// The slash commands of text mode (docs/protocol.md §12, crates/natter-proto/src/command.rs),
// parsed into what the page should do. Pure: no DOM, no socket, so that a typed line always
// means the same thing and every mistake gets its usage line.

/** One line of help per command, in the order /help shows them. */
export const HELP = [
  ['text', 'send text to the current room or conversation'],
  ['/me action', 'send an action (* you wave)'],
  ['/msg nick text', 'private message (also /query nick to open the conversation)'],
  ['/r text', 'answer whoever last wrote to you privately'],
  ['/join #room [key]', 'join or create a room'],
  ['/part [#room] [reason]', 'leave a room (also /leave)'],
  ['/topic [text]', 'show or set the topic of the current room'],
  ['/who [#room|*]', 'who is in the room (* for the whole server)'],
  ['/rooms', 'list the rooms (click one to join it)'],
  ['/nick name', 'change your nickname'],
  ['/away [text]', 'mark yourself away (no text: back; also /back)'],
  ['/whois nick', 'who someone is'],
  ['/ignore [nick]', 'ignore someone (no nick: list whom you ignore)'],
  ['/unignore nick', 'stop ignoring someone'],
  ['/i', 'toggle ignore mode: hide room messages, keep private ones'],
  ['/kick nick [reason]', 'operators: remove someone from the room'],
  ['/invite nick [#room]', 'invite someone to a room'],
  ['/op nick, /deop nick', 'operators: make or unmake an operator'],
  ['/voice nick, /devoice nick', 'operators: let someone speak in a moderated room'],
  ['/ban mask, /unban mask', 'operators: ban or unban (nick or nick!user@host)'],
  ['/ephemeral on|off', 'operators: store nothing said in the room'],
  ['/register password', 'make your nickname an account'],
  ['/login nick password', 'log in to your account'],
  ['/logout', 'log out of your account'],
  ['/passwd old new', "change your account's password"],
  ['/history', 'load older messages (as scrolling up does)'],
  ['/clear', 'clear this conversation on this page (nothing is deleted)'],
  ['/quit [reason]', 'leave the chat'],
  ['/help', 'this help'],
];

/** A command the user mistyped: `message` says what to type instead. */
export class CommandError extends Error {}

const usage = (text) => new CommandError(`usage: ${text}`);

/** The first word of `s` and the rest (trimmed), `rest` null when there is none. */
function splitWord(s) {
  const t = s.trim();
  const i = t.search(/\s/);
  if (i < 0) return [t, null];
  const rest = t.slice(i).trim();
  return [t.slice(0, i), rest === '' ? null : rest];
}

/** `#room` at the start of `rest` when there is one, else `current`; and what follows. */
function optionalRoom(rest, current) {
  if (rest !== null && rest.startsWith('#')) {
    const [room, more] = splitWord(rest);
    return [room, more];
  }
  return [current, rest];
}

/**
 * Parses one typed line. `current` is the current conversation: `{kind: 'room'|'private',
 * name}`. Returns an action object (`{do: 'say', text}`, `{do: 'frame', frame}`...), or throws
 * a CommandError whose message is the usage line.
 */
export function parseInput(line, current) {
  // `//text` says "/text" literally, as in text mode and IRC clients.
  if (line.startsWith('//')) return { do: 'say', text: line.slice(1), action: false };
  if (!line.startsWith('/')) {
    if (line.trim() === '') return { do: 'nothing' };
    return { do: 'say', text: line, action: false };
  }
  const [word, rest] = splitWord(line.slice(1));
  const room = current && current.kind === 'room' ? current.name : null;
  const needRoom = (what) => {
    if (!room) throw new CommandError(`${what} works in a room; open one first`);
    return room;
  };
  switch (word.toLowerCase()) {
    case 'help': case 'h': case '?':
      return { do: 'help' };
    case 'me':
      if (rest === null) throw usage('/me does something');
      return { do: 'say', text: rest, action: true };
    case 'msg': case 'm': case 'query': {
      if (rest === null) throw usage('/msg nick message');
      const [to, text] = splitWord(rest);
      return { do: 'private', to, text };
    }
    case 'r': case 'reply':
      if (rest === null) throw usage('/r message');
      return { do: 'reply', text: rest };
    case 'join': case 'j': {
      if (rest === null) throw usage('/join #room');
      const [name, key] = splitWord(rest);
      const target = name.startsWith('#') ? name : `#${name}`;
      return { do: 'join', room: target, key: key === null ? undefined : splitWord(key)[0] };
    }
    case 'part': case 'leave': {
      const [r, reason] = optionalRoom(rest, room);
      if (!r) throw usage('/part #room [reason]');
      return { do: 'part', room: r, reason: reason ?? undefined };
    }
    case 'topic': case 't': {
      const [r, text] = optionalRoom(rest, room);
      if (!r) throw usage('/topic #room [text]');
      return { do: 'frame', frame: text === null ? { type: 'topic', room: r } : { type: 'topic', room: r, topic: text } };
    }
    case 'who': case 'names': case 'w': case 'ls': {
      const target = rest === null ? (word.toLowerCase() === 'ls' ? '*' : room ?? '*') : splitWord(rest)[0];
      return { do: 'frame', frame: target === '*' ? { type: 'who' } : { type: 'who', room: target } };
    }
    case 'rooms': case 'list':
      return { do: 'frame', frame: { type: 'rooms' } };
    case 'nick': {
      if (rest === null) throw usage('/nick newname');
      const [nick, more] = splitWord(rest);
      if (more !== null) throw new CommandError('a nickname has no spaces; usage: /nick newname');
      return { do: 'frame', frame: { type: 'nick', nick } };
    }
    case 'away':
      return { do: 'frame', frame: rest === null ? { type: 'away' } : { type: 'away', text: rest } };
    case 'back':
      return { do: 'frame', frame: { type: 'away' } };
    case 'whois': case 'wi':
      if (rest === null) throw usage('/whois nick');
      return { do: 'frame', frame: { type: 'whois', nick: splitWord(rest)[0] } };
    case 'ignore':
      return { do: 'frame', frame: rest === null ? { type: 'ignore' } : { type: 'ignore', nick: splitWord(rest)[0] } };
    case 'unignore':
      if (rest === null) throw usage('/unignore nick');
      return { do: 'frame', frame: { type: 'unignore', nick: splitWord(rest)[0] } };
    case 'i':
      return { do: 'frame', frame: { type: 'ignore_all' } };
    case 'kick': case 'k': {
      const [r, more] = optionalRoom(rest, room);
      if (!r || more === null) throw usage('/kick [#room] nick [reason]');
      const [nick, reason] = splitWord(more);
      const frame = { type: 'kick', room: r, nick };
      if (reason !== null) frame.reason = reason;
      return { do: 'frame', frame };
    }
    case 'invite': {
      if (rest === null) throw usage('/invite nick [#room]');
      const [nick, r] = splitWord(rest);
      const target = r === null ? needRoom('/invite nick') : splitWord(r)[0];
      return { do: 'frame', frame: { type: 'invite', room: target, nick } };
    }
    case 'op': case 'deop': case 'voice': case 'devoice': {
      const [r, more] = optionalRoom(rest, room);
      if (!r || more === null) throw usage(`/${word} [#room] nick`);
      const on = !word.toLowerCase().startsWith('de');
      const mode = word.toLowerCase().endsWith('op') ? 'op' : 'voice';
      return { do: 'frame', frame: { type: 'mode', room: r, changes: [{ mode, nick: splitWord(more)[0], on }] } };
    }
    case 'ban': case 'unban': {
      const [r, more] = optionalRoom(rest, room);
      if (!r) throw usage(`/${word} [#room] mask`);
      if (more === null) {
        if (word.toLowerCase() === 'unban') throw usage('/unban [#room] mask');
        return { do: 'frame', frame: { type: 'bans', room: r } };
      }
      const on = word.toLowerCase() === 'ban';
      return { do: 'frame', frame: { type: 'mode', room: r, changes: [{ mode: 'ban', mask: splitWord(more)[0], on }] } };
    }
    case 'ephemeral': {
      const [r, more] = optionalRoom(rest, room);
      if (!r || (more !== 'on' && more !== 'off')) throw usage('/ephemeral [#room] on|off');
      return { do: 'frame', frame: { type: 'ephemeral', room: r, on: more === 'on' } };
    }
    case 'register':
      if (rest === null) throw usage('/register password');
      return { do: 'frame', frame: { type: 'register', password: rest }, secret: true };
    case 'login': case 'identify': {
      const [name, password] = rest === null ? [null, null] : splitWord(rest);
      if (!name || password === null) throw usage('/login nick password');
      return { do: 'frame', frame: { type: 'login', name, password }, secret: true };
    }
    case 'logout':
      return { do: 'frame', frame: { type: 'logout' } };
    case 'passwd': {
      const [old, nw] = rest === null ? [null, null] : splitWord(rest);
      if (!old || nw === null) throw usage('/passwd old new');
      return { do: 'frame', frame: { type: 'passwd', old, new: nw }, secret: true };
    }
    case 'clear':
      return { do: 'clear' };
    case 'history': case 'hist':
      return { do: 'older' };
    case 'quit': case 'exit': case 'q': case 'bye':
      return { do: 'quit', reason: rest ?? undefined };
    default:
      throw new CommandError(`unknown command /${word}; /help lists the commands (type //${word} to send it as text)`);
  }
}
