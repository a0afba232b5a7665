//! What a typed line does, decided once for line mode and the TUI: the grammar is
//! `natter_proto::command::parse_input` (the same as the server's text mode); this module
//! maps each command onto the native protocol, relative to the current conversation.

use crate::conn::Target;
use natter_proto::command::{HELP, Input, SlashCommand, help_lines, parse_input};
use natter_proto::native::{ClientFrame, RoomChangeFrame};

/// What to do with a typed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing (blank line).
    Nothing,
    /// Send a chat message.
    Send {
        /// Room or nick.
        target: Target,
        /// The text.
        text: String,
        /// True for `/me`.
        action: bool,
    },
    /// Send this frame; the answer arrives as an event.
    Submit(ClientFrame),
    /// Show these lines locally.
    Show(Vec<String>),
    /// Leave, with an optional reason.
    Quit(Option<String>),
    /// The line was wrong; show this.
    Error(String),
}

/// Decides what `line` does when `current` is the open conversation.
pub fn plan(line: &str, current: &Target) -> Plan {
    let input = match parse_input(line) {
        Ok(i) => i,
        Err(e) => return Plan::Error(e.to_string()),
    };
    let room_of = |room: Option<String>| -> Result<String, Box<Plan>> {
        match (room, current) {
            (Some(r), _) => Ok(r),
            (None, Target::Room(r)) => Ok(r.clone()),
            (None, Target::Nick(_)) => {
                Err(Box::new(Plan::Error("this is a private conversation; name a room, e.g. #lobby".into())))
            }
        }
    };
    match input {
        Input::Empty => Plan::Nothing,
        Input::Say(text) => Plan::Send { target: current.clone(), text, action: false },
        Input::Private { to, text } => Plan::Send { target: Target::Nick(to), text, action: false },
        Input::SlashCommand(cmd) => match cmd {
            SlashCommand::Help(None) => Plan::Show(help_lines()),
            SlashCommand::Help(Some(topic)) => {
                let topic = topic.to_ascii_lowercase();
                let width = HELP.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
                let lines: Vec<String> = HELP
                    .iter()
                    .filter(|(c, _)| c.trim_start_matches(['/', '@']).starts_with(topic.as_str()))
                    .map(|(c, d)| format!("{c:<width$}  {d}"))
                    .collect();
                if lines.is_empty() {
                    Plan::Error(format!("no help for {topic}; type /help"))
                } else {
                    Plan::Show(lines)
                }
            }
            SlashCommand::Me(text) => Plan::Send { target: current.clone(), text, action: true },
            SlashCommand::Who { target, after } => {
                let room = match target.as_deref() {
                    Some("*") => None,
                    Some(r) => Some(r.to_string()),
                    None => room_of(None).ok(),
                };
                Plan::Submit(ClientFrame::Who { room, detail: false, after, limit: None, id: None })
            }
            SlashCommand::IgnoreAll => Plan::Submit(ClientFrame::IgnoreAll { on: None, id: None }),
            SlashCommand::Join(room) => {
                let room = if room.starts_with('#') { room } else { format!("#{room}") };
                match natter_proto::names::validate_room(&room) {
                    Ok(()) => Plan::Submit(ClientFrame::Join { room, key: None, id: None }),
                    Err(e) => Plan::Error(e.to_string()),
                }
            }
            SlashCommand::Part { room, reason } => match room_of(room) {
                Ok(room) => Plan::Submit(ClientFrame::Part { room, reason, id: None }),
                Err(p) => *p,
            },
            SlashCommand::Rooms => Plan::Submit(ClientFrame::Rooms { id: None }),
            SlashCommand::Nick(nick) => match natter_proto::names::validate_nick(&nick) {
                Ok(()) => Plan::Submit(ClientFrame::Nick { nick, id: None }),
                Err(e) => Plan::Error(e.to_string()),
            },
            SlashCommand::Topic { room, topic } => match room_of(room) {
                Ok(room) => Plan::Submit(ClientFrame::Topic { room, topic, id: None }),
                Err(p) => *p,
            },
            // In a private conversation: its history (kept by the server for accounts).
            SlashCommand::History { room, count } => Plan::Submit(ClientFrame::History {
                room: room.unwrap_or_else(|| match current {
                    Target::Room(r) | Target::Nick(r) => r.clone(),
                }),
                before: None,
                after: None,
                limit: Some(count.unwrap_or(20)),
                id: None,
            }),
            // The server lists who is ignored when asked to ignore nobody.
            SlashCommand::Ignore(nick) => {
                Plan::Submit(ClientFrame::Ignore { nick: nick.unwrap_or_default(), id: None })
            }
            SlashCommand::Unignore(nick) => Plan::Submit(ClientFrame::Unignore { nick, id: None }),
            SlashCommand::Ephemeral { room, on } => match room_of(room) {
                Ok(room) => Plan::Submit(ClientFrame::Ephemeral { room, on, id: None }),
                Err(p) => *p,
            },
            SlashCommand::Kick { room, nick, reason } => match room_of(room) {
                Ok(room) => Plan::Submit(ClientFrame::Kick { room, nick, reason, id: None }),
                Err(p) => *p,
            },
            SlashCommand::Ban { room, mask, on } => match (room_of(room), mask) {
                (Ok(room), None) => Plan::Submit(ClientFrame::Bans { room, id: None }),
                (Ok(room), Some(mask)) => {
                    let changes = vec![RoomChangeFrame::Ban { mask, on }];
                    Plan::Submit(ClientFrame::Mode { room, changes, id: None })
                }
                (Err(p), _) => *p,
            },
            SlashCommand::Standing { room, nick, operator, on } => match room_of(room) {
                Ok(room) => {
                    let change = if operator {
                        RoomChangeFrame::Op { nick, on }
                    } else {
                        RoomChangeFrame::Voice { nick, on }
                    };
                    Plan::Submit(ClientFrame::Mode { room, changes: vec![change], id: None })
                }
                Err(p) => *p,
            },
            SlashCommand::Mode { room, modes } => match room_of(room) {
                Ok(room) if modes.is_empty() => {
                    Plan::Submit(ClientFrame::Mode { room, changes: Vec::new(), id: None })
                }
                Ok(_) => {
                    Plan::Error("the client changes modes with /op, /voice, /ban; /mode shows them".into())
                }
                Err(p) => *p,
            },
            SlashCommand::Invite { nick, room } => match room_of(room) {
                Ok(room) => Plan::Submit(ClientFrame::Invite { room, nick, id: None }),
                Err(p) => *p,
            },
            SlashCommand::Away(text) => Plan::Submit(ClientFrame::Away { text, id: None }),
            SlashCommand::Whois(nick) => Plan::Submit(ClientFrame::Whois { nick, id: None }),
            // Passwords go to the server and nowhere else: never into the client's config.
            SlashCommand::Register(password) => {
                Plan::Submit(ClientFrame::Register { password: password.0, id: None })
            }
            SlashCommand::Login { name, password } => Plan::Submit(ClientFrame::Login {
                msg: None,
                name: Some(name),
                password: Some(password.0),
                id: None,
            }),
            SlashCommand::Logout => Plan::Submit(ClientFrame::Logout { id: None }),
            SlashCommand::Passwd { old, new } => {
                Plan::Submit(ClientFrame::Passwd { old: old.0, new: new.0, id: None })
            }
            // The client's private conversations are already open to type into: `/r` answers
            // the one on screen.
            SlashCommand::Reply(text) => match current {
                Target::Nick(_) => Plan::Send { target: current.clone(), text, action: false },
                Target::Room(_) => {
                    Plan::Error("/r answers a private conversation; use @nick text here".into())
                }
            },
            // The native protocol is JSON, which is UTF-8 by definition; the terminal shows
            // text in the locale's encoding by itself.
            SlashCommand::Encoding(_) => Plan::Error(
                "/encoding is for text-mode (telnet) and UDP peers; this client always reads UTF-8".into(),
            ),
            SlashCommand::Quit(reason) => Plan::Quit(reason),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Target {
        Target::Room("#r".into())
    }

    #[test]
    fn text_goes_to_the_current_conversation() {
        assert_eq!(plan("hi", &room()), Plan::Send { target: room(), text: "hi".into(), action: false });
        let bob = Target::Nick("bob".into());
        assert_eq!(
            plan("/me waves", &bob),
            Plan::Send { target: bob.clone(), text: "waves".into(), action: true }
        );
        assert_eq!(
            plan("@ann psst", &room()),
            Plan::Send { target: Target::Nick("ann".into()), text: "psst".into(), action: false }
        );
        assert!(matches!(plan("/part", &bob), Plan::Error(_)));
        // A private conversation's own history (the server keeps it for accounts).
        assert_eq!(
            plan("/history 5", &bob),
            Plan::Submit(ClientFrame::History {
                room: "bob".into(),
                before: None,
                after: None,
                limit: Some(5),
                id: None
            })
        );
    }

    #[test]
    fn commands_become_frames() {
        assert_eq!(
            plan("/who", &room()),
            Plan::Submit(ClientFrame::Who {
                room: Some("#r".into()),
                detail: false,
                after: None,
                limit: None,
                id: None
            })
        );
        assert_eq!(
            plan("/ls", &room()),
            Plan::Submit(ClientFrame::Who { room: None, detail: false, after: None, limit: None, id: None })
        );
        assert_eq!(
            plan("/join x", &room()),
            Plan::Submit(ClientFrame::Join { room: "#x".into(), key: None, id: None })
        );
        assert_eq!(plan("/quit bye", &room()), Plan::Quit(Some("bye".into())));
        assert!(matches!(plan("/help", &room()), Plan::Show(l) if l.len() == HELP.len()));
        assert!(matches!(plan("/help join", &room()), Plan::Show(l) if l.len() == 1));
        assert!(matches!(plan("/nick 1x", &room()), Plan::Error(_)));
        assert!(matches!(plan("/bogus", &room()), Plan::Error(_)));
        assert_eq!(plan("  ", &room()), Plan::Nothing);
    }
}
