//! How a room's rules (`natter_core::store::RoomRules`) are kept in its row: one JSON object,
//! so that a new kind of rule needs no schema change, and an old row (`{}`) reads as no rules.

use natter_core::event::{BanInfo, RoomModes};
use natter_core::store::RoomRules;
use serde::{Deserialize, Serialize};

/// The stored form; every field defaults, so rows written before a field existed still read.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Stored {
    operators: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    founder: Option<String>,
    topic_lock: bool,
    no_external: bool,
    moderated: bool,
    invite_only: bool,
    secret: bool,
    key: Option<String>,
    limit: Option<u32>,
    bans: Vec<StoredBan>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredBan {
    mask: String,
    by: String,
    ts: u64,
}

/// The JSON kept in the `rules` column.
pub(crate) fn encode(rules: &RoomRules) -> String {
    let m = &rules.modes;
    let stored = Stored {
        operators: rules.operators.clone(),
        founder: rules.founder.clone(),
        topic_lock: m.topic_lock,
        no_external: m.no_external,
        moderated: m.moderated,
        invite_only: m.invite_only,
        secret: m.secret,
        key: m.key.as_deref().map(str::to_string),
        limit: m.limit,
        bans: rules
            .bans
            .iter()
            .map(|b| StoredBan { mask: b.mask.to_string(), by: b.by.to_string(), ts: b.ts })
            .collect(),
    };
    serde_json::to_string(&stored).expect("plain data serializes")
}

/// The rules read back; a damaged value reads as the defaults (the room stays usable, and a
/// server operator can set it up again) rather than stopping the server.
pub(crate) fn decode(json: &str) -> RoomRules {
    let stored: Stored = serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "a room's stored rules are unreadable; using the defaults");
        Stored::default()
    });
    RoomRules {
        operators: stored.operators,
        founder: stored.founder,
        modes: RoomModes {
            topic_lock: stored.topic_lock,
            no_external: stored.no_external,
            moderated: stored.moderated,
            invite_only: stored.invite_only,
            secret: stored.secret,
            key: stored.key.map(Into::into),
            limit: stored.limit,
        },
        bans: stored
            .bans
            .into_iter()
            .map(|b| BanInfo { mask: b.mask.into(), by: b.by.into(), ts: b.ts })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_survive_the_round_trip_and_old_rows_read_as_none() {
        let rules = RoomRules {
            operators: vec!["~ann".into(), "bob".into()],
            founder: Some("ann".into()),
            modes: RoomModes {
                moderated: true,
                key: Some("k".into()),
                limit: Some(5),
                ..RoomModes::default()
            },
            bans: vec![BanInfo { mask: "zed!*@*".into(), by: "ann".into(), ts: 7 }],
        };
        assert_eq!(decode(&encode(&rules)), rules);
        assert_eq!(decode("{}"), RoomRules::default());
        assert_eq!(decode("not json"), RoomRules::default());
    }
}
