//! Who is who: `WHO`, `WHOIS`, `WHOWAS`, `ISON`, `USERHOST` and `LUSERS`. Each asks the hub
//! for just what it answers, so none of them copies the server's user list.

use super::super::IrcDoor;
use super::super::requests::{Op, Whox};
use crate::door::{Flow, SessionCtx};
use natter_core::Command;
use natter_core::command::Paging;
use natter_proto::irc;
use natter_proto::names::is_room_name;

/// Most nicks one USERHOST answers for (RFC 2812).
const USERHOST_MAX: usize = 5;

impl IrcDoor {
    /// `WHO #room`, `WHO mask` (wildcards; hidden users only when they share a channel) or
    /// `WHO`/`WHO *`/`WHO 0` for everyone visible.
    pub(super) async fn who_command(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let mask = m.param(0).filter(|s| !s.is_empty() && *s != "0").unwrap_or("*").to_string();
        let whox = m.param(1).and_then(Whox::parse).map(Box::new);
        let req = Op::Who { mask: mask.clone(), whox }.token();
        // The first page only (IRC has no paging): the answer then says how many there are.
        let page = Paging::default();
        let command = if is_room_name(&mask) {
            Command::Who { room: Some(mask), detail: true, page, req }
        } else if mask == "*" {
            Command::Who { room: None, detail: true, page, req }
        } else {
            Command::Search { mask, req }
        };
        ctx.command(command).await
    }

    /// `WHOIS [server] nick`: names the nick last.
    pub(super) async fn whois_command(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(nick) = m.params.last().filter(|n| !n.is_empty()) else {
            return self.bad(ctx, "431", &["No nickname given"]);
        };
        let nick = nick.split(',').next().unwrap_or(nick).to_string();
        let req = Op::Whois { nick: nick.clone() }.token();
        ctx.command(Command::Whois { nick, req }).await
    }

    /// `WHOWAS nick [count]`.
    pub(super) async fn whowas(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(nick) = m.param(0).filter(|n| !n.is_empty()) else {
            return self.bad(ctx, "431", &["No nickname given"]);
        };
        let nick = nick.split(',').next().unwrap_or(nick).to_string();
        let count = m.param(1).and_then(|c| c.parse::<i64>().ok()).filter(|&c| c > 0).unwrap_or(0);
        let req = Op::Whowas { nick: nick.clone() }.token();
        ctx.command(Command::Whowas { nick, count: count as usize, req }).await
    }

    /// `ISON nick...` and `USERHOST nick...`: a lookup of just those nicks.
    pub(super) async fn ison_userhost(
        &mut self,
        m: &irc::Message,
        command: &str,
        ctx: &mut SessionCtx,
    ) -> Flow {
        if m.params.is_empty() {
            return self.need_more(ctx, command);
        }
        let mut nicks: Vec<String> = m
            .params
            .iter()
            .flat_map(|p| p.split(' '))
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        let op = if command == "ISON" {
            Op::Ison { nicks: nicks.clone() }
        } else {
            nicks.truncate(USERHOST_MAX);
            Op::Userhost { nicks: nicks.clone() }
        };
        ctx.command(Command::Lookup { nicks, req: op.token() }).await
    }

    /// `LUSERS`: the hub's counts.
    pub(super) async fn lusers_command(&mut self, ctx: &mut SessionCtx) -> Flow {
        ctx.command(Command::ServerStats { req: Op::Lusers { welcome: false }.token() }).await
    }

    /// `SETNAME :real name` (IRCv3 setname): the hub tells whoever shares a room.
    pub(super) async fn setname(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(realname) = m.param(0) else { return self.need_more(ctx, "SETNAME") };
        self.realname = realname.to_string();
        let command = Command::SetRealname { realname: realname.to_string(), req: Op::Setname.token() };
        ctx.command(command).await
    }
}
