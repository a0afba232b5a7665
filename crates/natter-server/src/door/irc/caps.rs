//! IRCv3 capabilities: which ones natter offers, and which ones a client has enabled.

/// Capabilities offered in `CAP LS`: only those natter acts on.
pub(super) const CAPS: &[&str] = &[
    "account-notify",
    "account-tag",
    "away-notify",
    "batch",
    "cap-notify",
    "draft/chathistory",
    "echo-message",
    "extended-join",
    "extended-monitor",
    "labeled-response",
    "message-tags",
    "multi-prefix",
    "sasl",
    "server-time",
    "setname",
    "userhost-in-names",
];

/// Enabled IRCv3 capabilities.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Caps {
    pub account_notify: bool,
    pub account_tag: bool,
    pub away_notify: bool,
    pub batch: bool,
    /// Accepted when asked for (IRCv3 implies it for `CAP LS 302` clients). natter's capabilities never change while a
    /// client is connected, so no `CAP NEW`/`DEL` is ever due.
    pub cap_notify: bool,
    pub chathistory: bool,
    pub echo_message: bool,
    pub extended_join: bool,
    /// Presence news (away, account, real name) of watched nicks (`MONITOR`), as of
    /// neighbours, under the same capabilities.
    pub extended_monitor: bool,
    pub labeled_response: bool,
    pub message_tags: bool,
    pub multi_prefix: bool,
    /// Enabled for `AUTHENTICATE` (which natter also answers without it, as servers do).
    pub sasl: bool,
    pub server_time: bool,
    /// `SETNAME` of neighbours and oneself.
    pub setname: bool,
    pub userhost_in_names: bool,
}

impl Caps {
    /// The flag of a capability named in [`CAPS`].
    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "account-notify" => &mut self.account_notify,
            "account-tag" => &mut self.account_tag,
            "away-notify" => &mut self.away_notify,
            "batch" => &mut self.batch,
            "cap-notify" => &mut self.cap_notify,
            "draft/chathistory" => &mut self.chathistory,
            "echo-message" => &mut self.echo_message,
            "extended-join" => &mut self.extended_join,
            "extended-monitor" => &mut self.extended_monitor,
            "labeled-response" => &mut self.labeled_response,
            "message-tags" => &mut self.message_tags,
            "multi-prefix" => &mut self.multi_prefix,
            "sasl" => &mut self.sasl,
            "server-time" => &mut self.server_time,
            "setname" => &mut self.setname,
            "userhost-in-names" => &mut self.userhost_in_names,
            _ => return None,
        })
    }

    /// Enables or disables a capability; false when natter does not offer it.
    pub fn set(&mut self, name: &str, on: bool) -> bool {
        self.flag(name).map(|flag| *flag = on).is_some()
    }

    /// The enabled capabilities, in [`CAPS`] order.
    pub fn list(&self) -> String {
        let mut caps = *self;
        let on: Vec<&str> = CAPS.iter().copied().filter(|name| caps.flag(name).is_some_and(|f| *f)).collect();
        on.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_capability_can_be_enabled_and_is_listed() {
        let mut caps = Caps::default();
        assert_eq!(caps.list(), "");
        for name in CAPS {
            assert!(caps.set(name, true), "{name}");
        }
        assert_eq!(caps.list(), CAPS.join(" "));
        assert!(caps.set("batch", false) && !caps.set("draft/metadata-2", true));
        assert!(!caps.list().split(' ').any(|c| c == "batch"));
    }

    /// Capabilities natter would only pretend to support are not offered.
    #[test]
    fn capabilities_that_do_nothing_are_not_offered() {
        let mut caps = Caps::default();
        for name in ["draft/multiline", "draft/read-marker", "invite-notify", "chghost"] {
            assert!(!CAPS.contains(&name) && !caps.set(name, true), "{name}");
        }
    }
}
