//! `PRIVMSG NickServ :...`: accounts for IRC clients without SASL, the way services answer
//! them (`REGISTER`, `IDENTIFY`, `LOGOUT`, `PASSWD`, `HELP`). The hub decides; its answers come
//! back as NOTICEs from `NickServ` (a nickname nobody can take) and the `900`/`901` numerics.

use super::super::IrcDoor;
use super::super::lines::push_line;
use super::super::requests::Op;
use crate::door::{Flow, SessionCtx};
use natter_core::password::Password;
use natter_core::{Command, DoorNote};
use natter_proto::names::fold;

/// Where NickServ's notices come from.
pub(in super::super) const NICKSERV: &str = "NickServ!NickServ@services.natter";

/// What `HELP` lists.
const HELP: &[&str] = &[
    "NickServ keeps registered nicknames for their owners. Commands:",
    "REGISTER <password> [email]   register your current nickname (8 characters or more)",
    "IDENTIFY [nick] <password>    log in to your account",
    "LOGOUT                        log out of your account",
    "PASSWD <current> <new>        change your account's password",
    "HELP                          this list",
];

/// True when a PRIVMSG target is NickServ.
pub(in super::super) fn is_nickserv(target: &str) -> bool {
    fold(target) == "nickserv"
}

impl IrcDoor {
    /// One line to NickServ.
    pub(super) async fn nickserv(&mut self, text: &str, ctx: &mut SessionCtx) -> Flow {
        let mut words = text.split(' ').filter(|w| !w.is_empty());
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let from = Some(ctx.peer.ip());
        let req = Op::NickServ.token();
        let command = match (verb.as_str(), args.as_slice()) {
            // An e-mail address is accepted and not kept: natter sends no mail.
            ("REGISTER", [password] | [password, _]) => {
                Command::Register { password: Password::from(*password), from, req }
            }
            ("IDENTIFY", [password]) => {
                Command::Login { name: self.nick.clone(), password: Password::from(*password), from, req }
            }
            ("IDENTIFY", [name, password]) => {
                Command::Login { name: name.to_string(), password: Password::from(*password), from, req }
            }
            ("LOGOUT", []) => Command::Logout { req },
            ("PASSWD", [old, new]) => {
                Command::Passwd { old: Password::from(*old), new: Password::from(*new), from, req }
            }
            ("HELP" | "", _) => return self.nickserv_says(ctx, HELP),
            ("REGISTER" | "IDENTIFY" | "LOGOUT" | "PASSWD", _) => {
                let usage =
                    format!("wrong number of words for {verb}; /msg NickServ HELP lists the commands");
                return self.nickserv_says(ctx, &[&usage]);
            }
            _ => {
                // The verb only: what follows may be a password typed in the wrong place.
                let unknown = format!("unknown command {verb}; /msg NickServ HELP lists the commands");
                return self.nickserv_says(ctx, &[&unknown]);
            }
        };
        ctx.command(command).await
    }

    /// NOTICEs from NickServ that the door answers by itself.
    fn nickserv_says(&self, ctx: &mut SessionCtx, lines: &[&str]) -> Flow {
        let mut out = Vec::new();
        for line in lines {
            push_line(&mut out, "", Some(NICKSERV), "NOTICE", &[self.me(), line]);
        }
        ctx.note(DoorNote::new(super::super::IrcNote::Lines(out)))
    }
}
