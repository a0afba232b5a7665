//! Room modes as letters (`+tnk key`, `+o ann`): how IRC's `MODE` and text mode's `/mode`
//! spell the core's room changes, both ways.

use natter_core::RoomChange;
use natter_proto::names::complete_mask;

/// One item of an IRC-style mode string (`+tnk key`), as typed in IRC `MODE` and text `/mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModeItem {
    /// A change for the hub.
    Change(RoomChange),
    /// `b` without a mask: list the bans.
    ListBans,
    /// A letter natter does not know.
    Unknown(char),
    /// A letter that needs a parameter and has none.
    NeedsParam(char),
}

/// Reads mode words the IRC way: letters after `+`/`-`, parameters taken in order by `k`
/// (when set), `l` (when set), `b`, `o` and `v`.
pub(crate) fn parse_modes<'a>(words: impl IntoIterator<Item = &'a str>) -> Vec<ModeItem> {
    use RoomChange as C;
    let mut words = words.into_iter();
    let Some(letters) = words.next() else { return Vec::new() };
    let mut params = words;
    let mut on = true;
    let mut items = Vec::new();
    for c in letters.chars() {
        let item = match c {
            '+' => {
                on = true;
                continue;
            }
            '-' => {
                on = false;
                continue;
            }
            't' => ModeItem::Change(C::TopicLock(on)),
            'n' => ModeItem::Change(C::NoExternal(on)),
            'm' => ModeItem::Change(C::Moderated(on)),
            'i' => ModeItem::Change(C::InviteOnly(on)),
            's' => ModeItem::Change(C::Secret(on)),
            'k' if on => match params.next() {
                Some(key) => ModeItem::Change(C::Key(Some(key.to_string()))),
                None => ModeItem::NeedsParam('k'),
            },
            'k' => {
                // `-k` takes the (ignored) key as a parameter when one is given.
                let _ = params.next();
                ModeItem::Change(C::Key(None))
            }
            'l' if on => match params.next() {
                Some(n) => match n.parse::<u32>() {
                    Ok(n) if n > 0 => ModeItem::Change(C::Limit(Some(n))),
                    _ => continue,
                },
                None => ModeItem::NeedsParam('l'),
            },
            'l' => ModeItem::Change(C::Limit(None)),
            'b' => match params.next() {
                Some(mask) => ModeItem::Change(C::Ban { mask: complete_mask(mask), on }),
                None => ModeItem::ListBans,
            },
            'o' | 'v' => match params.next() {
                Some(nick) if c == 'o' => ModeItem::Change(C::Operator { nick: nick.to_string(), on }),
                Some(nick) => ModeItem::Change(C::Voice { nick: nick.to_string(), on }),
                None => ModeItem::NeedsParam(c),
            },
            other => ModeItem::Unknown(other),
        };
        items.push(item);
    }
    items
}

/// IRC mode letters for applied room changes, with their parameters: `("+o-k", ["ann", "*"])`.
pub(crate) fn mode_string(changes: &[RoomChange]) -> (String, Vec<String>) {
    use RoomChange as C;
    let mut letters = String::new();
    let mut params = Vec::new();
    let mut sign = None;
    for change in changes {
        let (on, c, param) = match change {
            C::TopicLock(on) => (*on, 't', None),
            C::NoExternal(on) => (*on, 'n', None),
            C::Moderated(on) => (*on, 'm', None),
            C::InviteOnly(on) => (*on, 'i', None),
            C::Secret(on) => (*on, 's', None),
            C::Key(Some(k)) => (true, 'k', Some(k.clone())),
            C::Key(None) => (false, 'k', Some("*".to_string())),
            C::Limit(Some(l)) => (true, 'l', Some(l.to_string())),
            C::Limit(None) => (false, 'l', None),
            C::Ban { mask, on } => (*on, 'b', Some(mask.clone())),
            C::Operator { nick, on } => (*on, 'o', Some(nick.clone())),
            C::Voice { nick, on } => (*on, 'v', Some(nick.clone())),
        };
        if sign != Some(on) {
            letters.push(if on { '+' } else { '-' });
            sign = Some(on);
        }
        letters.push(c);
        params.extend(param);
    }
    (letters, params)
}

/// A room's settings as IRC mode letters with parameters (`+ntk key`).
pub(crate) fn modes_of(modes: &natter_core::event::RoomModes) -> (String, Vec<String>) {
    let mut letters = String::from("+");
    let mut params = Vec::new();
    for (on, c) in [
        (modes.invite_only, 'i'),
        (modes.moderated, 'm'),
        (modes.no_external, 'n'),
        (modes.secret, 's'),
        (modes.topic_lock, 't'),
    ] {
        if on {
            letters.push(c);
        }
    }
    if let Some(k) = &modes.key {
        letters.push('k');
        params.push(k.to_string());
    }
    if let Some(l) = modes.limit {
        letters.push('l');
        params.push(l.to_string());
    }
    (letters, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RoomChange as C;

    #[test]
    fn mode_words_parse_like_irc() {
        let items = parse_modes(["+kmo-v", "pw", "ann", "bob"]);
        assert_eq!(
            items,
            [
                ModeItem::Change(C::Key(Some("pw".into()))),
                ModeItem::Change(C::Moderated(true)),
                ModeItem::Change(C::Operator { nick: "ann".into(), on: true }),
                ModeItem::Change(C::Voice { nick: "bob".into(), on: false }),
            ]
        );
        assert_eq!(parse_modes(["b"]), [ModeItem::ListBans]);
        assert_eq!(parse_modes(["+l"]), [ModeItem::NeedsParam('l')]);
        assert_eq!(parse_modes(["+X"]), [ModeItem::Unknown('X')]);
        assert!(parse_modes(["+l", "lots"]).is_empty());
        assert!(parse_modes([]).is_empty());
    }

    #[test]
    fn changes_print_as_mode_strings() {
        let (letters, params) = mode_string(&[
            C::Operator { nick: "ann".into(), on: true },
            C::Key(Some("k".into())),
            C::Moderated(false),
        ]);
        assert_eq!(letters, "+ok-m");
        assert_eq!(params, ["ann", "k"]);
    }
}
