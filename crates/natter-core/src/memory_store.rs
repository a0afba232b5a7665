//! A store that keeps everything in process memory: for tests of the core, and the reference
//! behaviour that every real store must match.

use crate::store::{
    AccountRecord, HistoryQuery, LoadedRoom, MailboxSize, PrivateTarget, RoomRecord, Store, StoreError,
    StoredMessage, StoredPrivate, TokenDigest, TokenRecord, Write, account_key, conversation,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Data {
    rooms: BTreeMap<String, RoomRecord>,
    messages: BTreeMap<String, Vec<StoredMessage>>,
    accounts: BTreeMap<String, AccountRecord>,
    /// Every private message, by id.
    private: BTreeMap<u64, StoredPrivate>,
    tokens: Vec<TokenRecord>,
    /// Certificate fingerprint -> (folded account, when added).
    certificates: BTreeMap<String, (String, u64)>,
    /// Highest id each room's counter gave ([`Store::commit_numbered`]), by folded room.
    counters: BTreeMap<String, u64>,
    /// Highest private id the shared sequence gave.
    private_counter: u64,
    /// Claimed nicknames: folded nick -> (node, session).
    claims: BTreeMap<String, (String, u64)>,
    /// Each node's last heartbeat (ms).
    heartbeats: BTreeMap<String, u64>,
}

/// One page of `selected` (oldest first, every one admitted by `query`), and whether more remain.
fn page_of<T: Clone>(selected: Vec<&T>, query: HistoryQuery) -> (Vec<T>, bool) {
    let limit = query.limit as usize;
    let more = selected.len() > limit;
    if query.forwards() {
        (selected.into_iter().take(limit).cloned().collect(), more)
    } else {
        (selected[selected.len().saturating_sub(limit)..].iter().map(|m| (*m).clone()).collect(), more)
    }
}

/// Applies `batch` in order (the ids already given).
fn apply(data: &mut Data, batch: &[Write]) {
    for write in batch {
        match write {
            Write::Room(record) => {
                data.rooms.insert(record.folded.clone(), record.clone());
            }
            Write::Message(m) => data.messages.entry(m.room.clone()).or_default().push(m.clone()),
            Write::ForgetRoom(key) => {
                if data.messages.get(key).is_none_or(Vec::is_empty) {
                    data.rooms.remove(key);
                }
            }
            Write::Private(m) => {
                data.private.insert(m.mid, m.clone());
            }
            Write::Delivered { to_key, upto } => {
                for m in data.private.range_mut(..=upto).map(|(_, m)| m) {
                    if m.to_key == *to_key {
                        m.undelivered = false;
                    }
                }
            }
            Write::CountOnly(_) => {}
        }
    }
}

/// An in-memory [`Store`]; nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn load_each(&self, recent: usize, room: &mut dyn FnMut(LoadedRoom)) -> Result<(), StoreError> {
        let data = self.data();
        for record in data.rooms.values() {
            let msgs = data.messages.get(&record.folded).map(Vec::as_slice).unwrap_or(&[]);
            room(LoadedRoom {
                record: record.clone(),
                last_mid: msgs
                    .last()
                    .map_or(0, |m| m.mid)
                    .max(data.counters.get(&record.folded).copied().unwrap_or(0)),
                recent: msgs[msgs.len().saturating_sub(recent)..].to_vec(),
            });
        }
        Ok(())
    }

    fn commit(&self, batch: &[Write]) -> Result<(), StoreError> {
        apply(&mut self.data(), batch);
        Ok(())
    }

    fn commit_numbered(&self, batch: &[Write]) -> Result<Vec<u64>, StoreError> {
        let mut data = self.data();
        let mut ids = Vec::new();
        let mut numbered = batch.to_vec();
        for write in &mut numbered {
            match write {
                Write::Message(m) => {
                    let counter = data.counters.entry(m.room.clone()).or_default();
                    if m.mid == 0 {
                        m.mid = *counter + 1;
                    }
                    *counter = (*counter).max(m.mid);
                    ids.push(m.mid);
                }
                Write::CountOnly(room) => {
                    let counter = data.counters.entry(room.clone()).or_default();
                    *counter += 1;
                    ids.push(*counter);
                }
                Write::Private(m) => {
                    if m.mid == 0 {
                        m.mid = data.private_counter + 1;
                    }
                    data.private_counter = data.private_counter.max(m.mid);
                    ids.push(m.mid);
                }
                _ => {}
            }
        }
        apply(&mut data, &numbered);
        Ok(ids)
    }

    fn claim_nick(&self, folded: &str, node: &str, session: u64) -> Result<bool, StoreError> {
        let mut data = self.data();
        let holder = data.claims.entry(folded.to_owned()).or_insert_with(|| (node.to_owned(), session));
        Ok(holder.0 == node && holder.1 == session)
    }

    fn release_nick(&self, folded: &str, node: &str, session: u64) -> Result<(), StoreError> {
        let mut data = self.data();
        if data.claims.get(folded).is_some_and(|(n, s)| n == node && *s == session) {
            data.claims.remove(folded);
        }
        Ok(())
    }

    fn heartbeat(&self, node: &str, now: u64) -> Result<(), StoreError> {
        self.data().heartbeats.insert(node.to_owned(), now);
        Ok(())
    }

    fn silent_nodes(&self, seen_before: u64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .data()
            .heartbeats
            .iter()
            .filter(|(_, seen)| **seen < seen_before)
            .map(|(n, _)| n.clone())
            .collect())
    }

    fn forget_node(&self, node: &str) -> Result<(), StoreError> {
        let mut data = self.data();
        data.heartbeats.remove(node);
        data.claims.retain(|_, (n, _)| n != node);
        Ok(())
    }

    fn history(&self, room: &str, query: HistoryQuery) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let data = self.data();
        let msgs = data.messages.get(room).map(Vec::as_slice).unwrap_or(&[]);
        let selected: Vec<&StoredMessage> = msgs.iter().filter(|m| query.admits(m.mid, m.ts)).collect();
        Ok(page_of(selected, query))
    }

    fn last_private_mid(&self) -> Result<u64, StoreError> {
        let data = self.data();
        Ok(data.private.keys().next_back().copied().unwrap_or(0).max(data.private_counter))
    }

    fn mailboxes(&self) -> Result<Vec<MailboxSize>, StoreError> {
        let data = self.data();
        let mut sizes: BTreeMap<&str, MailboxSize> = BTreeMap::new();
        for m in data.private.values().filter(|m| m.undelivered) {
            let size = sizes.entry(&m.to_key).or_insert_with(|| MailboxSize {
                to_key: m.to_key.clone(),
                count: 0,
                bytes: 0,
            });
            size.count += 1;
            size.bytes += m.text.len() as u64;
        }
        Ok(sizes.into_values().collect())
    }

    fn mailbox(&self, to_key: &str, limit: u32) -> Result<Vec<StoredPrivate>, StoreError> {
        let data = self.data();
        let waiting = data.private.values().filter(|m| m.undelivered && m.to_key == to_key);
        Ok(waiting.take(limit as usize).cloned().collect())
    }

    fn private_history(
        &self,
        a: &str,
        b: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<StoredPrivate>, bool), StoreError> {
        let data = self.data();
        let pair = conversation(a, b);
        let selected: Vec<&StoredPrivate> = data
            .private
            .values()
            .filter(|m| conversation(&m.from_key, &m.to_key) == pair && query.admits(m.mid, m.ts))
            .collect();
        Ok(page_of(selected, query))
    }

    fn private_targets(
        &self,
        party: &str,
        after_ts: u64,
        before_ts: u64,
        limit: u32,
    ) -> Result<Vec<PrivateTarget>, StoreError> {
        let data = self.data();
        let mut latest: BTreeMap<&str, PrivateTarget> = BTreeMap::new();
        let in_range = |m: &&StoredPrivate| m.ts > after_ts && m.ts < before_ts;
        for m in data.private.values().filter(in_range) {
            let (other, nick) = if m.from_key == party {
                (&m.to_key, &m.to_nick)
            } else if m.to_key == party {
                (&m.from_key, &m.nick)
            } else {
                continue;
            };
            latest.insert(other, PrivateTarget { other_key: other.clone(), nick: nick.clone(), ts: m.ts });
        }
        let mut targets: Vec<PrivateTarget> = latest.into_values().collect();
        targets.sort_by(|a, b| (a.ts, &a.other_key).cmp(&(b.ts, &b.other_key)));
        targets.truncate(limit as usize);
        Ok(targets)
    }

    fn prune(&self, before_ts: u64, max_rows: u32) -> Result<u32, StoreError> {
        let mut data = self.data();
        let mut left = max_rows as usize;
        for msgs in data.messages.values_mut() {
            let old = msgs.iter().take(left).take_while(|m| m.ts < before_ts).count();
            msgs.drain(..old);
            left -= old;
        }
        let old: Vec<u64> =
            data.private.values().take(left).take_while(|m| m.ts < before_ts).map(|m| m.mid).collect();
        for mid in &old {
            data.private.remove(mid);
        }
        left -= old.len();
        Ok(max_rows - left as u32)
    }

    fn account(&self, folded: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.data().accounts.get(folded).cloned())
    }

    fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        Ok(self.data().accounts.values().cloned().collect())
    }

    fn create_account(&self, account: &AccountRecord) -> Result<bool, StoreError> {
        let mut data = self.data();
        if data.accounts.contains_key(&account.folded) {
            return Ok(false);
        }
        data.accounts.insert(account.folded.clone(), account.clone());
        Ok(true)
    }

    fn set_account_hash(&self, folded: &str, hash: &str, scram: Option<&str>) -> Result<bool, StoreError> {
        let mut data = self.data();
        let Some(account) = data.accounts.get_mut(folded) else { return Ok(false) };
        account.hash = hash.to_string();
        account.scram = scram.map(str::to_string);
        Ok(true)
    }

    fn set_account_scram(&self, folded: &str, scram: &str) -> Result<bool, StoreError> {
        Ok(self.data().accounts.get_mut(folded).map(|a| a.scram = Some(scram.to_string())).is_some())
    }

    fn account_by_certificate(&self, fingerprint: &str) -> Result<Option<AccountRecord>, StoreError> {
        let data = self.data();
        Ok(data.certificates.get(fingerprint).and_then(|(folded, _)| data.accounts.get(folded)).cloned())
    }

    fn add_certificate(&self, folded: &str, fingerprint: &str, ts: u64) -> Result<bool, StoreError> {
        let mut data = self.data();
        if !data.accounts.contains_key(folded) || data.certificates.contains_key(fingerprint) {
            return Ok(false);
        }
        data.certificates.insert(fingerprint.to_string(), (folded.to_string(), ts));
        Ok(true)
    }

    fn remove_certificate(&self, folded: &str, fingerprint: &str) -> Result<bool, StoreError> {
        let mut data = self.data();
        if data.certificates.get(fingerprint).is_some_and(|(f, _)| f == folded) {
            data.certificates.remove(fingerprint);
            return Ok(true);
        }
        Ok(false)
    }

    fn certificates(&self, folded: &str) -> Result<Vec<String>, StoreError> {
        let data = self.data();
        let mut mine: Vec<(&String, u64)> = data
            .certificates
            .iter()
            .filter(|(_, (f, _))| f == folded)
            .map(|(fp, (_, ts))| (fp, *ts))
            .collect();
        mine.sort_by_key(|&(fp, ts)| (ts, fp.clone()));
        Ok(mine.into_iter().map(|(fp, _)| fp.clone()).collect())
    }

    fn touch_account(&self, folded: &str, ts: u64) -> Result<(), StoreError> {
        if let Some(a) = self.data().accounts.get_mut(folded) {
            a.last_login_ts = Some(ts);
        }
        Ok(())
    }

    fn delete_account(&self, folded: &str) -> Result<bool, StoreError> {
        let mut data = self.data();
        let key = account_key(folded);
        data.private.retain(|_, m| m.from_key != key && m.to_key != key);
        data.tokens.retain(|t| t.folded != folded);
        data.certificates.retain(|_, (f, _)| f != folded);
        Ok(data.accounts.remove(folded).is_some())
    }

    fn add_resume_token(
        &self,
        token: &TokenRecord,
        keep: usize,
        expired_before: u64,
    ) -> Result<(), StoreError> {
        let mut data = self.data();
        data.tokens.retain(|t| t.last_used_ts >= expired_before);
        data.tokens.push(token.clone());
        let mut mine: Vec<(u64, TokenDigest)> = data
            .tokens
            .iter()
            .filter(|t| t.folded == token.folded)
            .map(|t| (t.last_used_ts, t.digest))
            .collect();
        if mine.len() > keep {
            // Newest first (a tie keeps the one just added); drop what is past `keep`.
            mine.sort_by_key(|&(used, d)| std::cmp::Reverse((used, d == token.digest)));
            let dropped: Vec<TokenDigest> = mine[keep..].iter().map(|&(_, d)| d).collect();
            data.tokens.retain(|t| !dropped.contains(&t.digest));
        }
        Ok(())
    }

    fn use_resume_token(
        &self,
        digest: &TokenDigest,
        now: u64,
        expired_before: u64,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let mut data = self.data();
        let Some(i) = data.tokens.iter().position(|t| t.digest == *digest) else { return Ok(None) };
        if data.tokens[i].last_used_ts < expired_before {
            data.tokens.remove(i);
            return Ok(None);
        }
        data.tokens[i].last_used_ts = now;
        let folded = data.tokens[i].folded.clone();
        Ok(data.accounts.get(&folded).cloned())
    }

    fn revoke_resume_token(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        let mut data = self.data();
        let before = data.tokens.len();
        data.tokens.retain(|t| t.digest != *digest);
        Ok(data.tokens.len() != before)
    }

    fn revoke_resume_tokens(&self, folded: &str) -> Result<usize, StoreError> {
        let mut data = self.data();
        let before = data.tokens.len();
        data.tokens.retain(|t| t.folded != folded);
        Ok(before - data.tokens.len())
    }
}
