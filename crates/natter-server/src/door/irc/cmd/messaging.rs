//! `PRIVMSG`, `NOTICE` and `TAGMSG`: messages to channels and nicks, with CTCP ACTION for
//! `/me` and client-only tags relayed as the message's metadata.

use super::super::lines;
use super::super::requests::Op;
use super::super::{IrcDoor, MAX_TARGETS};
use crate::door::{Flow, SessionCtx};
use natter_core::{Command, Target};
use natter_proto::irc::{self, MAX_LINE};
use natter_proto::names::{is_room_name, validate_nick};

impl IrcDoor {
    /// Whether the message, relayed with this client's prefix (`:nick!user@host `), fits
    /// IRC's 512 bytes: a line that would not is refused with `417` (its original purpose)
    /// rather than cut for its readers, and the client can send it in shorter pieces.
    fn fits_when_relayed(&self, command: &str, targets: &str, text: &str) -> bool {
        let target = targets.split(',').map(str::len).max().unwrap_or(0);
        let prefix = lines::source_len(&self.nick, &self.ident);
        1 + prefix + 1 + command.len() + 1 + target + 2 + text.len() <= MAX_LINE
    }

    /// PRIVMSG, NOTICE and TAGMSG: client-only tags (`+name`) travel with the message.
    pub(super) async fn privmsg(&mut self, m: &irc::Message, command: &str, ctx: &mut SessionCtx) -> Flow {
        let notice = command == "NOTICE";
        let tagmsg = command == "TAGMSG";
        let Some(targets) = m.param(0).filter(|t| !t.is_empty()) else {
            if notice {
                return Flow::Continue;
            }
            return self.bad(ctx, "411", &[&format!("No recipient given ({command})")]);
        };
        let mut client_tags = String::new();
        for (key, value) in m.tags.iter().filter(|(k, _)| k.starts_with('+') && k.len() > 1) {
            if !client_tags.is_empty() {
                client_tags.push(';');
            }
            client_tags.push_str(key);
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                client_tags.push('=');
                irc::escape_tag_value(v, &mut client_tags);
            }
        }
        let tags = (!client_tags.is_empty()).then_some(client_tags);
        let text = if tagmsg {
            if tags.is_none() {
                // Nothing to relay.
                return Flow::Continue;
            }
            ""
        } else {
            match m.param(1).filter(|t| !t.is_empty()) {
                Some(text) => text,
                None if notice => return Flow::Continue,
                None => return self.bad(ctx, "412", &["No text to send"]),
            }
        };
        if !tagmsg && !self.fits_when_relayed(command, targets, text) {
            return self.bad(
                ctx,
                "417",
                &["Input line was too long: with your prefix it would not fit 512 bytes; send it shorter"],
            );
        }
        let (text, action) = match text.strip_prefix("\u{1}ACTION") {
            Some(rest) => (rest.trim_end_matches('\u{1}').trim_start_matches(' '), true),
            None => (text, false),
        };
        if !notice && !tagmsg && super::nickserv::is_nickserv(targets) {
            return self.nickserv(text, ctx).await;
        }
        let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
        if targets.len() > MAX_TARGETS {
            return self.bad(ctx, "407", &[targets[0], "Too many recipients"]);
        }
        for target in targets {
            let op = if notice {
                Op::Notice { target: target.to_string() }
            } else {
                Op::Message { target: target.to_string() }
            };
            let req = op.labeled(self.line_label.as_deref().map(String::from));
            let target = if is_room_name(target) {
                Target::Room(target.to_string())
            } else if validate_nick(target).is_ok() {
                Target::Nick(target.to_string())
            } else {
                if notice {
                    continue;
                }
                let flow = self.answer(ctx, "401", &[target, "No such nick/channel"]);
                if flow != Flow::Continue {
                    return flow;
                }
                continue;
            };
            // Every Say gets exactly one answer (ack or error), a refused one included.
            self.unanswered = self.unanswered.saturating_add(1);
            if !ctx.allow_message() {
                return ctx.rate_limited(req);
            }
            let cmd = Command::Say {
                target,
                text: text.to_string(),
                action,
                notice,
                meta: tags.clone(),
                cid: None,
                req,
            };
            let flow = ctx.command(cmd).await;
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }
}
