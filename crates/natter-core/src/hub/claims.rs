//! Nicknames across a cluster: each node holds its sessions' nicknames in the shared store,
//! which decides a race between two nodes: the session whose claim loses is renamed to a guest
//! name, and the others show the winner.
//!
//! The store is asked from one thread per node, in the order the hub asks, so that a nickname
//! given up and taken again on one node is released before it is claimed. The same thread
//! keeps the node's heartbeat in the store, and finds the nodes that stopped theirs.

use super::{Hub, SessionId};
use crate::event::Event;
use crate::store::Store;
use crate::vocab::Name;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

/// What the claims thread tells the hub.
pub(crate) enum News {
    /// The store's answer to a claim of a nickname.
    Claimed(Claimed),
    /// The nodes alive now: the others are gone.
    Live(Vec<String>),
}

/// Where the claims thread tells the hub its news.
pub(crate) type Tell = Box<dyn Fn(News) + Send>;

/// The store's answer to a claim.
pub(crate) struct Claimed {
    session: SessionId,
    folded: Name,
    /// Whether the session holds the nickname; an error keeps it (the store is away, and a
    /// nickname is not taken from its user for that).
    result: Result<bool, String>,
}

/// What the claims thread does, in order.
enum Job {
    Claim { session: SessionId, folded: Name },
    Release { session: SessionId, folded: Name },
    Heartbeat { silence: std::time::Duration },
}

/// The hub's handle on its claims thread.
pub(crate) struct Claims {
    tx: std_mpsc::Sender<Job>,
}

impl Claims {
    /// Starts the thread for node `node`; what it finds goes to `tell`.
    pub fn start(store: Arc<dyn Store>, node: String, tell: Tell) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new().name("natter-claims".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                match job {
                    Job::Claim { session, folded } => {
                        let result =
                            store.claim_nick(&folded, &node, session.0).map_err(|e| e.to_string());
                        tell(News::Claimed(Claimed { session, folded, result }));
                    }
                    Job::Release { session, folded } => {
                        if let Err(e) = store.release_nick(&folded, &node, session.0) {
                            tracing::warn!(nick = %folded, error = %e, "cannot release a nickname in the store");
                        }
                    }
                    Job::Heartbeat { silence } => {
                        if let Some(live) = heartbeat(&*store, &node, silence) {
                            tell(News::Live(live));
                        }
                    }
                }
            }
        })?;
        Ok(Self { tx })
    }

    fn send(&self, job: Job) {
        // The thread ends only with the hub.
        let _ = self.tx.send(job);
    }
}

/// Notes this node alive, takes over the nodes silent for longer than `silence` (their
/// claims are dropped), and returns the nodes alive now. Every node compares that list with the
/// nodes it knows: a node found silent by another node first has no heartbeat left to be found
/// silent by, but is missing from the living all the same.
fn heartbeat(store: &dyn Store, node: &str, silence: std::time::Duration) -> Option<Vec<String>> {
    let now = crate::time::now_ms();
    let result = (|| {
        store.heartbeat(node, now)?;
        let before = now.saturating_sub(u64::try_from(silence.as_millis()).unwrap_or(u64::MAX));
        let silent = store.silent_nodes(before)?;
        for gone in silent.iter().filter(|n| *n != node) {
            store.forget_node(gone)?;
        }
        // Every node with a heartbeat: none is older than the end of time.
        let all = store.silent_nodes(u64::MAX)?;
        Ok::<_, crate::store::StoreError>(all.into_iter().filter(|n| !silent.contains(n)).collect())
    })();
    match result {
        Ok(live) => Some(live),
        Err(e) => {
            // Nobody is taken for gone while the store cannot say.
            tracing::warn!(error = %e, "cannot keep the nodes' heartbeats in the store");
            None
        }
    }
}

/// How often an owner's claim of its nickname is tried while another node's guest lets go of
/// it, and how long apart.
const RECLAIM_TRIES: u8 = 20;
const RECLAIM_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Hub {
    /// When the owner of `folded` is taking it back from another node's guest: its lost claim
    /// is tried again shortly (true), up to [`RECLAIM_TRIES`] times.
    fn retry_reclaim(&mut self, session: SessionId, folded: &Name) -> bool {
        let Some(cluster) = &mut self.cluster else { return false };
        let Some(tries) = cluster.reclaiming.get_mut(folded) else { return false };
        *tries += 1;
        if *tries > RECLAIM_TRIES {
            cluster.reclaiming.remove(folded);
            return false;
        }
        self.claim_again_after(session, RECLAIM_EVERY);
        true
    }

    /// Claims session `id`'s nickname in the store, when in a cluster and `id` is this node's.
    pub(super) fn claim_nick(&self, id: SessionId) {
        let (Some(cluster), Some(s)) = (&self.cluster, self.sessions.get(&id)) else { return };
        if s.mirror {
            return;
        }
        cluster.claims.send(Job::Claim { session: id, folded: s.folded.clone() });
    }

    /// Gives up session `id`'s claim of `folded` in the store.
    pub(super) fn release_nick(&self, id: SessionId, folded: &Name, mirror: bool) {
        let Some(cluster) = &self.cluster else { return };
        if !mirror {
            cluster.claims.send(Job::Release { session: id, folded: folded.clone() });
        }
    }

    /// Notes this node alive in the store, and looks for nodes gone silent.
    pub(super) fn heartbeat(&self) {
        let Some(cluster) = &self.cluster else { return };
        cluster.claims.send(Job::Heartbeat { silence: cluster.options().silence });
    }

    /// The store answered a claim: a session that lost its nickname to another node's is
    /// renamed.
    pub(super) fn on_claimed(&mut self, claimed: Claimed) {
        let Claimed { session, folded, result } = claimed;
        let Some(s) = self.sessions.get(&session) else { return };
        if s.folded != folded {
            return;
        }
        let nick = s.nick.clone();
        match result {
            Ok(true) => {
                if let Some(cluster) = &mut self.cluster {
                    cluster.reclaiming.remove(&folded);
                }
            }
            Ok(false) if self.retry_reclaim(session, &folded) => {}
            Ok(false) => {
                let guest = self.free_guest_name(session);
                tracing::info!(nick = %nick, guest = %guest, "renamed: the nickname is held on another node");
                let text = format!(
                    "the nickname {nick} is in use on another node of this server: you are now {guest}"
                );
                self.reply(session, Event::Notice { req: None, room: None, text: text.into() });
                self.change_nick(session, &guest, None);
            }
            Err(e) => {
                tracing::warn!(nick = %folded, error = %e, "cannot claim a nickname in the store; kept")
            }
        }
    }
}
