//! The IRC numeric for each refusal: the one table that decides what an IRC client is told
//! when the hub (or the door) says no. It reads the refusal's fields and the request's names,
//! never the refusal's wording.

use super::IrcDoor;
use super::lines::push_line;
use super::requests::{Op, op_of};
use natter_core::Req;
use natter_core::refusal::Refusal;
use natter_proto::names::is_room_name;

impl IrcDoor {
    /// Renders a refusal of the request `req` as its numeric (or CHATHISTORY `FAIL`).
    pub(super) fn render_error(&self, req: &Req, refusal: &Refusal, out: &mut Vec<u8>) {
        let op = op_of(req);
        let message = refusal.to_string();
        match op {
            // RFC 2812: automatic replies must never answer a NOTICE.
            Some(Op::Notice { .. }) => return,
            Some(Op::ChatHistory { sub, target }) => {
                let code = match refusal {
                    Refusal::NoSuchRoom { .. }
                    | Refusal::InvalidRoom { .. }
                    | Refusal::NotInRoom { .. }
                    | Refusal::SecretRoom { .. }
                    | Refusal::InvalidNick { .. } => "INVALID_TARGET",
                    _ => "MESSAGE_ERROR",
                };
                return push_line(
                    out,
                    "",
                    Some(self.server),
                    "FAIL",
                    &["CHATHISTORY", code, sub, target, &message],
                );
            }
            _ => {}
        }
        let room = op.and_then(Op::room).unwrap_or("");
        // The nick the refusal is about, as the client named it where it named one.
        let refused_nick = match refusal {
            Refusal::NickInUse { nick }
            | Refusal::InvalidNick { nick, .. }
            | Refusal::NickLookalike { nick, .. }
            | Refusal::NickReserved { nick }
            | Refusal::NoSuchNick { nick }
            | Refusal::NoSuchRecipient { nick }
            | Refusal::MailboxFull { nick, .. }
            | Refusal::UserNotInRoom { nick, .. }
            | Refusal::AlreadyInRoom { nick, .. }
            | Refusal::NotIgnoring { nick } => Some(&**nick),
            _ => None,
        };
        let nick = op.and_then(Op::nick).or(refused_nick).unwrap_or("*");
        let named = match op {
            // MODE names several nicks: the refusal says which one failed.
            Some(Op::Mode { .. }) => refused_nick.unwrap_or("*"),
            _ => nick,
        };
        match (refusal, op) {
            (Refusal::NickInUse { nick }, _) => {
                self.numeric(out, "433", &[nick, "Nickname is already in use"])
            }
            (Refusal::NickReserved { nick }, _) => self.numeric(out, "432", &[nick, &message]),
            // A look-alike is taken as far as anyone can see: 433, saying whose it looks like.
            (Refusal::NickLookalike { nick, .. }, _) => self.numeric(out, "433", &[nick, &message]),
            (Refusal::InvalidNick { nick, problem }, _) => self.numeric(out, "432", &[nick, problem]),
            // IRCv3 standard replies, as the setname specification has it.
            (Refusal::InvalidRealname { .. }, _) => {
                push_line(out, "", Some(self.server), "FAIL", &["SETNAME", "INVALID_REALNAME", &message])
            }
            (Refusal::BadPassword | Refusal::BadOperatorPassword, _) => {
                self.numeric(out, "464", &["Password incorrect"])
            }
            // RPL_TRYAGAIN, naming the command held back: the password of a registration
            // (which then ends, like a wrong one), or OPER.
            (Refusal::TooManyAttempts { .. }, Some(Op::Oper)) => {
                self.numeric(out, "263", &["OPER", &message])
            }
            (Refusal::TooManyAttempts { .. }, _) => self.numeric(out, "263", &["PASS", &message]),
            (Refusal::NoOperators, _) => self.numeric(out, "491", &["No O-lines for your host"]),
            (Refusal::NotServerOperator { .. }, _) => {
                self.numeric(out, "481", &["Permission Denied- You're not an IRC operator"])
            }
            (_, Some(Op::Names { in_list: false, .. })) => {
                self.numeric(out, "366", &[room, "End of /NAMES list"])
            }
            // One channel of a multi-channel NAMES: the list's single 366 follows.
            (_, Some(Op::Names { in_list: true, .. })) => {}
            (_, Some(Op::Who { mask, .. })) => self.numeric(out, "315", &[mask, "End of /WHO list"]),
            (Refusal::NoSuchNick { .. }, Some(Op::Whois { nick })) => {
                self.numeric(out, "401", &[nick, "No such nick/channel"]);
                self.numeric(out, "318", &[nick, "End of /WHOIS list"]);
            }
            (Refusal::NoSuchNick { .. } | Refusal::NoSuchRecipient { .. }, _) => {
                self.numeric(out, "401", &[named, "No such nick/channel"])
            }
            // Not an IRC error of its own: the reason, from the server, as soon as it is known.
            (Refusal::MailboxFull { .. }, _) => {
                push_line(out, "", Some(self.server), "NOTICE", &[self.me(), &message]);
            }
            (Refusal::UserNotInRoom { .. }, _) => {
                self.numeric(out, "441", &[named, room, "They aren't on that channel"])
            }
            (Refusal::AlreadyInRoom { .. }, _) => {
                self.numeric(out, "443", &[named, room, "is already on channel"])
            }
            (Refusal::CannotSend { .. }, _) => self.numeric(out, "404", &[room, "Cannot send to channel"]),
            (Refusal::Banned { .. }, _) => self.numeric(out, "474", &[room, "Cannot join channel (+b)"]),
            (Refusal::InviteOnly { .. }, _) => self.numeric(out, "473", &[room, "Cannot join channel (+i)"]),
            (Refusal::BadKey { .. }, _) => self.numeric(out, "475", &[room, "Cannot join channel (+k)"]),
            (Refusal::RoomFull { .. }, _) => self.numeric(out, "471", &[room, "Cannot join channel (+l)"]),
            (Refusal::InvalidKey { .. }, _) => self.numeric(out, "696", &[room, "k", "*", &message]),
            (Refusal::BanListFull { .. }, _) => self.numeric(out, "478", &[room, "*", &message]),
            // A channel name the server will not have (ERR_BADCHANNAME), saying why.
            (Refusal::InvalidRoom { room, problem }, _) if is_room_name(room) => {
                self.numeric(out, "479", &[room, problem])
            }
            (Refusal::NoSuchRoom { .. } | Refusal::InvalidRoom { .. }, _) => {
                self.numeric(out, "403", &[room, "No such channel"])
            }
            (Refusal::NotInRoom { .. } | Refusal::SecretRoom { .. }, Some(Op::Message { .. })) => {
                self.numeric(out, "404", &[room, "Cannot send to channel"])
            }
            (Refusal::NotInRoom { .. } | Refusal::SecretRoom { .. }, _) => {
                self.numeric(out, "442", &[room, "You're not on that channel"])
            }
            (Refusal::NotRoomOperator { .. }, _) => {
                self.numeric(out, "482", &[room, "You're not channel operator"])
            }
            (Refusal::EmptyMessage | Refusal::EmptyAnnouncement, _) => {
                self.numeric(out, "412", &["No text to send"])
            }
            (Refusal::LineTooLong { .. }, _) => self.numeric(out, "417", &["Input line was too long"]),
            (Refusal::NotRegistered, _) => self.numeric(out, "451", &["You have not registered"]),
            // Ergo's wording: the nickname is someone's account.
            (Refusal::NickRegistered { nick, .. }, _) => self.numeric(out, "433", &[nick, &message]),
            (_, Some(Op::NickServ)) => {
                let says = match refusal {
                    Refusal::AccountExists { name } => {
                        format!(
                            "{name} is already registered; /msg NickServ IDENTIFY <password> if it is yours"
                        )
                    }
                    Refusal::NotLoggedIn => {
                        "You are not logged in; /msg NickServ IDENTIFY <nick> <password> first".to_string()
                    }
                    Refusal::AlreadyLoggedIn { account } => {
                        format!("You are already logged in as {account}; /msg NickServ LOGOUT first")
                    }
                    _ => message.clone(),
                };
                push_line(out, "", Some(super::cmd::nickserv::NICKSERV), "NOTICE", &[self.me(), &says]);
            }
            (Refusal::RateLimited { .. }, _) => {
                push_line(out, "", Some(self.server), "NOTICE", &[self.me(), &message])
            }
            (
                Refusal::CannotIgnoreSelf
                | Refusal::NotIgnoring { .. }
                | Refusal::NotStored { .. }
                | Refusal::HistoryUnavailable { .. }
                | Refusal::TooManyPending { .. }
                | Refusal::IgnoreListFull { .. }
                | Refusal::AccountExists { .. }
                | Refusal::AlreadyLoggedIn { .. }
                | Refusal::BadCredentials
                | Refusal::BadToken
                | Refusal::NotLoggedIn
                | Refusal::WeakPassword { .. }
                | Refusal::TooManyCertificates { .. }
                | Refusal::AccountPending
                | Refusal::AccountsBusy
                | Refusal::TooManyRegistrations { .. }
                | Refusal::AccountsUnavailable { .. },
                _,
            ) => {
                let command = op.map_or("*", Op::command);
                self.numeric(out, "400", &[command, &message]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::refusal::{RoomAction, ServerAction, Silenced, Throttled};

    fn render(op: Option<Op>, refusal: Refusal) -> String {
        let door = IrcDoor { nick: "bob".into(), ..Default::default() };
        let mut out = Vec::new();
        door.render_error(&op.and_then(Op::token), &refusal, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// Refusal by refusal, the numeric and its parameters.
    #[test]
    fn refusals_map_to_numerics() {
        let s = |x: &str| x.to_string();
        let n = |x: &str| x.into();
        let cases: Vec<(Option<Op>, Refusal, &str)> = vec![
            (
                Some(Op::Nick { nick: s("ann") }),
                Refusal::NickInUse { nick: n("ann") },
                ":natter 433 bob ann :Nickname is already in use\r\n",
            ),
            (
                Some(Op::Nick { nick: s("9x") }),
                Refusal::InvalidNick { nick: n("9x"), problem: n("bad start") },
                ":natter 432 bob 9x :bad start\r\n",
            ),
            (None, Refusal::BadPassword, ":natter 464 bob :Password incorrect\r\n"),
            (Some(Op::Oper), Refusal::BadOperatorPassword, ":natter 464 bob :Password incorrect\r\n"),
            (Some(Op::Oper), Refusal::NoOperators, ":natter 491 bob :No O-lines for your host\r\n"),
            (
                Some(Op::Oper),
                Refusal::TooManyAttempts { wait_secs: 16, by: Throttled::Operator },
                ":natter 263 bob OPER :too many wrong passwords for this operator; try again in 16 s\r\n",
            ),
            (
                Some(Op::Register { nick: s("bob") }),
                Refusal::TooManyAttempts { wait_secs: 2, by: Throttled::Address },
                ":natter 263 bob PASS :too many wrong passwords from your address; try again in 2 s\r\n",
            ),
            (
                Some(Op::Kill { nick: s("ann") }),
                Refusal::NotServerOperator { action: ServerAction::Kill },
                ":natter 481 bob :Permission Denied- You're not an IRC operator\r\n",
            ),
            (
                Some(Op::Message { target: s("zed") }),
                Refusal::NoSuchRecipient { nick: n("zed") },
                ":natter 401 bob zed :No such nick/channel\r\n",
            ),
            (Some(Op::Notice { target: s("zed") }), Refusal::NoSuchRecipient { nick: n("zed") }, ""),
            (
                Some(Op::Whois { nick: s("zed") }),
                Refusal::NoSuchNick { nick: n("zed") },
                ":natter 401 bob zed :No such nick/channel\r\n:natter 318 bob zed :End of /WHOIS list\r\n",
            ),
            (
                Some(Op::Mode { room: s("#r") }),
                Refusal::UserNotInRoom { nick: n("zed"), room: n("#R") },
                ":natter 441 bob zed #r :They aren't on that channel\r\n",
            ),
            (
                Some(Op::Invite { room: s("#r"), nick: s("ann") }),
                Refusal::AlreadyInRoom { nick: n("ann"), room: n("#r") },
                ":natter 443 bob ann #r :is already on channel\r\n",
            ),
            (
                Some(Op::Topic { room: s("#a\u{200b}b") }),
                Refusal::InvalidRoom { room: n("#a\u{200b}b"), problem: n("no invisible characters") },
                ":natter 479 bob #a\u{200b}b :no invisible characters\r\n",
            ),
            (
                Some(Op::Topic { room: s("ab") }),
                Refusal::InvalidRoom { room: n("ab"), problem: n("rooms start with #") },
                ":natter 403 bob ab :No such channel\r\n",
            ),
            (
                Some(Op::Message { target: s("#x") }),
                Refusal::NotInRoom { room: n("#X") },
                ":natter 404 bob #x :Cannot send to channel\r\n",
            ),
            (
                Some(Op::Part { room: s("#x") }),
                Refusal::NotInRoom { room: n("#x") },
                ":natter 442 bob #x :You're not on that channel\r\n",
            ),
            (
                Some(Op::Topic { room: s("#x") }),
                Refusal::NoSuchRoom { room: n("#x") },
                ":natter 403 bob #x :No such channel\r\n",
            ),
            (
                Some(Op::Message { target: s("#m") }),
                Refusal::CannotSend { room: n("#m"), why: Silenced::Moderated },
                ":natter 404 bob #m :Cannot send to channel\r\n",
            ),
            (
                Some(Op::Join { room: s("#b") }),
                Refusal::Banned { room: n("#b") },
                ":natter 474 bob #b :Cannot join channel (+b)\r\n",
            ),
            (
                Some(Op::Join { room: s("#i") }),
                Refusal::InviteOnly { room: n("#i") },
                ":natter 473 bob #i :Cannot join channel (+i)\r\n",
            ),
            (
                Some(Op::Join { room: s("#k") }),
                Refusal::BadKey { room: n("#k") },
                ":natter 475 bob #k :Cannot join channel (+k)\r\n",
            ),
            (
                Some(Op::Join { room: s("#l") }),
                Refusal::RoomFull { room: n("#l"), limit: 1 },
                ":natter 471 bob #l :Cannot join channel (+l)\r\n",
            ),
            (
                Some(Op::Mode { room: s("#r") }),
                Refusal::InvalidKey { room: n("#r") },
                ":natter 696 bob #r k * :invalid key: 1 to 23 characters, no spaces or commas\r\n",
            ),
            (
                Some(Op::Mode { room: s("#r") }),
                Refusal::BanListFull { room: n("#r") },
                ":natter 478 bob #r * :ban list of #r is full (100)\r\n",
            ),
            (
                Some(Op::Kick { room: s("#r"), nick: s("ann") }),
                Refusal::NotRoomOperator { room: n("#r"), action: RoomAction::Kick },
                ":natter 482 bob #r :You're not channel operator\r\n",
            ),
            (
                Some(Op::Names { room: s("#x"), in_list: false }),
                Refusal::NoSuchRoom { room: n("#x") },
                ":natter 366 bob #x :End of /NAMES list\r\n",
            ),
            (Some(Op::Names { room: s("#x"), in_list: true }), Refusal::NoSuchRoom { room: n("#x") }, ""),
            (
                Some(Op::Who { mask: s("#x"), whox: None }),
                Refusal::NoSuchRoom { room: n("#x") },
                ":natter 315 bob #x :End of /WHO list\r\n",
            ),
            (
                Some(Op::Message { target: s("#r") }),
                Refusal::EmptyMessage,
                ":natter 412 bob :No text to send\r\n",
            ),
            (None, Refusal::LineTooLong { max: 9 }, ":natter 417 bob :Input line was too long\r\n"),
            (None, Refusal::NotRegistered, ":natter 451 bob :You have not registered\r\n"),
            (
                None,
                Refusal::RateLimited { per_second: 1 },
                ":natter NOTICE bob :slow down: at most 1 messages per second; this message was not sent; keep flooding and you will be disconnected\r\n",
            ),
            (
                Some(Op::Message { target: s("#r") }),
                Refusal::NotStored { problem: n("disk") },
                ":natter 400 bob MSG :your message was delivered to those online but not stored (disk)\r\n",
            ),
            (
                Some(Op::ChatHistory { sub: s("LATEST"), target: s("#x") }),
                Refusal::NoSuchRoom { room: n("#x") },
                ":natter FAIL CHATHISTORY INVALID_TARGET LATEST #x :no room #x; /join #x creates it\r\n",
            ),
            (
                Some(Op::ChatHistory { sub: s("LATEST"), target: s("#x") }),
                Refusal::HistoryUnavailable { problem: n("disk") },
                ":natter FAIL CHATHISTORY MESSAGE_ERROR LATEST #x :history unavailable: disk\r\n",
            ),
        ];
        for (op, refusal, want) in cases {
            let label = format!("{op:?} {refusal:?}");
            assert_eq!(render(op, refusal), want, "{label}");
        }
    }
}
