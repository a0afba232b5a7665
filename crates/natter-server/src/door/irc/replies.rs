//! Numeric replies: the welcome's ISUPPORT, the message of the day, LUSERS, NAMES, WHO and
//! WHOIS, as IRC clients expect them.

use super::lines::{push_line, source, split_ident};
use super::requests::Whox;
use super::{HISTORY_PAGE, IrcDoor, MAX_TARGETS};
use natter_core::event::{MemberInfo, ServerStats, UserInfo};
use natter_core::hub::{
    MAX_AWAY_BYTES, MAX_BANS, MAX_KEY_CHARS, MAX_KICK_BYTES, MAX_TOPIC_BYTES, MAX_WATCHES,
};
use natter_proto::irc::MAX_LINE;
use natter_proto::names::{MAX_NICK_CHARS, MAX_ROOM_CHARS};

/// Which list a [`IrcDoor::partial_list_notice`] is about.
#[derive(Clone, Copy)]
pub(super) enum PartialList<'a> {
    /// A room's members (NAMES, `WHO #room`, the names on joining).
    Room(&'a str),
    /// Everyone online (`WHO *`).
    Server,
    /// The users matching a `WHO` mask.
    Search(&'a str),
}

impl IrcDoor {
    /// A numeric reply from the server to this client.
    pub(super) fn numeric(&self, out: &mut Vec<u8>, code: &str, params: &[&str]) {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(self.me());
        all.extend_from_slice(params);
        push_line(out, "", Some(self.server), code, &all);
    }

    /// The NOTICE after a NAMES or WHO answer that lists only the first `listed` of `count`
    /// (IRC has no paging: a big room or server is answered a page at a time, as ngircd and
    /// others cap WHO, and the user is told so rather than shown a list that looks whole).
    /// `of` names the list: `#room`, or `None` for the server or a search for `mask`.
    pub(super) fn partial_list_notice(
        &self,
        of: PartialList<'_>,
        listed: usize,
        count: usize,
        out: &mut Vec<u8>,
    ) {
        if listed >= count {
            return;
        }
        let text = match of {
            PartialList::Room(room) => format!(
                "{room} has {count} members; the first {listed} by nick are listed \
                 (WHO with a mask, such as WHO a*, finds the others)"
            ),
            PartialList::Server => format!(
                "{count} users are online; the first {listed} by nick are listed \
                 (WHO with a mask, such as WHO a*, finds the others)"
            ),
            PartialList::Search(mask) => format!(
                "{count} users match {mask}; the first {listed} by nick are listed \
                 (a longer mask finds fewer)"
            ),
        };
        push_line(out, "", Some(self.server), "NOTICE", &[self.me(), &text]);
    }

    /// `@`/`+` (or both, with multi-prefix) before a nick in NAMES and WHO.
    pub(super) fn prefix_of(&self, op: bool, voice: bool) -> &'static str {
        match (op, voice) {
            (true, true) if self.caps.multi_prefix => "@+",
            (true, _) => "@",
            (false, true) => "+",
            _ => "",
        }
    }

    /// 353 lines and 366 for `(nick, user@host, op, voice)` entries; `kind` is `=` or `@`
    /// (secret). With userhost-in-names, entries are `nick!user@host`.
    pub(super) fn names(
        &self,
        room: &str,
        kind: &str,
        entries: &[(&str, &str, bool, bool)],
        out: &mut Vec<u8>,
    ) {
        self.names_lines(room, kind, entries, out);
        self.numeric(out, "366", &[room, "End of /NAMES list"]);
    }

    /// The 353 lines of [`Self::names`] without the closing 366 (one channel of a
    /// multi-channel NAMES, which ends with one 366 for the whole list).
    pub(super) fn names_lines(
        &self,
        room: &str,
        kind: &str,
        entries: &[(&str, &str, bool, bool)],
        out: &mut Vec<u8>,
    ) {
        let prefix = format!(":{} 353 {} {kind} {room} :", self.server, self.me());
        let mut list = String::new();
        for &(nick, ident, op, voice) in entries {
            let entry = if self.caps.userhost_in_names && !ident.is_empty() {
                format!("{}{}", self.prefix_of(op, voice), source(nick, ident))
            } else {
                format!("{}{nick}", self.prefix_of(op, voice))
            };
            if !list.is_empty() && prefix.len() + list.len() + 1 + entry.len() > MAX_LINE {
                self.numeric(out, "353", &[kind, room, &list]);
                list.clear();
            }
            if !list.is_empty() {
                list.push(' ');
            }
            list.push_str(&entry);
        }
        if !list.is_empty() {
            self.numeric(out, "353", &[kind, room, &list]);
        }
    }

    /// `code` numerics listing `items` separated by commas, as many lines as they need
    /// (MONITOR's 730 to 732).
    pub(super) fn comma_lists(&self, code: &str, items: &[natter_core::Name], out: &mut Vec<u8>) {
        let prefix = format!(":{} {code} {} :", self.server, self.me());
        let mut list = String::new();
        for item in items {
            if !list.is_empty() && prefix.len() + list.len() + 1 + item.len() > MAX_LINE {
                self.numeric(out, code, &[&list]);
                list.clear();
            }
            if !list.is_empty() {
                list.push(',');
            }
            list.push_str(item);
        }
        if !list.is_empty() {
            self.numeric(out, code, &[&list]);
        }
    }

    /// The 005 lines: what this server supports and its settings (the hub's, which hold for
    /// every front door: IRC only announces them).
    pub(super) fn isupport(&self, out: &mut Vec<u8>) {
        let nicklen = format!("NICKLEN={MAX_NICK_CHARS}");
        let chanlen = format!("CHANNELLEN={MAX_ROOM_CHARS}");
        let targmax = format!(
            "TARGMAX=PRIVMSG:{MAX_TARGETS},NOTICE:{MAX_TARGETS},JOIN:,PART:,NAMES:{MAX_TARGETS},\
             KICK:{MAX_TARGETS},WHOIS:1"
        );
        let awaylen = format!("AWAYLEN={MAX_AWAY_BYTES}");
        let topiclen = format!("TOPICLEN={MAX_TOPIC_BYTES}");
        let kicklen = format!("KICKLEN={MAX_KICK_BYTES}");
        let maxlist = format!("MAXLIST=b:{MAX_BANS}");
        let keylen = format!("KEYLEN={MAX_KEY_CHARS}");
        let history = format!("CHATHISTORY={HISTORY_PAGE}");
        let monitor = format!("MONITOR={MAX_WATCHES}");
        let tokens = [
            "NETWORK=natter",
            "CASEMAPPING=ascii",
            "CHANTYPES=#",
            "PREFIX=(ov)@+",
            "CHANMODES=b,k,l,imnst",
            "MODES=4",
            &maxlist,
            &keylen,
            &topiclen,
            &kicklen,
            "CHANLIMIT=#:",
            &nicklen,
            &chanlen,
            &targmax,
            &awaylen,
            "LINELEN=512",
            &history,
            "MSGREFTYPES=msgid,timestamp",
            &monitor,
            "UTF8ONLY",
            "WHOX",
            "BOT=B",
        ];
        // At most 13 tokens per line (15 parameters with the nick and the trailing text).
        for chunk in tokens.chunks(13) {
            let mut params: Vec<&str> = chunk.to_vec();
            params.push("are supported by this server");
            self.numeric(out, "005", &params);
        }
    }

    /// The message of the day.
    pub(super) fn motd(&self, out: &mut Vec<u8>) {
        self.numeric(out, "375", &[&format!("- {} Message of the day -", self.server)]);
        let lobby = format!("- {} is where everyone starts.", self.lobby);
        for line in [
            "- Welcome to natter: IRC channels are natter rooms, shared with",
            "- natter's own clients, text mode, UDP and IRC users alike.",
            &lobby,
        ] {
            self.numeric(out, "372", &[line]);
        }
        self.numeric(out, "376", &["End of /MOTD command."]);
    }

    /// LUSERS numerics from the hub's counts.
    pub(super) fn lusers(&self, stats: &ServerStats, out: &mut Vec<u8>) {
        let n = stats.users.to_string();
        let peak = stats.peak.max(stats.users).to_string();
        let invisible = stats.hidden.min(stats.users);
        let visible = stats.users - invisible;
        self.numeric(
            out,
            "251",
            &[&format!("There are {visible} users and {invisible} invisible on 1 servers")],
        );
        if stats.operators > 0 {
            self.numeric(out, "252", &[&stats.operators.to_string(), "operator(s) online"]);
        }
        self.numeric(out, "255", &[&format!("I have {n} clients and 0 servers")]);
        self.numeric(out, "265", &[&n, &peak, &format!("Current local users {n}, max {peak}")]);
        self.numeric(out, "266", &[&n, &peak, &format!("Current global users {n}, max {peak}")]);
    }

    /// A WHO line's flags: `H` here or `G` gone (away), `*` server operator, `B` bot, and in a
    /// channel the member's prefix.
    fn who_flags(&self, m: &MemberInfo, in_channel: bool) -> String {
        let mut flags = String::from(if m.away.is_some() { "G" } else { "H" });
        if m.server_op {
            flags.push('*');
        }
        if m.bot {
            flags.push('B');
        }
        if in_channel {
            flags.push_str(self.prefix_of(m.op, m.voice));
        }
        flags
    }

    /// 352 lines and the closing 315 of a WHO; `channel` is the room or `*`.
    pub(super) fn who(&self, mask: &str, channel: Option<&str>, info: &[MemberInfo], out: &mut Vec<u8>) {
        for m in info {
            let (user, host) = split_ident(&m.ident, self.server);
            let flags = self.who_flags(m, channel.is_some());
            let real = format!("0 {}", m.realname);
            self.numeric(
                out,
                "352",
                &[channel.unwrap_or("*"), user, host, self.server, &m.nick, &flags, &real],
            );
        }
        self.numeric(out, "315", &[mask, "End of /WHO list"]);
    }

    /// 354 lines (WHOX: the fields asked for, in their fixed order) and the closing 315.
    pub(super) fn whox(
        &self,
        mask: &str,
        channel: Option<&str>,
        info: &[MemberInfo],
        whox: &Whox,
        out: &mut Vec<u8>,
    ) {
        for m in info {
            let (user, host) = split_ident(&m.ident, self.server);
            let flags = self.who_flags(m, channel.is_some());
            let idle = m.idle_secs.to_string();
            let mut params: Vec<&str> = Vec::with_capacity(whox.fields.len());
            for field in whox.fields.chars() {
                params.push(match field {
                    't' => whox.token.as_deref().unwrap_or("0"),
                    'c' => channel.unwrap_or("*"),
                    'u' => user,
                    // The address is never shown (hosts are cloaks): the conventional stand-in.
                    'i' => "255.255.255.255",
                    'h' => host,
                    's' => self.server,
                    'n' => &m.nick,
                    'f' => &flags,
                    'd' => "0",
                    'l' => &idle,
                    'a' => m.account.as_deref().unwrap_or("0"),
                    'o' => "n/a",
                    _ => &m.realname,
                });
            }
            self.numeric(out, "354", &params);
        }
        self.numeric(out, "315", &[mask, "End of /WHO list"]);
    }

    /// The WHOIS numerics of one user, ended with 318 naming the nick as asked.
    pub(super) fn whois(&self, asked: &str, user: &UserInfo, out: &mut Vec<u8>) {
        let nick = &*user.nick;
        let (u, host) = split_ident(&user.ident, self.server);
        self.numeric(out, "311", &[nick, u, host, "*", &user.realname]);
        let rooms: Vec<String> =
            user.rooms.iter().map(|r| format!("{}{}", self.prefix_of(r.op, r.voice), r.room)).collect();
        if !rooms.is_empty() {
            self.numeric(out, "319", &[nick, &rooms.join(" ")]);
        }
        self.numeric(out, "312", &[nick, self.server, "natter chat server"]);
        // The address behind the cloak, for operators and oneself (RPL_WHOISHOST).
        if let Some(real) = &user.real_host {
            self.numeric(out, "378", &[nick, &format!("is connecting from *@{real} {real}")]);
        }
        if user.server_op {
            self.numeric(out, "313", &[nick, "is a server operator (the console)"]);
        }
        if let Some(account) = &user.account {
            self.numeric(out, "330", &[nick, account, "is logged in as"]);
        }
        if user.bot {
            self.numeric(out, "335", &[nick, "is a bot"]);
        }
        if let Some(away) = &user.away {
            self.numeric(out, "301", &[nick, away]);
        }
        let now = natter_core::time::now_ms();
        let idle = (now.saturating_sub(user.active_ts) / 1000).to_string();
        let signon = (user.signon_ts / 1000).to_string();
        self.numeric(out, "317", &[nick, &idle, &signon, "seconds idle, signon time"]);
        self.numeric(out, "318", &[asked, "End of /WHOIS list"]);
    }
}
