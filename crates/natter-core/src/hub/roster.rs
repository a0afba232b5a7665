//! Rosters: nicknames in order, for each room and for the whole server, so that a page of
//! `who` (and the list a joiner gets) costs the page and a walk of O(log n) to its start,
//! never a sort of everyone per request.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::vocab::Name;

/// Case-folded nicknames in order, each with its session (`Id`: the hub's session id). Kept
/// up to date as sessions join, leave and rename (O(log n) each); folded nicks are unique on
/// the server, so one key names one session. The keys are the sessions' own folded nicks,
/// shared: a roster entry costs no allocation of its own.
pub(crate) struct Roster<Id> {
    by_nick: BTreeMap<Name, Id>,
}

impl<Id> Default for Roster<Id> {
    fn default() -> Self {
        Self { by_nick: BTreeMap::new() }
    }
}

/// One page of a roster: the sessions in nickname order, and whether more follow.
pub(crate) struct RosterPage<Id> {
    /// The sessions of the page, in nickname order.
    pub ids: Vec<Id>,
    /// True when the roster goes on after the page.
    pub more: bool,
}

impl<Id: Copy + PartialEq> Roster<Id> {
    /// Adds a session under its folded nick.
    pub fn insert(&mut self, folded: &Name, id: Id) {
        self.by_nick.insert(folded.clone(), id);
    }

    /// Removes a session listed under `folded` (nothing when that nick is someone else's).
    pub fn remove(&mut self, folded: &str, id: Id) {
        if self.by_nick.get(folded) == Some(&id) {
            self.by_nick.remove(folded);
        }
    }

    /// Moves a session from its old folded nick to its new one, when it is listed.
    pub fn rename(&mut self, old: &str, new: &Name, id: Id) {
        if self.by_nick.get(old) == Some(&id) {
            self.by_nick.remove(old);
            self.insert(new, id);
        }
    }

    /// The session listed under `folded`, if any.
    pub fn get(&self, folded: &str) -> Option<&Id> {
        self.by_nick.get(folded)
    }

    /// True when a session is listed under `folded`.
    pub fn contains_key(&self, folded: &str) -> bool {
        self.by_nick.contains_key(folded)
    }

    /// How many sessions are listed.
    pub fn len(&self) -> usize {
        self.by_nick.len()
    }

    /// Empties the roster.
    pub fn clear(&mut self) {
        self.by_nick.clear();
    }

    /// At most `limit` sessions whose folded nick comes after `after` (from the start without
    /// it). `after` need not be listed: a page can go on from a nick that has since left.
    pub fn page(&self, after: Option<&str>, limit: usize) -> RosterPage<Id> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut walk = self.walk(start).map(|(_, id)| id);
        let ids: Vec<Id> = walk.by_ref().take(limit).collect();
        let more = walk.next().is_some();
        RosterPage { ids, more }
    }

    /// Every listed session from `start` on, in order, with its folded nick.
    pub fn walk<'a>(&'a self, start: Bound<&'a str>) -> impl Iterator<Item = (&'a str, Id)> + 'a {
        self.by_nick.range::<str, _>((start, Bound::Unbounded)).map(|(nick, &id)| (&**nick, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster(nicks: &[&str]) -> Roster<u64> {
        let mut r = Roster::default();
        for (i, n) in nicks.iter().enumerate() {
            r.insert(&Name::from(*n), i as u64);
        }
        r
    }

    fn nicks(r: &Roster<u64>, page: &RosterPage<u64>) -> Vec<String> {
        let all: Vec<(String, u64)> = r.walk(Bound::Unbounded).map(|(n, id)| (n.to_string(), id)).collect();
        page.ids.iter().map(|id| all.iter().find(|(_, i)| i == id).expect("listed").0.clone()).collect()
    }

    #[test]
    fn pages_go_in_order_from_after_and_say_when_more_follow() {
        let r = roster(&["dan", "ann", "cat", "bob"]);
        let first = r.page(None, 2);
        assert_eq!(nicks(&r, &first), ["ann", "bob"]);
        assert!(first.more);
        let second = r.page(Some("bob"), 2);
        assert_eq!(nicks(&r, &second), ["cat", "dan"]);
        assert!(!second.more, "nothing after dan");
        // A nick that left (or never was) still marks a place.
        assert_eq!(nicks(&r, &r.page(Some("bz"), 10)), ["cat", "dan"]);
        assert!(r.page(Some("zzz"), 10).ids.is_empty());
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn renames_move_and_removals_only_take_the_owner() {
        let mut r = roster(&["ann", "bob"]);
        r.rename("ann", &"zed".into(), 0);
        assert_eq!(nicks(&r, &r.page(None, 10)), ["bob", "zed"]);
        r.rename("bob", &"amy".into(), 7);
        assert_eq!(nicks(&r, &r.page(None, 10)), ["bob", "zed"], "not bob's session: nothing moves");
        r.remove("zed", 1);
        assert_eq!(r.len(), 2, "zed is session 0's");
        r.remove("zed", 0);
        assert_eq!(nicks(&r, &r.page(None, 10)), ["bob"]);
        r.clear();
        assert_eq!(r.len(), 0);
    }
}
