//! `HELP [subject]` (and `HELPOP`, its older name): what each command does, as the modern IRC
//! numerics carry it (`704` the first line, `705` the others, `706` the end; `524` for a
//! subject natter has no help on).

use super::super::IrcDoor;
use crate::door::{Flow, SessionCtx};
use natter_proto::irc;

/// Each subject and its lines; the first subject (`*`) is the index.
const TOPICS: &[(&str, &[&str])] = &[
    (
        "*",
        &[
            "natter speaks IRC: channels are natter rooms, shared with every other kind of client.",
            "Commands: AWAY CAP CHATHISTORY HELP INFO INVITE ISON JOIN KICK KILL LINKS LIST LUSERS",
            "MODE MONITOR MOTD NAMES NICK NOTICE OPER PART PING PRIVMSG QUIT TAGMSG TIME TOPIC",
            "USERHOST VERSION WALLOPS WHO WHOIS WHOWAS. HELP <command> tells more about one.",
            "Accounts: SASL before registering, or /msg NickServ HELP.",
        ],
    ),
    ("AWAY", &["AWAY [:message]: mark yourself away with a message, or back without one."]),
    ("CAP", &["CAP LS [302] | LIST | REQ :caps | END: negotiate IRCv3 capabilities."]),
    (
        "CHATHISTORY",
        &[
            "CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN <#room> ...: read a room's stored history",
            "(draft/chathistory; references are msgid=... or timestamp=...).",
        ],
    ),
    ("HELP", &["HELP [command]: this help; HELPOP is the same."]),
    ("INFO", &["INFO: about this server."]),
    ("INVITE", &["INVITE <nick> <#room>: invite someone (needed to join an invite-only room)."]),
    ("ISON", &["ISON <nick> ...: which of these nicks are online."]),
    ("JOIN", &["JOIN <#room>[,#room...] [key,...]: join rooms, creating them if needed; JOIN 0 leaves all."]),
    ("KICK", &["KICK <#room> <nick> [:reason]: remove someone from a room (room operators)."]),
    ("KILL", &["KILL <nick> :reason: disconnect someone (server operators)."]),
    ("LINKS", &["LINKS: the servers of this network (natter is one server)."]),
    ("LIST", &["LIST [#room,...]: the rooms, their member counts and topics (not secret ones)."]),
    ("LUSERS", &["LUSERS: how many users are online."]),
    (
        "MODE",
        &[
            "MODE <#room> [+|-modes] [params]: room modes (t n m i s k l, b bans, o operators, v voice);",
            "MODE <your nick> [+|-iw]: your user modes.",
        ],
    ),
    ("MONITOR", &["MONITOR + <nicks> | - <nicks> | C | L | S: be told when these nicks come and go."]),
    ("MOTD", &["MOTD: the message of the day."]),
    ("NAMES", &["NAMES <#room>: who is in a room."]),
    ("NICK", &["NICK <nickname>: choose or change your nickname."]),
    ("NOTICE", &["NOTICE <target> :text: a message that must never draw an automatic answer."]),
    ("OPER", &["OPER <name> <password>: become a server operator."]),
    ("PART", &["PART <#room>[,#room...] [:reason]: leave rooms."]),
    ("PING", &["PING <token>: the server answers PONG with the same token."]),
    ("PRIVMSG", &["PRIVMSG <#room|nick>[,target...] :text: send a message to a room or a person."]),
    ("QUIT", &["QUIT [:reason]: leave the server."]),
    ("TAGMSG", &["TAGMSG <target>: a message of client tags only (message-tags)."]),
    ("TIME", &["TIME: the server's clock."]),
    ("TOPIC", &["TOPIC <#room> [:topic]: show or set a room's topic."]),
    ("USERHOST", &["USERHOST <nick> ...: the user@host of these nicks."]),
    ("VERSION", &["VERSION: the server's version and what it supports (ISUPPORT)."]),
    ("WALLOPS", &["WALLOPS :text: a message to every user with mode +w (server operators)."]),
    ("WHO", &["WHO <#room|mask>: who is in a room, or who matches a mask."]),
    ("WHOIS", &["WHOIS <nick>: who someone is, their rooms and account."]),
    ("WHOWAS", &["WHOWAS <nick>: who recently had a nickname."]),
];

impl IrcDoor {
    /// `HELP [subject]`.
    pub(super) fn help(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let asked = m.param(0).filter(|s| !s.is_empty());
        let subject = asked.map(str::to_ascii_uppercase);
        let found = match subject.as_deref() {
            None => TOPICS.first(),
            Some(s) => TOPICS.iter().find(|(name, _)| *name == s),
        };
        let Some((name, lines)) = found else {
            let asked = asked.unwrap_or("*");
            return self.reply().numeric("524", &[asked, "No help available on this topic"]).send(ctx);
        };
        let mut reply = self.reply();
        for (i, line) in lines.iter().enumerate() {
            reply.numeric(if i == 0 { "704" } else { "705" }, &[name, line]);
        }
        reply.numeric("706", &[name, "End of /HELP"]);
        reply.send(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::TOPICS;

    /// Every command the door dispatches has help, and no subject is listed twice.
    #[test]
    fn every_subject_is_there_once() {
        for (i, (name, lines)) in TOPICS.iter().enumerate() {
            assert!(!lines.is_empty(), "{name}");
            assert!(TOPICS[i + 1..].iter().all(|(other, _)| other != name), "{name} twice");
            if *name != "*" {
                assert!(TOPICS[0].1.concat().contains(name), "{name} is missing from the index");
            }
        }
    }
}
