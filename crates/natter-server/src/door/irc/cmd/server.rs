//! The server's own commands: `PING`, `QUIT`, `AWAY`, `OPER`, `KILL`, `WALLOPS`, `LINKS`,
//! `INFO`, `MOTD`, `VERSION` and `TIME`.

use super::super::IrcDoor;
use super::super::requests::Op;
use crate::door::{Flow, SessionCtx};
use natter_core::Command;
use natter_proto::irc;

impl IrcDoor {
    /// `PING token`: answered in order behind the hub's answers to earlier commands.
    pub(super) fn ping(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(token) = m.param(0) else {
            return self.bad(ctx, "409", &["No origin specified"]);
        };
        self.reply().line("PONG", &[self.server, token]).send(ctx)
    }

    /// `QUIT [reason]`.
    pub(super) fn quit(&mut self, m: &irc::Message, ctx: &SessionCtx) -> Flow {
        let reason = m.param(0).filter(|r| !r.is_empty());
        let reason = reason.map_or_else(|| "Quit".into(), |r| format!("Quit: {r}"));
        ctx.close(natter_core::metrics::Disconnect::Quit, reason)
    }

    /// `AWAY [text]`.
    pub(super) async fn away(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let text = m.param(0).filter(|a| !a.is_empty()).map(str::to_string);
        ctx.command(Command::Away { text, req: Op::Away.token() }).await
    }

    /// `OPER name password`.
    pub(super) async fn oper(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        if m.params.len() < 2 {
            return self.need_more(ctx, "OPER");
        }
        let (name, password) = (m.params[0].clone(), m.params[1].clone());
        let from = Some(ctx.peer.ip());
        ctx.command(Command::Oper { name, password, from, req: Op::Oper.token() }).await
    }

    /// `KILL nick [reason]`: the victim and their channels see `Killed (us (reason))`, as
    /// IRC servers word it.
    pub(super) async fn kill(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(nick) = m.param(0).filter(|n| !n.is_empty()) else {
            return self.need_more(ctx, "KILL");
        };
        let reason = m.param(1).filter(|r| !r.is_empty()).unwrap_or("no reason");
        let reason = format!("Killed ({} ({reason}))", self.nick);
        let req = Op::Kill { nick: nick.to_string() }.token();
        ctx.command(Command::Kill { nick: nick.to_string(), reason, req }).await
    }

    /// `WALLOPS text`: a server operator's announcement.
    pub(super) async fn wallops(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(text) = m.param(0).filter(|t| !t.is_empty()) else {
            return self.need_more(ctx, "WALLOPS");
        };
        ctx.command(Command::Announce { text: text.to_string(), req: Op::Wallops.token() }).await
    }

    /// `LINKS`: one server and no links, an empty list, as servers that hide their links
    /// answer. (A 364 line for ourselves would need a configured server description.)
    pub(super) fn links(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let mask = m.params.last().filter(|p| !p.is_empty()).map_or("*", String::as_str);
        self.answer(ctx, "365", &[mask, "End of /LINKS list"])
    }

    /// `INFO`.
    pub(super) fn info(&mut self, ctx: &mut SessionCtx) -> Flow {
        let mut reply = self.reply();
        for line in [
            concat!("natter ", env!("CARGO_PKG_VERSION"), ": one binary for chat"),
            "IRC channels are natter rooms, shared with native, text and UDP clients.",
        ] {
            reply.numeric("371", &[line]);
        }
        reply.numeric("374", &["End of INFO list"]);
        reply.send(ctx)
    }

    /// `MOTD`.
    pub(super) fn motd_command(&mut self, ctx: &mut SessionCtx) -> Flow {
        let mut reply = self.reply();
        self.motd(&mut reply.out);
        reply.send(ctx)
    }

    /// `VERSION`: the version and the ISUPPORT tokens again.
    pub(super) fn version(&mut self, ctx: &mut SessionCtx) -> Flow {
        let mut reply = self.reply();
        let version = concat!("natter-", env!("CARGO_PKG_VERSION"));
        reply.numeric("351", &[version, self.server, "natter IRC front door"]);
        self.isupport(&mut reply.out);
        reply.send(ctx)
    }

    /// `TIME`.
    pub(super) fn time(&mut self, ctx: &mut SessionCtx) -> Flow {
        let now = natter_core::time::now_ms();
        self.answer(ctx, "391", &[self.server, &irc::server_time(now)])
    }
}
