//! `PRIVMSG NickServ :...`: accounts for IRC clients without SASL, the way services answer
//! them (`REGISTER`, `IDENTIFY`, `LOGOUT`, `PASSWD`, `CERT`, `HELP`). The hub decides; its answers come
//! back as NOTICEs from `NickServ` (a nickname nobody can take) and the `900`/`901` numerics.

use super::super::IrcDoor;
use super::super::lines::push_line;
use super::super::requests::Op;
use crate::door::{Flow, SessionCtx};
use natter_core::password::Password;
use natter_core::vocab::CertificateChange;
use natter_core::{Command, DoorNote};
use natter_proto::fingerprint::parse_sha256;
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
    "CERT ADD [fingerprint]        log in with this TLS client certificate (SASL EXTERNAL)",
    "CERT DEL <fingerprint>        stop logging in with a certificate",
    "CERT LIST                     the certificates that log in to your account",
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
            ("CERT", [sub, rest @ ..]) => {
                let change = match (sub.to_ascii_uppercase().as_str(), rest) {
                    ("LIST", []) => CertificateChange::List,
                    ("ADD", []) => match self.sasl.as_ref().and_then(|s| s.certificate.as_deref()) {
                        Some(fp) => CertificateChange::Add(fp.to_string()),
                        None => {
                            let says = "you connected without a client certificate: CERT ADD <fingerprint>, or connect over TLS with one";
                            return self.nickserv_says(ctx, &[says]);
                        }
                    },
                    ("ADD" | "DEL", [fp]) => {
                        let Some(fp) = parse_sha256(fp) else {
                            let says =
                                "that is not a SHA-256 fingerprint: 64 hexadecimal digits, colons allowed";
                            return self.nickserv_says(ctx, &[says]);
                        };
                        if sub.eq_ignore_ascii_case("ADD") {
                            CertificateChange::Add(fp)
                        } else {
                            CertificateChange::Remove(fp)
                        }
                    }
                    _ => {
                        return self.nickserv_says(
                            ctx,
                            &["usage: CERT ADD [fingerprint] | CERT DEL <fingerprint> | CERT LIST"],
                        );
                    }
                };
                Command::Certificates { change, req }
            }
            ("HELP" | "", _) => return self.nickserv_says(ctx, HELP),
            ("REGISTER" | "IDENTIFY" | "LOGOUT" | "PASSWD" | "CERT", _) => {
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
