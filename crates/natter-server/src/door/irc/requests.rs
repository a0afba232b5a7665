//! The IRC door's request ledger: what each command sent to the hub was, so that the answer
//! (or refusal) that comes back with its [`RequestToken`] is rendered as the numerics that
//! command expects, naming what the client named.

use natter_core::{Req, RequestToken};

/// One request of this door, carried through the hub in its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IrcRequest {
    /// What was asked.
    pub op: Op,
    /// The labeled-response label of the line that asked, for the commands whose answers
    /// carry it themselves (a message to one target, CHATHISTORY).
    pub label: Option<String>,
}

/// What an IRC command asked of the hub, with the names as the client gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    /// Logging in with NICK/USER.
    Register { nick: String },
    /// NICK after logging in.
    Nick { nick: String },
    /// PRIVMSG or TAGMSG to one target.
    Message { target: String },
    /// NOTICE to one target: never answered by an error (RFC 2812).
    Notice { target: String },
    /// CHATHISTORY `sub` of `target` (`*` for TARGETS).
    ChatHistory { sub: String, target: String },
    /// JOIN of one channel.
    Join { room: String },
    /// PART of one channel (also JOIN 0).
    Part { room: String },
    /// NAMES of one channel; `in_list` when one of several, ended by a single 366.
    Names { room: String, in_list: bool },
    /// TOPIC query.
    Topic { room: String },
    /// TOPIC change.
    SetTopic { room: String },
    /// WHO with a channel or mask as given; WHOX fields when asked with `%fields[,token]`.
    Who { mask: String, whox: Option<Box<Whox>> },
    /// WHOIS of one nick.
    Whois { nick: String },
    /// WHOWAS of one nick.
    Whowas { nick: String },
    /// ISON of these nicks.
    Ison { nicks: Vec<String> },
    /// USERHOST of these nicks.
    Userhost { nicks: Vec<String> },
    /// LIST, optionally of these channels (comma-separated as given).
    List { filter: String },
    /// LUSERS, or the counts of the registration burst (`welcome`), which end it.
    Lusers { welcome: bool },
    /// AWAY.
    Away,
    /// SETNAME.
    Setname,
    /// MODE of a channel (query or change).
    Mode { room: String },
    /// MODE +b without a mask: the ban list.
    BanList { room: String },
    /// KICK of one nick from one channel.
    Kick { room: String, nick: String },
    /// INVITE of a nick into a channel.
    Invite { room: String, nick: String },
    /// INVITE alone: the channels we are invited to.
    Invites,
    /// OPER.
    Oper,
    /// KILL.
    Kill { nick: String },
    /// WALLOPS.
    Wallops,
    /// MONITOR.
    Monitor,
    /// A message to NickServ: its answers are NickServ's notices.
    NickServ,
}

impl Op {
    /// The request, unlabeled, as a token for the hub.
    pub fn token(self) -> Req {
        Some(RequestToken::new(IrcRequest { op: self, label: None }))
    }

    /// The request carrying `label` (labeled-response), as a token for the hub.
    pub fn labeled(self, label: Option<String>) -> Req {
        Some(RequestToken::new(IrcRequest { op: self, label }))
    }

    /// The command's name in the generic `400` reply for refusals no numeric fits.
    pub fn command(&self) -> &'static str {
        match self {
            Op::Register { .. } | Op::Nick { .. } => "NICK",
            Op::Message { .. } => "MSG",
            Op::Notice { .. } => "NOTICE",
            Op::ChatHistory { .. } => "CHATHISTORY",
            Op::Join { .. } => "JOIN",
            Op::Part { .. } => "PART",
            Op::Names { .. } => "NAMES",
            Op::Topic { .. } => "TOPIC",
            Op::SetTopic { .. } => "TOPICSET",
            Op::Who { .. } => "WHO",
            Op::Whois { .. } => "WHOIS",
            Op::Whowas { .. } => "WHOWAS",
            Op::Ison { .. } => "ISON",
            Op::Userhost { .. } => "USERHOST",
            Op::List { .. } => "LIST",
            Op::Lusers { .. } => "LUSERS",
            Op::Away => "AWAY",
            Op::Setname => "SETNAME",
            Op::Mode { .. } => "MODE",
            Op::BanList { .. } => "BANLIST",
            Op::Kick { .. } => "KICK",
            Op::Invite { .. } => "INVITE",
            Op::Invites => "INVITES",
            Op::Oper => "OPER",
            Op::Kill { .. } => "KILL",
            Op::Wallops => "WALLOPS",
            Op::Monitor => "MONITOR",
            Op::NickServ => "NICKSERV",
        }
    }

    /// The channel (or message target) the client named, if any.
    pub fn room(&self) -> Option<&str> {
        match self {
            Op::Message { target: room }
            | Op::Notice { target: room }
            | Op::Join { room }
            | Op::Part { room }
            | Op::Names { room, .. }
            | Op::Topic { room }
            | Op::SetTopic { room }
            | Op::Mode { room }
            | Op::BanList { room }
            | Op::Kick { room, .. }
            | Op::Invite { room, .. } => Some(room),
            Op::ChatHistory { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The nick the client named, if any.
    pub fn nick(&self) -> Option<&str> {
        match self {
            Op::Register { nick }
            | Op::Nick { nick }
            | Op::Whois { nick }
            | Op::Whowas { nick }
            | Op::Kill { nick }
            | Op::Kick { nick, .. }
            | Op::Invite { nick, .. } => Some(nick),
            Op::Message { target } | Op::Notice { target } => Some(target),
            _ => None,
        }
    }
}

/// This door's record of a request, when the token is one of ours.
pub(super) fn request_of(req: &Req) -> Option<&IrcRequest> {
    req.as_ref().and_then(|t| t.get::<IrcRequest>())
}

/// What was asked, when the token is one of ours.
pub(super) fn op_of(req: &Req) -> Option<&Op> {
    request_of(req).map(|r| &r.op)
}

/// The fields a WHOX request (IRCv3 WHOX: `WHO mask %tcuihsnfdlaor,token`) asks for, in the
/// fixed order of the `354` reply, and its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Whox {
    /// The field letters asked for, each once, in reply order (`tcuihsnfdlaor`).
    pub fields: String,
    /// The client's token (`%t`), at most 3 digits.
    pub token: Option<String>,
}

impl Whox {
    /// The order of the fields in a `354` reply.
    pub const ORDER: &'static str = "tcuihsnfdlaor";

    /// Reads `%fields[,token]`; `None` when the parameter is not a WHOX request.
    pub fn parse(param: &str) -> Option<Self> {
        let rest = param.strip_prefix('%')?;
        let (letters, token) = match rest.split_once(',') {
            Some((l, t)) => (l, Some(t)),
            None => (rest, None),
        };
        let fields: String = Self::ORDER.chars().filter(|c| letters.contains(*c)).collect();
        let token = token
            .filter(|t| !t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string);
        Some(Self { fields, token })
    }
}
