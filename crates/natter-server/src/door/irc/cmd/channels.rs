//! Channels: `JOIN`, `PART`, `NAMES`, `TOPIC` and `LIST`.

use super::super::requests::Op;
use super::super::{IrcDoor, MAX_TARGETS};
use crate::door::{Flow, SessionCtx};
use natter_core::Command;
use natter_core::command::Paging;
use natter_proto::irc;
use natter_proto::names::{NameError, validate_room};

impl IrcDoor {
    /// `JOIN #a,#b keys` (each with its key), or `JOIN 0` to leave every channel.
    pub(super) async fn join(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(rooms) = m.param(0) else { return self.need_more(ctx, "JOIN") };
        if rooms == "0" {
            let all = self.rooms.clone();
            for room in all {
                let req = Op::Part { room: room.clone() }.token();
                let flow = ctx.command(Command::Part { room, reason: None, req }).await;
                if flow != Flow::Continue {
                    return flow;
                }
            }
            return Flow::Continue;
        }
        let mut keys = m.param(1).unwrap_or("").split(',');
        for room in rooms.split(',').filter(|r| !r.is_empty()) {
            let key = keys.next().filter(|k| !k.is_empty()).map(str::to_string);
            let flow = match validate_room(room) {
                Ok(()) => {
                    let req = Op::Join { room: room.to_string() }.token();
                    ctx.command(Command::Join { room: room.to_string(), key, req }).await
                }
                // Not a channel name at all: there is no such channel.
                Err(NameError::RoomNoHash) => self.bad(ctx, "403", &[room, "No such channel"]),
                // A channel name this server will not have (ERR_BADCHANNAME): say why.
                Err(e) => self.bad(ctx, "479", &[room, &e.to_string()]),
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// `PART #a,#b reason`.
    pub(super) async fn part(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(rooms) = m.param(0) else { return self.need_more(ctx, "PART") };
        let reason = m.param(1).filter(|r| !r.is_empty()).map(str::to_string);
        for room in rooms.split(',').filter(|r| !r.is_empty()) {
            let req = Op::Part { room: room.to_string() }.token();
            let cmd = Command::Part { room: room.to_string(), reason: reason.clone(), req };
            let flow = ctx.command(cmd).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// `NAMES [#a,#b]`: `NAMES #a,#b` answers each channel's 353 lines, then one 366 naming
    /// the list as given; NAMES alone and one channel end each channel with its 366.
    pub(super) async fn names_command(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let list = m.param(0).filter(|l| !l.is_empty());
        let rooms: Vec<String> = match list {
            Some(list) => {
                list.split(',').filter(|r| !r.is_empty()).take(MAX_TARGETS).map(str::to_string).collect()
            }
            None => self.rooms.clone(),
        };
        let multi = list.filter(|l| l.contains(','));
        for room in rooms {
            let req = Op::Names { room: room.clone(), in_list: multi.is_some() }.token();
            // The first page of a big room, with a notice saying how many there are.
            let page = Paging::default();
            let flow = ctx.command(Command::Who { room: Some(room), detail: true, page, req }).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        match multi {
            Some(list) => self.answer(ctx, "366", &[list, "End of /NAMES list"]),
            None => Flow::Continue,
        }
    }

    /// `TOPIC #room [text]`: ask for or set the topic.
    pub(super) async fn topic(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(room) = m.param(0) else { return self.need_more(ctx, "TOPIC") };
        let (topic, op) = match m.param(1) {
            Some(t) => (Some(t.to_string()), Op::SetTopic { room: room.to_string() }),
            None => (None, Op::Topic { room: room.to_string() }),
        };
        ctx.command(Command::Topic { room: room.to_string(), topic, req: op.token() }).await
    }

    /// `LIST [#a,#b]`.
    pub(super) async fn list(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let filter = m.param(0).filter(|f| f.starts_with('#')).unwrap_or("").to_string();
        ctx.command(Command::Rooms { req: Op::List { filter }.token() }).await
    }
}
