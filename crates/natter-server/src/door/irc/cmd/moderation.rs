//! `MODE`, `KICK` and `INVITE`: channel modes are spelled out as the core's protocol-neutral
//! room changes (`RoomChange`); the hub decides who may do what and announces the result.
//! User modes `+i` (hidden from searches) and `+w` (hear WALLOPS) are kept here.

use super::super::lines::{push_line, same_name};
use super::super::requests::Op;
use super::super::{IrcDoor, MAX_TARGETS};
use crate::door::modes::{ModeItem, parse_modes};
use crate::door::{Flow, SessionCtx};
use natter_core::Command;
use natter_proto::irc;
use natter_proto::names::validate_nick;

impl IrcDoor {
    pub(super) async fn mode(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(target) = m.param(0) else { return self.need_more(ctx, "MODE") };
        if !natter_proto::names::is_room_name(target) {
            return self.user_mode(target, m.param(1).unwrap_or(""), ctx).await;
        }
        let room = target.to_string();
        if m.params.len() < 2 {
            return ctx
                .command(Command::RoomModes { room, req: Op::Mode { room: target.to_string() }.token() })
                .await;
        }
        let mut changes = Vec::new();
        let mut list_bans = false;
        let mut reply = self.reply();
        for item in parse_modes(m.params[1..].iter().map(String::as_str)) {
            match item {
                ModeItem::Change(c) => changes.push(c),
                ModeItem::ListBans => list_bans = true,
                ModeItem::Unknown(c) => {
                    reply.numeric("472", &[&c.to_string(), "is unknown mode char to me"]);
                }
                ModeItem::NeedsParam(c) => {
                    reply.numeric("696", &[target, &c.to_string(), "*", "You must specify a parameter"]);
                }
            }
        }
        let flow = reply.send(ctx);
        if flow != Flow::Continue {
            return flow;
        }
        if list_bans {
            let req = Op::BanList { room: target.to_string() }.token();
            let flow = ctx.command(Command::Bans { room: room.clone(), req }).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        if changes.is_empty() {
            return Flow::Continue;
        }
        ctx.command(Command::Mode { room, changes, req: Op::Mode { room: target.to_string() }.token() }).await
    }

    async fn user_mode(&mut self, target: &str, modes: &str, ctx: &mut SessionCtx) -> Flow {
        if !same_name(target, &self.nick) {
            // A name that could be a nick gets 502 rather than 401.
            if validate_nick(target).is_err() {
                return self.bad(ctx, "401", &[target, "No such nick/channel"]);
            }
            return self.bad(ctx, "502", &["Cannot change mode for other users"]);
        }
        if modes.is_empty() {
            let flags = [(self.bot, "B"), (self.invisible, "i"), (self.wallops, "w")];
            let modes: String = flags.iter().filter(|(on, _)| *on).map(|(_, f)| *f).collect();
            return self.answer(ctx, "221", &[&format!("+{modes}")]);
        }
        if modes.chars().all(|c| matches!(c, '+' | '-' | 'i' | 'w' | 'B')) {
            // +i hides us from WHO searches by people who share no channel with us; +w asks
            // for the server operators' WALLOPS; +B says we are a bot (IRCv3 bot mode).
            let mut on = true;
            let (mut invisible, mut wallops, mut bot) = (self.invisible, self.wallops, self.bot);
            for c in modes.chars() {
                match c {
                    '+' => on = true,
                    '-' => on = false,
                    'i' => invisible = on,
                    'w' => wallops = on,
                    'B' => bot = on,
                    _ => {}
                }
            }
            let me = self.nick.clone();
            let mut changed = String::new();
            for (flag, was, now) in
                [('B', self.bot, bot), ('i', self.invisible, invisible), ('w', self.wallops, wallops)]
            {
                if was != now {
                    changed.push(if now { '+' } else { '-' });
                    changed.push(flag);
                }
            }
            if changed.is_empty() {
                return Flow::Continue;
            }
            let mut reply = self.reply();
            push_line(&mut reply.out, "", Some(&me), "MODE", &[&me, &changed]);
            if reply.send(ctx) != Flow::Continue {
                return Flow::Close("too slow".into());
            }
            if bot != self.bot {
                self.bot = bot;
                let flow = ctx.command(Command::MarkBot { on: bot }).await;
                if flow != Flow::Continue {
                    return flow;
                }
            }
            if invisible != self.invisible {
                self.invisible = invisible;
                let flow = ctx.command(Command::HideFromSearches { on: invisible }).await;
                if flow != Flow::Continue {
                    return flow;
                }
            }
            if wallops != self.wallops {
                self.wallops = wallops;
                return ctx.command(Command::HearAnnouncements { on: wallops }).await;
            }
            return Flow::Continue;
        }
        self.bad(ctx, "501", &["Unknown MODE flag"])
    }

    pub(super) async fn kick(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        if m.params.len() < 2 {
            return self.need_more(ctx, "KICK");
        }
        let rooms: Vec<&str> = m.params[0].split(',').filter(|r| !r.is_empty()).collect();
        let nicks: Vec<&str> = m.params[1].split(',').filter(|n| !n.is_empty()).collect();
        // Cut to KICKLEN by the hub, as for every front door.
        let reason = m.param(2).filter(|r| !r.is_empty()).map(str::to_string);
        // `KICK #a n1,n2` kicks both from #a; `KICK #a,#b n1,n2` pairs them up. Targets
        // beyond TARGMAX are dropped.
        for (i, nick) in nicks.iter().enumerate().take(MAX_TARGETS) {
            let room = if rooms.len() == 1 { rooms[0] } else { rooms.get(i).copied().unwrap_or("") };
            if room.is_empty() {
                break;
            }
            let req = Op::Kick { room: room.to_string(), nick: nick.to_string() }.token();
            let cmd =
                Command::Kick { room: room.to_string(), nick: nick.to_string(), reason: reason.clone(), req };
            let flow = ctx.command(cmd).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    pub(super) async fn invite(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        if m.params.is_empty() {
            // INVITE alone lists the channels we are invited to (336s and a 337).
            return ctx.command(Command::Invites { req: Op::Invites.token() }).await;
        }
        if m.params.len() < 2 {
            return self.need_more(ctx, "INVITE");
        }
        let (nick, room) = (&m.params[0], &m.params[1]);
        let req = Op::Invite { room: room.clone(), nick: nick.clone() }.token();
        ctx.command(Command::Invite { room: room.clone(), nick: nick.clone(), req }).await
    }
}
