//! IRCv3 `CHATHISTORY` (draft): pages of a channel's stored messages, or of a private
//! conversation with a nick (for a client logged in to an account), by msgid or time, and the
//! channels active in a time range (`TARGETS`).

use super::super::requests::Op;
use super::super::{HISTORY_PAGE, IrcDoor};
use crate::door::{Flow, SessionCtx};
use natter_core::Command;
use natter_core::event::{parse_private_id, parse_stable_id};
use natter_core::store::HistoryQuery;
use natter_proto::irc;
use natter_proto::names::{fold, is_room_name};

impl IrcDoor {
    /// IRCv3 `CHATHISTORY` (draft): pages of a channel's stored messages by msgid or time.
    pub(super) async fn chathistory(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let sub = m.param(0).unwrap_or("").to_ascii_uppercase();
        let fail = |door: &Self, ctx: &mut SessionCtx, code: &str, text: &str| {
            let mut reply = door.reply();
            reply.line("FAIL", &["CHATHISTORY", code, &sub, text]);
            reply.send(ctx)
        };
        let limit = |p: Option<&str>| p.and_then(|l| l.parse::<u32>().ok()).filter(|&l| l > 0);
        if sub == "TARGETS" {
            let (Some(a), Some(b), Some(n)) = (
                m.param(1).and_then(|p| p.strip_prefix("timestamp=")).and_then(parse_server_time),
                m.param(2).and_then(|p| p.strip_prefix("timestamp=")).and_then(parse_server_time),
                limit(m.param(3)),
            ) else {
                return fail(self, ctx, "INVALID_PARAMS", "TARGETS takes two timestamps and a limit");
            };
            let req = Op::ChatHistory { sub: "TARGETS".into(), target: "*".into() }
                .labeled(self.line_label.as_deref().map(String::from));
            return ctx.command(Command::ActiveRooms { after_ts: a, before_ts: b, limit: n, req }).await;
        }
        if !matches!(sub.as_str(), "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "BETWEEN") {
            return fail(self, ctx, "INVALID_PARAMS", "unknown subcommand");
        }
        let Some(target) = m.param(1).filter(|t| !t.is_empty()) else {
            return fail(self, ctx, "INVALID_PARAMS", "no target given");
        };
        let target = target.to_string();
        let room = is_room_name(&target);
        if room && !self.in_room(&target) {
            let mut reply = self.reply();
            let text = "you are not in that channel";
            reply.line("FAIL", &["CHATHISTORY", "INVALID_TARGET", &sub, &target, text]);
            return reply.send(ctx);
        }
        let key = fold(&target);
        // A selector: `*`, `msgid=...` (an id of this channel) or `timestamp=...`.
        enum Sel {
            Any,
            Mid(u64),
            Ts(u64),
            Unknown,
        }
        let sel = |p: Option<&str>| -> Option<Sel> {
            let p = p?;
            if p == "*" {
                return Some(Sel::Any);
            }
            if let Some(id) = p.strip_prefix("msgid=") {
                let mid = if room { parse_stable_id(&key, id) } else { parse_private_id(id) };
                return Some(mid.map_or(Sel::Unknown, Sel::Mid));
            }
            p.strip_prefix("timestamp=").and_then(parse_server_time).map(Sel::Ts)
        };
        let two = sub == "BETWEEN";
        let (a, b, n) = if two {
            (sel(m.param(2)), sel(m.param(3)), limit(m.param(4)))
        } else {
            (sel(m.param(2)), Some(Sel::Any), limit(m.param(3)))
        };
        let (Some(a), Some(b), Some(n)) = (a, b, n) else {
            return fail(self, ctx, "INVALID_PARAMS", "bad message reference or limit");
        };
        let mut q = HistoryQuery { limit: n.min(HISTORY_PAGE), ..HistoryQuery::default() };
        let mut around = false;
        let mut empty = matches!(a, Sel::Unknown) || matches!(b, Sel::Unknown);
        match (sub.as_str(), a) {
            ("LATEST", Sel::Any) => {}
            ("LATEST", Sel::Mid(x)) => (q.after, q.before) = (Some(x), Some(u64::MAX)),
            ("LATEST", Sel::Ts(t)) => (q.after_ts, q.before) = (Some(t), Some(u64::MAX)),
            ("BEFORE", Sel::Mid(x)) => q.before = Some(x),
            ("BEFORE", Sel::Ts(t)) => q.before_ts = Some(t),
            ("AFTER", Sel::Mid(x)) => q.after = Some(x),
            ("AFTER", Sel::Ts(t)) => q.after_ts = Some(t),
            ("AROUND", Sel::Mid(x)) => (q.before, around) = (Some(x), true),
            ("AROUND", Sel::Ts(t)) => (q.before_ts, around) = (Some(t), true),
            ("BETWEEN", first) => {
                let point = |s: &Sel| match *s {
                    Sel::Mid(x) => Some((true, x)),
                    Sel::Ts(t) => Some((false, t)),
                    _ => None,
                };
                match (point(&first), point(&b)) {
                    (Some((fm, fv)), Some((sm, sv))) => {
                        // The first reference is where the page starts: forwards when it is
                        // the older one.
                        let forwards = if fm == sm { fv <= sv } else { true };
                        let (low, high) = if forwards { ((fm, fv), (sm, sv)) } else { ((sm, sv), (fm, fv)) };
                        if low.0 {
                            q.after = Some(low.1)
                        } else {
                            q.after_ts = Some(low.1)
                        }
                        if high.0 {
                            q.before = Some(high.1)
                        } else {
                            q.before_ts = Some(high.1)
                        }
                        q.oldest = forwards;
                    }
                    _ => empty = true,
                }
            }
            _ => empty = true,
        }
        let req = Op::ChatHistory { sub: sub.clone(), target: target.clone() }
            .labeled(self.line_label.as_deref().map(String::from));
        if empty {
            // Unknown references: an empty page.
            q = HistoryQuery { limit: 1, before: Some(0), ..HistoryQuery::default() };
        }
        ctx.command(Command::History { room: target, query: q, around, req }).await
    }
}

/// Parses an IRCv3 `server-time` timestamp (`YYYY-MM-DDThh:mm:ss[.sss]Z`, RFC 3339) into ms
/// since the epoch; `None` for anything else or a time before 1970.
fn parse_server_time(s: &str) -> Option<u64> {
    let ts: jiff::Timestamp = s.parse().ok()?;
    u64::try_from(ts.as_millisecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_server_time;

    #[test]
    fn server_times_parse_to_milliseconds() {
        assert_eq!(parse_server_time("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_server_time("2024-05-01T12:34:56.789Z"), Some(1_714_566_896_789));
        assert_eq!(parse_server_time("2024-05-01T12:34:56Z"), Some(1_714_566_896_000));
        assert_eq!(
            parse_server_time(&natter_proto::irc::server_time(1_795_300_034_458)),
            Some(1_795_300_034_458)
        );
        for bad in
            ["", "*", "2024-02-31T00:00:00Z", "1969-12-31T23:59:59Z", "2024-05-01 12:34:56", "yesterday"]
        {
            assert_eq!(parse_server_time(bad), None, "{bad}");
        }
    }
}
