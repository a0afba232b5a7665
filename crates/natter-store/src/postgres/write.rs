//! Group commits: a batch of writes in one transaction, and the numbering of messages in that
//! same transaction for a cluster ([`number`]).

use super::pool::{Sql, TxError};
use super::rows::to_i64;
use natter_core::StoreError;
use natter_core::store::{Write, conversation};
use std::collections::BTreeMap;

/// Every run of messages goes in one statement (arrays unnested into rows): a statement per
/// row would spend a round trip on each.
const INSERT_MESSAGES: &str =
    "INSERT INTO messages (room, mid, ts, nick, sender_key, cid, text, action, notice)
     SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::bytea[],
                          $7::bytea[], $8::bool[], $9::bool[])";

/// Applies `batch` in order on the open transaction `sql` (the ids already given).
pub(crate) fn apply(sql: &mut Sql<'_>, batch: &[Write]) -> Result<(), TxError> {
    let mut i = 0;
    while i < batch.len() {
        match &batch[i] {
            Write::Message(_) => {
                let run: Vec<_> = batch[i..]
                    .iter()
                    .map_while(|w| match w {
                        Write::Message(m) => Some(m),
                        _ => None,
                    })
                    .collect();
                let mut mids = Vec::with_capacity(run.len());
                let mut times = Vec::with_capacity(run.len());
                for m in &run {
                    mids.push(to_i64(m.mid, "message id")?);
                    times.push(to_i64(m.ts, "timestamp")?);
                }
                let rooms: Vec<&str> = run.iter().map(|m| m.room.as_str()).collect();
                let nicks: Vec<&str> = run.iter().map(|m| m.nick.as_str()).collect();
                let senders: Vec<&str> = run.iter().map(|m| m.sender_key.as_str()).collect();
                let cids: Vec<Option<&[u8]>> =
                    run.iter().map(|m| m.cid.as_deref().map(str::as_bytes)).collect();
                let texts: Vec<&[u8]> = run.iter().map(|m| m.text.as_bytes()).collect();
                let actions: Vec<bool> = run.iter().map(|m| m.action).collect();
                let notices: Vec<bool> = run.iter().map(|m| m.notice).collect();
                sql.execute(
                    INSERT_MESSAGES,
                    &[&rooms, &mids, &times, &nicks, &senders, &cids, &texts, &actions, &notices],
                )?;
                i += run.len();
            }
            Write::Room(r) => {
                let created_ts = to_i64(r.created_ts, "room creation time")?;
                let rules = crate::rules::encode(&r.rules);
                sql.execute(
                    "INSERT INTO rooms (key, name, topic, topic_by, ephemeral, created_ts, rules)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (key) DO UPDATE SET
                        name = excluded.name, topic = excluded.topic,
                        topic_by = excluded.topic_by, ephemeral = excluded.ephemeral,
                        created_ts = excluded.created_ts, rules = excluded.rules",
                    &[
                        &r.folded,
                        &r.name,
                        &r.topic.as_bytes(),
                        &r.topic_by,
                        &r.ephemeral,
                        &created_ts,
                        &rules,
                    ],
                )?;
                i += 1;
            }
            Write::ForgetRoom(key) => {
                sql.execute(
                    "DELETE FROM rooms WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM messages WHERE room = $1)",
                    &[key],
                )?;
                i += 1;
            }
            Write::Private(m) => {
                let (low, high) = conversation(&m.from_key, &m.to_key);
                let (mid, ts) = (to_i64(m.mid, "message id")?, to_i64(m.ts, "timestamp")?);
                sql.execute(
                    "INSERT INTO private_messages
                        (low, high, mid, ts, from_key, nick, to_key, to_nick, text, action, notice, undelivered)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    &[
                        &low,
                        &high,
                        &mid,
                        &ts,
                        &m.from_key,
                        &m.nick,
                        &m.to_key,
                        &m.to_nick,
                        &m.text.as_bytes(),
                        &m.action,
                        &m.notice,
                        &m.undelivered,
                    ],
                )?;
                i += 1;
            }
            Write::Delivered { to_key, upto } => {
                let upto = i64::try_from(*upto).unwrap_or(i64::MAX);
                sql.execute(
                    "UPDATE private_messages SET undelivered = FALSE
                     WHERE to_key = $1 AND mid <= $2 AND undelivered",
                    &[to_key, &upto],
                )?;
                i += 1;
            }
            // Only a numbered commit gives it a meaning (`number` took its id).
            Write::CountOnly(_) => i += 1,
        }
    }
    Ok(())
}

/// Numbers `batch` on the open transaction `sql` ([`natter_core::Store::commit_numbered`]):
/// returns the batch with its ids filled in, and the ids, one per message, `CountOnly` and
/// private write.
///
/// Each room's counter row (and the private counter's) is locked by an upsert and stays locked
/// until the transaction ends, so another node's commit to the same room waits for this one
/// and then goes on from its last id: ids are distinct, gap-free (a transaction that rolls back
/// rolls its counter back too) and increasing in commit order. Rooms are locked in name order,
/// so two nodes' batches over the same rooms cannot deadlock. A counter also never falls behind
/// the messages stored in its room (by plain commits, or before the counter existed).
pub(crate) fn number(sql: &mut Sql<'_>, batch: &[Write]) -> Result<(Vec<Write>, Vec<u64>), TxError> {
    let mut counters: BTreeMap<&str, i64> = BTreeMap::new();
    let mut private_used = false;
    for write in batch {
        match write {
            Write::Message(m) => {
                counters.insert(&m.room, 0);
            }
            Write::CountOnly(room) => {
                counters.insert(room, 0);
            }
            Write::Private(_) => private_used = true,
            _ => {}
        }
    }
    for (room, last) in counters.iter_mut() {
        let row = sql.query_one(
            "INSERT INTO room_counters (room, last_mid) VALUES ($1, 0)
             ON CONFLICT (room) DO UPDATE SET last_mid = room_counters.last_mid
             RETURNING greatest(last_mid, (SELECT coalesce(max(mid), 0) FROM messages WHERE room = $1))",
            &[room],
        )?;
        *last = row.try_get(0)?;
    }
    let mut private_last: i64 = 0;
    if private_used {
        let row = sql.query_one(
            "UPDATE private_counter SET last_mid = last_mid WHERE only_row
             RETURNING greatest(last_mid, (SELECT coalesce(max(mid), 0) FROM private_messages))",
            &[],
        )?;
        private_last = row.try_get(0)?;
    }
    let mut ids = Vec::new();
    let mut numbered = batch.to_vec();
    for write in &mut numbered {
        match write {
            Write::Message(m) => {
                let counter = counters.get_mut(m.room.as_str()).expect("every room was counted");
                if m.mid == 0 {
                    m.mid = next(*counter, "message id")?;
                }
                *counter = (*counter).max(to_i64(m.mid, "message id")?);
                ids.push(m.mid);
            }
            Write::CountOnly(room) => {
                let counter = counters.get_mut(room.as_str()).expect("every room was counted");
                let mid = next(*counter, "message id")?;
                *counter = mid as i64;
                ids.push(mid);
            }
            Write::Private(m) => {
                if m.mid == 0 {
                    m.mid = next(private_last, "private message id")?;
                }
                private_last = private_last.max(to_i64(m.mid, "private message id")?);
                ids.push(m.mid);
            }
            _ => {}
        }
    }
    for (room, last) in &counters {
        sql.execute("UPDATE room_counters SET last_mid = $2 WHERE room = $1", &[room, last])?;
    }
    if private_used {
        sql.execute("UPDATE private_counter SET last_mid = $1 WHERE only_row", &[&private_last])?;
    }
    Ok((numbered, ids))
}

/// The id after `last`.
fn next(last: i64, what: &str) -> Result<u64, StoreError> {
    last.checked_add(1)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| StoreError::Io(format!("the {what} counter is exhausted (at 2^63-1)")))
}
