//! The commands people type: `@nick text`, `/join #room`, `/i`, ...
//!
//! Shared by every human-facing front end (the server's text mode and UDP door, the terminal
//! client) so that the same line means the same thing everywhere. Parsing is pure;
//! what a command does is up to the caller.

use crate::decode::EncodingChoice;

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing to do (an empty or blank line).
    Empty,
    /// Plain text for the current room.
    Say(String),
    /// A private message: `@nick text` or `/msg nick text`.
    Private {
        /// Recipient.
        to: String,
        /// Message text.
        text: String,
    },
    /// A slash command.
    SlashCommand(SlashCommand),
}

/// A slash command, with its arguments checked for presence (not for validity: the server
/// checks names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/help [command]`
    Help(Option<String>),
    /// `/who [#room|*] [nick]`: who is online in a room (the current one when absent), or on
    /// the whole server with `*`; with a nick, the page that follows it (a big list comes a
    /// page at a time). `/ls` is `/who *`, as in the tutorials (`/ls nick`: `/who * nick`).
    Who {
        /// The room, `*`, or `None` for the current room.
        target: Option<String>,
        /// Start after this nick: the last one of the page before.
        after: Option<String>,
    },
    /// `/i`: toggle ignoring all room messages.
    IgnoreAll,
    /// `/join #room`
    Join(String),
    /// `/part [#room] [reason]`
    Part {
        /// Room to leave; the current one when absent.
        room: Option<String>,
        /// Optional reason.
        reason: Option<String>,
    },
    /// `/rooms`
    Rooms,
    /// `/nick NEW`
    Nick(String),
    /// `/me action`
    Me(String),
    /// `/topic [#room] [new topic]`
    Topic {
        /// Room; the current one when absent.
        room: Option<String>,
        /// New topic; absent to show the current one.
        topic: Option<String>,
    },
    /// `/history [#room] [count]`: page back through stored messages.
    History {
        /// Room; the current one when absent.
        room: Option<String>,
        /// How many messages.
        count: Option<u32>,
    },
    /// `/ignore [NICK]`: ignore a user, or list who is ignored.
    Ignore(Option<String>),
    /// `/unignore NICK`
    Unignore(String),
    /// `/ephemeral [#room] on|off`: store nothing from this room (operators only).
    Ephemeral {
        /// Room; the current one when absent.
        room: Option<String>,
        /// True for on.
        on: bool,
    },
    /// `/kick [#room] nick [reason]`: remove someone from a room (operators).
    Kick {
        /// Room; the current one when absent.
        room: Option<String>,
        /// Who.
        nick: String,
        /// Why.
        reason: Option<String>,
    },
    /// `/ban [#room] [mask]` and `/unban [#room] mask`: add or remove a ban; `/ban` alone
    /// lists the bans.
    Ban {
        /// Room; the current one when absent.
        room: Option<String>,
        /// Mask (`nick`, `nick!user@host`, wildcards `*` `?`); absent lists.
        mask: Option<String>,
        /// True for `/ban`, false for `/unban`.
        on: bool,
    },
    /// `/op [#room] nick`, `/deop`, `/voice`, `/devoice`.
    Standing {
        /// Room; the current one when absent.
        room: Option<String>,
        /// Who.
        nick: String,
        /// True: operator; false: voice.
        operator: bool,
        /// Grant (true) or take.
        on: bool,
    },
    /// `/mode [#room] [+tnmis-k key +l n ...]`: show or change room settings (IRC letters).
    Mode {
        /// Room; the current one when absent.
        room: Option<String>,
        /// Mode words as typed; empty to show the settings.
        modes: Vec<String>,
    },
    /// `/invite nick [#room]`
    Invite {
        /// Who.
        nick: String,
        /// Room; the current one when absent.
        room: Option<String>,
    },
    /// `/away [message]`: away with a message, or back without one.
    Away(Option<String>),
    /// `/whois nick`
    Whois(String),
    /// `/r text` (also `/reply`): a private message to whoever last sent you one, so that
    /// whoever answers several visitors need not type their names. The front end tracks who
    /// that is.
    Reply(String),
    /// `/encoding [gbk|utf-8|auto]`: which encoding a text-mode or UDP peer reads (a Windows
    /// peer reads GBK); absent to show the current one. Front ends that always speak UTF-8
    /// (the terminal client) refuse it.
    Encoding(Option<EncodingChoice>),
    /// `/register PASSWORD`: register your nickname as an account.
    Register(Typed),
    /// `/login NICK PASSWORD` (also `/identify`): log in to an account.
    Login {
        /// The account name.
        name: String,
        /// Its password.
        password: Typed,
    },
    /// `/logout`
    Logout,
    /// `/passwd OLD NEW`: change your account's password.
    Passwd {
        /// The current password.
        old: Typed,
        /// The new one.
        new: Typed,
    },
    /// `/quit [reason]`, also bare `quit` and `exit`.
    Quit(Option<String>),
}

/// A password as typed in a command: its `Debug` shows stars, so that no log line or test
/// failure prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Typed(pub String);

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"********\"")
    }
}

impl SlashCommand {
    /// The command as it may be shown back to its typist (a client's scrollback, a history of
    /// typed lines): `None` when it is shown as typed; the line with its passwords replaced
    /// by stars otherwise.
    pub fn masked(&self) -> Option<String> {
        match self {
            SlashCommand::Register(_) => Some("/register ********".into()),
            SlashCommand::Login { name, .. } => Some(format!("/login {name} ********")),
            SlashCommand::Passwd { .. } => Some("/passwd ******** ********".into()),
            _ => None,
        }
    }
}

/// Why a line is not a valid command. The text shows the right usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A known command with missing or bad arguments.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// A command name that does not exist.
    #[error("unknown command /{0}; type /help for the list")]
    Unknown(String),
}

/// One line of help per command, in the order `/help` shows them.
pub const HELP: &[(&str, &str)] = &[
    ("text", "send text to the current room"),
    ("@nick text", "private message to nick (also /msg nick text)"),
    ("/r text", "reply privately to whoever last sent you a private message"),
    ("/help [command]", "this help"),
    ("/ls [nick]", "who is online on the whole server; after nick: the next page"),
    ("/who [#room|*] [nick]", "who is in the room (* for the whole server); after nick: the next page"),
    ("/i", "toggle ignore mode: hide room messages, keep private ones"),
    ("/join #room", "join or create a room; it becomes the current room"),
    ("/part [#room] [reason]", "leave a room"),
    ("/rooms", "list rooms"),
    ("/nick name", "change your nickname"),
    ("/me action", "send an action (* nick waves)"),
    ("/topic [#room] [text]", "show or set the topic"),
    ("/history [#room] [n]", "show older messages"),
    ("/ignore [nick]", "ignore a user everywhere (no nick: list)"),
    ("/unignore nick", "stop ignoring a user"),
    ("/ephemeral [#room] on|off", "operators: store nothing from this room"),
    ("/kick [#room] nick [reason]", "operators: remove someone from the room"),
    ("/ban [#room] [mask]", "operators: ban nick or nick!user@host (no mask: list bans)"),
    ("/unban [#room] mask", "operators: lift a ban"),
    ("/op /deop [#room] nick", "operators: grant or take operator standing"),
    ("/voice /devoice [#room] nick", "operators: let someone speak in a moderated room"),
    ("/mode [#room] [+tnmis +k key +l n]", "show or (operators) change room settings"),
    ("/invite nick [#room]", "invite someone (past invite-only and bans)"),
    ("/away [message]", "mark yourself away (no message: back)"),
    ("/whois nick", "who someone is and where"),
    ("/register password", "register your nickname as an account (8 characters or more)"),
    ("/login nick password", "log in to your account (also /identify)"),
    ("/logout", "log out of your account"),
    ("/passwd old new", "change your account's password"),
    ("/encoding [gbk|utf-8|auto]", "text mode and UDP: the encoding you read (auto follows what you send)"),
    ("/quit [reason]", "leave (also: quit, exit)"),
];

/// The most messages one `/history` shows (the hub's largest page): more is refused with the
/// usage rather than quietly cut.
pub const MAX_HISTORY_COUNT: u32 = 500;

/// Other names a command is typed as, and the name its help line is under, so that `/help j`
/// explains `/join` like `/help join`.
const HELP_ALIASES: &[(&str, &str)] = &[
    ("msg", "@"),
    ("m", "@"),
    ("query", "@"),
    ("reply", "r"),
    ("h", "help"),
    ("?", "help"),
    ("names", "who"),
    ("w", "who"),
    ("j", "join"),
    ("leave", "part"),
    ("list", "rooms"),
    ("t", "topic"),
    ("hist", "history"),
    ("k", "kick"),
    ("back", "away"),
    ("wi", "whois"),
    ("charset", "encoding"),
    ("q", "quit"),
    ("bye", "quit"),
    ("exit", "quit"),
    ("identify", "login"),
];

/// The command names a help line is about: its `/words` (`/op /deop` is both), or `@` for
/// private messages and `text` for plain lines.
fn help_names(usage: &str) -> impl Iterator<Item = &str> {
    usage.split_whitespace().filter_map(move |w| match w {
        "text" if usage == "text" => Some("text"),
        w if w.starts_with('@') => Some("@"),
        w => w.strip_prefix('/'),
    })
}

/// The help line(s) of one command for `/help join` (with or without the slash, aliases
/// too: `/help j`), aligned like [`help_lines`]; `None` when no command is called that.
/// A name that is no command's but starts some (`/help to`) gives those commands.
pub fn help_topic(topic: &str) -> Option<Vec<String>> {
    let topic = topic.trim().trim_start_matches('/').to_lowercase();
    let topic = match topic.strip_prefix('@') {
        Some(_) => "@".to_string(),
        None => topic,
    };
    if topic.is_empty() {
        return None;
    }
    let name = HELP_ALIASES.iter().find(|(alias, _)| *alias == topic).map_or(topic.as_str(), |(_, n)| n);
    let width = HELP.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let pick = |matches: &dyn Fn(&str) -> bool| -> Vec<String> {
        HELP.iter()
            .filter(|(c, _)| help_names(c).any(matches))
            .map(|(c, d)| format!("{c:<width$}  {d}"))
            .collect()
    };
    let exact = pick(&|n| n == name);
    if !exact.is_empty() {
        return Some(exact);
    }
    let prefixed = pick(&|n| n != "@" && n.starts_with(name));
    (!prefixed.is_empty()).then_some(prefixed)
}

fn split_word(s: &str) -> (&str, Option<&str>) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => {
            let rest = s[i..].trim();
            (&s[..i], (!rest.is_empty()).then_some(rest))
        }
        None => (s, None),
    }
}

fn room_arg(rest: Option<&str>) -> (Option<String>, Option<&str>) {
    match rest {
        Some(r) if r.starts_with('#') => {
            let (room, tail) = split_word(r);
            (Some(room.to_string()), tail)
        }
        other => (None, other),
    }
}

/// `nick text` after `@` or `/msg`: both parts are required.
fn private(rest: &str, usage: &'static str) -> Result<Input, InputError> {
    match split_word(rest) {
        (to, Some(text)) if !to.is_empty() => Ok(Input::Private { to: to.into(), text: text.into() }),
        _ => Err(InputError::Usage(usage)),
    }
}

/// Parses one typed line. Trailing `\r`/`\n` and surrounding blanks of commands are ignored;
/// plain text is kept as typed (minus the line terminator).
pub fn parse_input(line: &str) -> Result<Input, InputError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Input::Empty);
    }
    if trimmed == "quit" || trimmed == "exit" {
        return Ok(Input::SlashCommand(SlashCommand::Quit(None)));
    }
    if let Some(rest) = trimmed.strip_prefix('@') {
        return private(rest, "@nick message");
    }
    let Some(cmdline) = trimmed.strip_prefix('/') else {
        return Ok(Input::Say(line.to_string()));
    };
    // "//text" sends "/text" literally, as in IRC clients.
    if cmdline.starts_with('/') {
        return Ok(Input::Say(cmdline.to_string()));
    }
    let (name, rest) = split_word(cmdline);
    let name = name.to_ascii_lowercase();
    let cmd = match name.as_str() {
        "help" | "h" | "?" => SlashCommand::Help(rest.map(|r| r.trim_start_matches('/').to_string())),
        "ls" | "who" | "names" | "w" => {
            let (target, after) = match rest.map(split_word) {
                None => (None, None),
                Some((target, after)) => {
                    (Some(target.to_string()), after.map(|a| split_word(a).0.to_string()))
                }
            };
            // `/ls` is everyone online: `/ls nick` goes on after that nick, `/ls #room` lists
            // the room.
            let (target, after) = match (name.as_str(), target) {
                ("ls", Some(nick)) if !nick.starts_with('#') && nick != "*" && after.is_none() => {
                    (Some("*".into()), Some(nick))
                }
                ("ls", None) => (Some("*".into()), after),
                (_, target) => (target, after),
            };
            SlashCommand::Who { target, after }
        }
        "i" => SlashCommand::IgnoreAll,
        "join" | "j" => match rest {
            Some(r) => SlashCommand::Join(split_word(r).0.to_string()),
            None => return Err(InputError::Usage("/join #room")),
        },
        "part" | "leave" => {
            let (room, reason) = room_arg(rest);
            SlashCommand::Part { room, reason: reason.map(str::to_string) }
        }
        "rooms" | "list" => SlashCommand::Rooms,
        "nick" => match rest.map(split_word) {
            Some((nick, None)) => SlashCommand::Nick(nick.to_string()),
            // `/nick zed smith` must not quietly become `zed`.
            Some((_, Some(_))) => {
                return Err(InputError::Usage("/nick newname (one word: nicknames have no spaces)"));
            }
            None => return Err(InputError::Usage("/nick newname")),
        },
        "me" => match rest {
            Some(r) => SlashCommand::Me(r.to_string()),
            None => return Err(InputError::Usage("/me does something")),
        },
        "msg" | "m" | "query" => return private(rest.unwrap_or(""), "/msg nick message"),
        "topic" | "t" => {
            let (room, topic) = room_arg(rest);
            SlashCommand::Topic { room, topic: topic.map(str::to_string) }
        }
        "history" | "hist" => {
            let (room, count) = room_arg(rest);
            let count = match count {
                Some(c) => match c.parse::<u32>() {
                    Ok(n) if (1..=MAX_HISTORY_COUNT).contains(&n) => Some(n),
                    _ => return Err(InputError::Usage("/history [#room] [count], count from 1 to 500")),
                },
                None => None,
            };
            SlashCommand::History { room, count }
        }
        "ignore" => SlashCommand::Ignore(rest.map(|r| split_word(r).0.to_string())),
        "unignore" => match rest {
            Some(r) => SlashCommand::Unignore(split_word(r).0.to_string()),
            None => return Err(InputError::Usage("/unignore nick")),
        },
        "ephemeral" => {
            let (room, arg) = room_arg(rest);
            let on = match arg.map(str::to_ascii_lowercase).as_deref() {
                Some("on") => true,
                Some("off") => false,
                _ => return Err(InputError::Usage("/ephemeral [#room] on|off")),
            };
            SlashCommand::Ephemeral { room, on }
        }
        "kick" | "k" => {
            let (room, rest) = room_arg(rest);
            match rest.map(split_word) {
                Some((nick, reason)) => {
                    SlashCommand::Kick { room, nick: nick.to_string(), reason: reason.map(str::to_string) }
                }
                None => return Err(InputError::Usage("/kick [#room] nick [reason]")),
            }
        }
        "ban" | "unban" => {
            let on = name == "ban";
            let (room, rest) = room_arg(rest);
            let mask = rest.map(|r| split_word(r).0.to_string());
            if !on && mask.is_none() {
                return Err(InputError::Usage("/unban [#room] mask"));
            }
            SlashCommand::Ban { room, mask, on }
        }
        "op" | "deop" | "voice" | "devoice" => {
            let (room, rest) = room_arg(rest);
            let Some(nick) = rest.map(|r| split_word(r).0.to_string()) else {
                return Err(InputError::Usage("/op [#room] nick (also /deop, /voice, /devoice)"));
            };
            SlashCommand::Standing { room, nick, operator: name.ends_with("op"), on: !name.starts_with("de") }
        }
        "mode" => {
            let (room, rest) = room_arg(rest);
            SlashCommand::Mode {
                room,
                modes: rest.unwrap_or("").split_whitespace().map(str::to_string).collect(),
            }
        }
        "invite" => match rest.map(split_word) {
            Some((nick, room)) => SlashCommand::Invite {
                nick: nick.to_string(),
                room: room.map(|r| split_word(r).0.to_string()),
            },
            None => return Err(InputError::Usage("/invite nick [#room]")),
        },
        "away" => SlashCommand::Away(rest.map(str::to_string)),
        "back" => SlashCommand::Away(None),
        "whois" | "wi" => match rest {
            Some(r) => SlashCommand::Whois(split_word(r).0.to_string()),
            None => return Err(InputError::Usage("/whois nick")),
        },
        "r" | "reply" => match rest {
            Some(r) => SlashCommand::Reply(r.to_string()),
            None => return Err(InputError::Usage("/r message")),
        },
        "encoding" | "charset" => match rest {
            Some(r) => match split_word(r).0.parse::<EncodingChoice>() {
                Ok(choice) => SlashCommand::Encoding(Some(choice)),
                Err(_) => return Err(InputError::Usage("/encoding gbk|utf-8|auto")),
            },
            None => SlashCommand::Encoding(None),
        },
        "register" => match rest {
            Some(password) => SlashCommand::Register(Typed(password.to_string())),
            None => return Err(InputError::Usage("/register password")),
        },
        "login" | "identify" => match rest.map(split_word) {
            Some((name, Some(password))) => {
                SlashCommand::Login { name: name.to_string(), password: Typed(password.to_string()) }
            }
            _ => return Err(InputError::Usage("/login nick password")),
        },
        "logout" => SlashCommand::Logout,
        "passwd" => match rest.map(split_word) {
            Some((old, Some(new))) => {
                SlashCommand::Passwd { old: Typed(old.to_string()), new: Typed(new.to_string()) }
            }
            _ => return Err(InputError::Usage("/passwd old new")),
        },
        "quit" | "exit" | "q" | "bye" => SlashCommand::Quit(rest.map(str::to_string)),
        other => return Err(InputError::Unknown(other.to_string())),
    };
    Ok(Input::SlashCommand(cmd))
}

/// The help text as lines, aligned for a monospace display.
pub fn help_lines() -> Vec<String> {
    let width = HELP.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    HELP.iter().map(|(c, d)| format!("{c:<width$}  {d}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> SlashCommand {
        match parse_input(line).unwrap() {
            Input::SlashCommand(c) => c,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn plain_and_private() {
        assert_eq!(parse_input("hello world\r\n").unwrap(), Input::Say("hello world".into()));
        assert_eq!(parse_input("   ").unwrap(), Input::Empty);
        assert_eq!(
            parse_input("@bob  hi there").unwrap(),
            Input::Private { to: "bob".into(), text: "hi there".into() }
        );
        assert_eq!(
            parse_input("/msg bob yo").unwrap(),
            Input::Private { to: "bob".into(), text: "yo".into() }
        );
        assert_eq!(parse_input("@bob").unwrap_err(), InputError::Usage("@nick message"));
        assert_eq!(parse_input("//slash").unwrap(), Input::Say("/slash".into()));
    }

    #[test]
    fn commands() {
        assert_eq!(cmd("/i"), SlashCommand::IgnoreAll);
        let who = |target: Option<&str>, after: Option<&str>| SlashCommand::Who {
            target: target.map(Into::into),
            after: after.map(Into::into),
        };
        assert_eq!(cmd("/ls"), who(Some("*"), None));
        assert_eq!(cmd("/ls #rust"), who(Some("#rust"), None));
        assert_eq!(cmd("/ls bob"), who(Some("*"), Some("bob")));
        assert_eq!(cmd("/ls * bob"), who(Some("*"), Some("bob")));
        assert_eq!(cmd("/who"), who(None, None));
        assert_eq!(cmd("/who #rust"), who(Some("#rust"), None));
        assert_eq!(cmd("/who #rust bob"), who(Some("#rust"), Some("bob")));
        assert_eq!(cmd("/who * bob extra"), who(Some("*"), Some("bob")));
        assert_eq!(cmd("/join #rust"), SlashCommand::Join("#rust".into()));
        assert_eq!(cmd("/part"), SlashCommand::Part { room: None, reason: None });
        assert_eq!(
            cmd("/part #a bye all"),
            SlashCommand::Part { room: Some("#a".into()), reason: Some("bye all".into()) }
        );
        assert_eq!(
            cmd("/topic #a new topic"),
            SlashCommand::Topic { room: Some("#a".into()), topic: Some("new topic".into()) }
        );
        assert_eq!(cmd("/topic"), SlashCommand::Topic { room: None, topic: None });
        assert_eq!(cmd("/history 20"), SlashCommand::History { room: None, count: Some(20) });
        assert_eq!(cmd("/me waves"), SlashCommand::Me("waves".into()));
        assert_eq!(cmd("quit"), SlashCommand::Quit(None));
        assert_eq!(cmd("exit"), SlashCommand::Quit(None));
        assert_eq!(cmd("/QUIT gone"), SlashCommand::Quit(Some("gone".into())));
        assert_eq!(cmd("/ephemeral on"), SlashCommand::Ephemeral { room: None, on: true });
        assert_eq!(
            cmd("/kick bob spamming links"),
            SlashCommand::Kick { room: None, nick: "bob".into(), reason: Some("spamming links".into()) }
        );
        assert_eq!(
            cmd("/kick #a bob"),
            SlashCommand::Kick { room: Some("#a".into()), nick: "bob".into(), reason: None }
        );
        assert_eq!(cmd("/ban"), SlashCommand::Ban { room: None, mask: None, on: true });
        assert_eq!(
            cmd("/unban #a bob"),
            SlashCommand::Ban { room: Some("#a".into()), mask: Some("bob".into()), on: false }
        );
        assert_eq!(
            cmd("/devoice bob"),
            SlashCommand::Standing { room: None, nick: "bob".into(), operator: false, on: false }
        );
        assert_eq!(
            cmd("/op #a bob"),
            SlashCommand::Standing { room: Some("#a".into()), nick: "bob".into(), operator: true, on: true }
        );
        assert_eq!(
            cmd("/mode #a +k secret"),
            SlashCommand::Mode { room: Some("#a".into()), modes: vec!["+k".into(), "secret".into()] }
        );
        assert_eq!(cmd("/away lunch"), SlashCommand::Away(Some("lunch".into())));
        assert_eq!(cmd("/away"), SlashCommand::Away(None));
        assert_eq!(
            cmd("/invite bob #a"),
            SlashCommand::Invite { nick: "bob".into(), room: Some("#a".into()) }
        );
        assert_eq!(cmd("/whois bob"), SlashCommand::Whois("bob".into()));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_input("/join").unwrap_err(), InputError::Usage("/join #room"));
        assert_eq!(parse_input("/frobnicate").unwrap_err(), InputError::Unknown("frobnicate".into()));
        assert!(parse_input("/history lots").is_err());
        assert!(parse_input("/kick").is_err());
        assert!(parse_input("/unban").is_err());
        assert!(parse_input("/op").is_err());
        assert_eq!(parse_input("/msg bob").unwrap_err(), InputError::Usage("/msg nick message"));
        assert_eq!(parse_input("/msg").unwrap_err(), InputError::Usage("/msg nick message"));
        assert_eq!(parse_input("@ hi").unwrap_err(), InputError::Usage("@nick message"));
        assert_eq!(
            cmd("/UNBAN #a bob"),
            SlashCommand::Ban { room: Some("#a".into()), mask: Some("bob".into()), on: false }
        );
        assert_eq!(
            cmd("/DeVoice bob"),
            SlashCommand::Standing { room: None, nick: "bob".into(), operator: false, on: false }
        );
    }

    #[test]
    fn reply_to_the_last_private_message() {
        assert_eq!(cmd("/r yes, how can I help?"), SlashCommand::Reply("yes, how can I help?".into()));
        assert_eq!(cmd("/R  spaced  out "), SlashCommand::Reply("spaced  out".into()));
        assert_eq!(cmd("/reply ok"), SlashCommand::Reply("ok".into()));
        assert_eq!(parse_input("/r").unwrap_err(), InputError::Usage("/r message"));
        assert_eq!(parse_input("/r    ").unwrap_err(), InputError::Usage("/r message"));
        // Only the command word: `/rooms` and a word starting with r are something else.
        assert_eq!(cmd("/rooms"), SlashCommand::Rooms);
        assert_eq!(parse_input("/rr hi").unwrap_err(), InputError::Unknown("rr".into()));
        assert!(help_lines().iter().any(|l| l.starts_with("/r text")));
    }

    #[test]
    fn a_nick_is_one_word() {
        assert_eq!(cmd("/nick zed"), SlashCommand::Nick("zed".into()));
        assert_eq!(cmd("/nick  zed  "), SlashCommand::Nick("zed".into()));
        assert_eq!(
            parse_input("/nick zed smith").unwrap_err(),
            InputError::Usage("/nick newname (one word: nicknames have no spaces)")
        );
        assert_eq!(parse_input("/nick").unwrap_err(), InputError::Usage("/nick newname"));
    }

    #[test]
    fn history_counts_are_1_to_500() {
        assert_eq!(
            cmd("/history #a 500"),
            SlashCommand::History { room: Some("#a".into()), count: Some(500) }
        );
        assert_eq!(cmd("/history 1"), SlashCommand::History { room: None, count: Some(1) });
        let usage = InputError::Usage("/history [#room] [count], count from 1 to 500");
        assert_eq!(parse_input("/history 0").unwrap_err(), usage);
        assert_eq!(parse_input("/history #a 0").unwrap_err(), usage);
        assert_eq!(parse_input("/history 501").unwrap_err(), usage);
        assert_eq!(parse_input("/history -3").unwrap_err(), usage);
    }

    #[test]
    fn help_for_one_command() {
        let join = help_topic("join").unwrap();
        assert_eq!(join.len(), 1);
        assert!(join[0].starts_with("/join #room") && join[0].contains("join or create a room"), "{join:?}");
        assert_eq!(help_topic("/join"), Some(join.clone()));
        assert_eq!(help_topic("JOIN"), Some(join.clone()));
        assert_eq!(help_topic("j"), Some(join));
        assert!(help_topic("msg").unwrap()[0].starts_with("@nick text"));
        assert!(help_topic("deop").unwrap()[0].starts_with("/op /deop"));
        assert!(help_topic("exit").unwrap()[0].starts_with("/quit"));
        let bans = help_topic("ban").unwrap();
        assert_eq!(bans.len(), 1, "{bans:?}");
        // Exactly `r` is the reply command, not every command starting with r.
        assert_eq!(help_topic("r").unwrap().len(), 1);
        // A start of a name lists the commands it starts.
        assert!(help_topic("hist").unwrap()[0].starts_with("/history"));
        assert!(help_topic("to").unwrap()[0].starts_with("/topic"));
        assert_eq!(help_topic("nosuch"), None);
        assert_eq!(help_topic(""), None);
        // Every command in the table has help of its own.
        for (usage, _) in HELP {
            for name in help_names(usage) {
                assert!(help_topic(name).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(cmd("/encoding gbk"), SlashCommand::Encoding(Some(EncodingChoice::Gbk)));
        assert_eq!(cmd("/ENCODING UTF-8"), SlashCommand::Encoding(Some(EncodingChoice::Utf8)));
        assert_eq!(cmd("/encoding auto"), SlashCommand::Encoding(Some(EncodingChoice::Auto)));
        assert_eq!(cmd("/encoding"), SlashCommand::Encoding(None));
        assert_eq!(
            parse_input("/encoding bogus").unwrap_err(),
            InputError::Usage("/encoding gbk|utf-8|auto")
        );
        assert!(help_lines().iter().any(|l| l.starts_with("/encoding")));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in "\\PC{0,80}") {
            let _ = parse_input(&line);
        }
    }

    #[test]
    fn account_commands_keep_their_passwords_out_of_sight() {
        assert_eq!(cmd("/register correct horse"), SlashCommand::Register(Typed("correct horse".into())));
        assert_eq!(
            cmd("/login Bob my secret pass"),
            SlashCommand::Login { name: "Bob".into(), password: Typed("my secret pass".into()) }
        );
        assert_eq!(
            cmd("/identify bob pw12345678"),
            SlashCommand::Login { name: "bob".into(), password: Typed("pw12345678".into()) }
        );
        assert_eq!(cmd("/logout"), SlashCommand::Logout);
        assert_eq!(
            cmd("/passwd old1 new one"),
            SlashCommand::Passwd { old: Typed("old1".into()), new: Typed("new one".into()) }
        );
        for (line, usage) in [
            ("/register", "/register password"),
            ("/login", "/login nick password"),
            ("/login bob", "/login nick password"),
            ("/passwd old", "/passwd old new"),
        ] {
            assert_eq!(parse_input(line), Err(InputError::Usage(usage)), "{line}");
        }
        let login = cmd("/login bob hunter2hunter2");
        assert!(!format!("{login:?}").contains("hunter2"));
        assert_eq!(login.masked().as_deref(), Some("/login bob ********"));
        assert_eq!(cmd("/register hunter2hunter2").masked().as_deref(), Some("/register ********"));
        assert_eq!(cmd("/passwd a b").masked().as_deref(), Some("/passwd ******** ********"));
        assert_eq!(cmd("/join #a").masked(), None);
    }
}
