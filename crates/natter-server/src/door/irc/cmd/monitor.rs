//! `MONITOR` (IRCv3): a watch list of nicks, told as they come online (730) and go offline
//! (731); `+` adds and answers with their status, `-` removes, `C` clears, `L` lists (732,
//! 733), `S` tells the status of the whole list.

use super::super::IrcDoor;
use super::super::requests::Op;
use crate::door::{Flow, SessionCtx};
use natter_core::Command;
use natter_core::command::MonitorChange;
use natter_proto::irc;

impl IrcDoor {
    /// `MONITOR <+|-|C|L|S> [targets]`.
    pub(in super::super) async fn monitor(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(sub) = m.params.first() else {
            return self.need_more(ctx, "MONITOR");
        };
        let targets = || -> Vec<String> {
            m.params[1..]
                .iter()
                .flat_map(|p| p.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect()
        };
        let change = match sub.as_str() {
            "+" | "-" if targets().is_empty() => return self.need_more(ctx, "MONITOR"),
            "+" => MonitorChange::Add(targets()),
            "-" => MonitorChange::Remove(targets()),
            "C" | "c" => MonitorChange::Clear,
            "L" | "l" => MonitorChange::List,
            "S" | "s" => MonitorChange::Status,
            other => {
                let problem = format!("unknown MONITOR subcommand {other}: use +, -, C, L or S");
                return self.bad(ctx, "400", &["MONITOR", &problem]);
            }
        };
        ctx.command(Command::Monitor { change, req: Op::Monitor.token() }).await
    }
}
