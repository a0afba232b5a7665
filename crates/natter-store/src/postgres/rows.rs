//! Rows to records and back: the columns each query selects, and the conversions between
//! natter's unsigned numbers and PostgreSQL's signed `bigint`.

use natter_core::StoreError;
use natter_core::store::{AccountRecord, RoomRecord, StoredMessage, StoredPrivate};
use postgres::Row;

pub(crate) const MESSAGE_COLUMNS: &str = "room, mid, ts, nick, sender_key, cid, text, action, notice";

pub(crate) const ACCOUNT_COLUMNS: &str = "folded, name, hash, created_ts, last_login_ts, scram";

pub(crate) const PRIVATE_COLUMNS: &str =
    "mid, ts, from_key, nick, to_key, to_nick, text, action, notice, undelivered";

pub(crate) const ROOM_COLUMNS: &str = "key, name, topic, topic_by, ephemeral, created_ts, rules";

/// A stored number as natter's: ids and times are never negative (they were checked on the way
/// in), so a negative one can only be damage, read as 0 rather than as a huge number.
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Free text as stored (UTF-8 in `bytea`); text that is not UTF-8 (written by something else)
/// is shown with replacement characters rather than refused.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Converts `v` into a `bigint`; ids and times beyond it cannot be stored.
pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Io(format!("{what} {v} is too large to store (above 2^63-1)")))
}

pub(crate) fn message(r: &Row) -> Result<StoredMessage, postgres::Error> {
    Ok(StoredMessage {
        room: r.try_get(0)?,
        mid: unsigned(r.try_get(1)?),
        ts: unsigned(r.try_get(2)?),
        nick: r.try_get(3)?,
        sender_key: r.try_get(4)?,
        cid: r.try_get::<_, Option<Vec<u8>>>(5)?.map(text),
        text: text(r.try_get(6)?),
        action: r.try_get(7)?,
        notice: r.try_get(8)?,
    })
}

pub(crate) fn private(r: &Row) -> Result<StoredPrivate, postgres::Error> {
    Ok(StoredPrivate {
        mid: unsigned(r.try_get(0)?),
        ts: unsigned(r.try_get(1)?),
        from_key: r.try_get(2)?,
        nick: r.try_get(3)?,
        to_key: r.try_get(4)?,
        to_nick: r.try_get(5)?,
        text: text(r.try_get(6)?),
        action: r.try_get(7)?,
        notice: r.try_get(8)?,
        undelivered: r.try_get(9)?,
    })
}

pub(crate) fn account(r: &Row) -> Result<AccountRecord, postgres::Error> {
    Ok(AccountRecord {
        folded: r.try_get(0)?,
        name: r.try_get(1)?,
        hash: r.try_get(2)?,
        created_ts: unsigned(r.try_get(3)?),
        last_login_ts: r.try_get::<_, Option<i64>>(4)?.map(unsigned),
        scram: r.try_get(5)?,
    })
}

pub(crate) fn room(r: &Row) -> Result<RoomRecord, postgres::Error> {
    Ok(RoomRecord {
        folded: r.try_get(0)?,
        name: r.try_get(1)?,
        topic: text(r.try_get(2)?),
        topic_by: r.try_get(3)?,
        ephemeral: r.try_get(4)?,
        created_ts: unsigned(r.try_get(5)?),
        rules: crate::rules::decode(r.try_get(6)?),
    })
}

/// A stored `bigint` as natter's number ([`unsigned`]), for single values.
pub(crate) fn number(r: &Row, i: usize) -> Result<u64, postgres::Error> {
    Ok(unsigned(r.try_get(i)?))
}

/// The inclusive lower bound for values above `after` (everything without one); `None` when
/// no stored value can be above it.
pub(crate) fn above(after: Option<u64>) -> Option<i64> {
    match after {
        None => Some(i64::MIN),
        Some(a) => i64::try_from(a).ok().and_then(|a| a.checked_add(1)),
    }
}

/// The inclusive upper bound for values below `before` (everything without one); `None` when
/// no value is below it.
pub(crate) fn below(before: Option<u64>) -> Option<i64> {
    match before {
        None => Some(i64::MAX),
        Some(0) => None,
        Some(b) => Some(i64::try_from(b - 1).unwrap_or(i64::MAX)),
    }
}
