//! Which nodes are there: a node says `Hello` when it starts (and when it finds it lost sight of
//! another's sessions); every node answers with its sessions. A node whose heartbeat in the
//! store stops is gone: its users quit everywhere (`claims.rs` finds it).

use super::Hub;
use crate::cluster::ClusterEvent;
use crate::vocab::Name;

/// The least time between two `Hello`s of one node asking to see the others again.
const RESYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl Hub {
    /// Tells the other nodes this one is (back) here: they forget what they knew of it, learn
    /// its sessions again, and tell theirs.
    pub(super) fn say_hello(&mut self) {
        let Some(cluster) = &mut self.cluster else { return };
        let now = tokio::time::Instant::now();
        if cluster.last_hello.is_some_and(|at| now.duration_since(at) < RESYNC_EVERY) {
            return;
        }
        cluster.last_hello = Some(now);
        cluster.publish(ClusterEvent::Hello);
        self.tell_own_sessions();
    }

    /// The server is stopping: the other nodes are told its sessions quit, and the store
    /// forgets its nicknames and its heartbeat.
    pub(super) async fn leave_cluster(&mut self, reason: &str) {
        let Some(cluster) = &self.cluster else { return };
        cluster.publish(ClusterEvent::Goodbye { reason: reason.into() });
        let (store, node) = (self.store.clone(), cluster.options().node.clone());
        let forgotten = tokio::task::spawn_blocking(move || store.forget_node(&node)).await;
        if let Ok(Err(e)) = forgotten {
            tracing::warn!(error = %e, "cannot take this node out of the store; the others will find it silent");
        }
    }

    /// The store says which nodes are alive: the users of every other node this one knows quit
    /// ("their server went away").
    pub(super) fn on_live_nodes(&mut self, live: &[String]) {
        let Some(cluster) = &mut self.cluster else { return };
        let mut gone: Vec<Name> =
            cluster.known.iter().filter(|n| !live.iter().any(|l| l.as_str() == &***n)).cloned().collect();
        gone.extend(cluster.mirrors.nodes().filter(|n| !live.iter().any(|l| l.as_str() == &**n)));
        gone.sort();
        gone.dedup();
        for node in gone {
            tracing::warn!(node = %node, "a node of the cluster went silent: its users quit");
            self.forget_mirrors_of(&node, "their server went away");
            if let Some(cluster) = &mut self.cluster {
                cluster.known.remove(&node);
            }
        }
    }

    /// Node `node` said hello: what was known of it is forgotten (it started again, or
    /// resynchronises), and it is told this node's sessions.
    pub(super) fn on_hello(&mut self, node: Name) {
        self.forget_mirrors_of(&node, "their server restarted");
        let Some(cluster) = &mut self.cluster else { return };
        cluster.known.insert(node);
        cluster.publish(ClusterEvent::Welcome);
        self.tell_own_sessions();
    }
}
