//! IRC commands, one file per family, the way mini-redis has one file per command: each
//! reads its parameters, answers what the door can answer by itself, and sends the hub a
//! command carrying an [`Op`](super::requests::Op) for the answer.

mod channels;
mod chathistory;
mod help;
mod messaging;
mod moderation;
mod monitor;
pub(super) mod nickserv;
mod queries;
mod registration;
pub(super) mod sasl;
mod server;

use super::lines::push_line;
use super::{IrcDoor, IrcNote};
use crate::door::{Flow, SessionCtx};
use natter_core::DoorNote;
use natter_proto::irc::{self, ParseError};

/// Lines the door answers by itself, queued in order with the hub's events.
pub(super) struct Reply<'a> {
    door: &'a IrcDoor,
    pub out: Vec<u8>,
}

impl Reply<'_> {
    pub fn numeric(&mut self, code: &str, params: &[&str]) -> &mut Self {
        self.door.numeric(&mut self.out, code, params);
        self
    }

    pub fn line(&mut self, command: &str, params: &[&str]) -> &mut Self {
        push_line(&mut self.out, "", Some(self.door.server), command, params);
        self
    }

    pub fn send(&mut self, ctx: &mut SessionCtx) -> Flow {
        if self.out.is_empty() {
            return Flow::Continue;
        }
        ctx.note(DoorNote::new(IrcNote::Lines(std::mem::take(&mut self.out))))
    }
}

impl IrcDoor {
    pub(super) fn reply(&self) -> Reply<'_> {
        Reply { door: self, out: Vec::new() }
    }

    /// Answers with one numeric.
    fn answer(&self, ctx: &mut SessionCtx, code: &str, params: &[&str]) -> Flow {
        self.reply().numeric(code, params).send(ctx)
    }

    /// Answers bad input with a numeric; repeated bad input ends the session.
    pub(super) fn bad(&self, ctx: &mut SessionCtx, code: &str, params: &[&str]) -> Flow {
        if ctx.strikes.hit() {
            return ctx.close(natter_core::metrics::Disconnect::BadInput, "too many invalid commands");
        }
        self.answer(ctx, code, params)
    }

    fn need_more(&self, ctx: &mut SessionCtx, command: &str) -> Flow {
        self.bad(ctx, "461", &[command, "Not enough parameters"])
    }

    /// Handles one line, parsed or not.
    pub(super) async fn handle_parsed(
        &mut self,
        parsed: Result<irc::Message, ParseError>,
        ctx: &mut SessionCtx,
    ) -> Flow {
        match parsed {
            Ok(m) => self.dispatch(m, ctx).await,
            Err(ParseError::NoCommand) => Flow::Continue,
            Err(ParseError::BadCommand(c)) => self.bad(ctx, "421", &[&c, "Unknown command"]),
            Err(e) => self.bad(ctx, "400", &["*", &e.to_string()]),
        }
    }

    /// Hands one parsed message to its command.
    async fn dispatch(&mut self, m: irc::Message, ctx: &mut SessionCtx) -> Flow {
        let command = m.command.to_ascii_uppercase();
        let registered = ctx.session.is_some();
        self.server = ctx.settings.server_name;
        match command.as_str() {
            "CAP" => return self.cap(&m, ctx).await,
            "PASS" => return self.pass(&m, ctx),
            "AUTHENTICATE" => return self.authenticate(&m, ctx).await,
            "NICK" => return self.nick_command(&m, ctx).await,
            "USER" => return self.user_command(&m, ctx).await,
            "PING" => return self.ping(&m, ctx),
            "PONG" => return Flow::Continue,
            "QUIT" => return self.quit(&m, ctx),
            _ if !registered => return self.bad(ctx, "451", &["You have not registered"]),
            _ => {}
        }
        match command.as_str() {
            "PRIVMSG" | "NOTICE" | "TAGMSG" => self.privmsg(&m, &command, ctx).await,
            "CHATHISTORY" => self.chathistory(&m, ctx).await,
            "JOIN" => self.join(&m, ctx).await,
            "PART" => self.part(&m, ctx).await,
            "NAMES" => self.names_command(&m, ctx).await,
            "TOPIC" => self.topic(&m, ctx).await,
            "LIST" => self.list(&m, ctx).await,
            "WHO" => self.who_command(&m, ctx).await,
            "WHOIS" => self.whois_command(&m, ctx).await,
            "WHOWAS" => self.whowas(&m, ctx).await,
            "ISON" | "USERHOST" => self.ison_userhost(&m, &command, ctx).await,
            "MONITOR" => self.monitor(&m, ctx).await,
            "LUSERS" => self.lusers_command(ctx).await,
            "MODE" => self.mode(&m, ctx).await,
            "KICK" => self.kick(&m, ctx).await,
            "INVITE" => self.invite(&m, ctx).await,
            "AWAY" => self.away(&m, ctx).await,
            "SETNAME" => self.setname(&m, ctx).await,
            "OPER" => self.oper(&m, ctx).await,
            "KILL" => self.kill(&m, ctx).await,
            "WALLOPS" => self.wallops(&m, ctx).await,
            "LINKS" => self.links(&m, ctx),
            "INFO" => self.info(ctx),
            "MOTD" => self.motd_command(ctx),
            "VERSION" => self.version(ctx),
            "TIME" => self.time(ctx),
            "HELP" | "HELPOP" => self.help(&m, ctx),
            _ => self.bad(ctx, "421", &[&m.command, "Unknown command"]),
        }
    }
}
