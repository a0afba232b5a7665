//! Parked connections. A logged-in connection that has had nothing to read or write for a
//! while ([`Park::after`]) gives up its task and its registration in tokio's reactor, and
//! waits here as what it must remember: its bare socket, its door and its session context,
//! one entry in a table watched by one epoll set of the park's own and rung by its outbox
//! ([`natter_core::Bell`]). The peer's first byte (or hang-up), the first delivery, the close
//! of the session, or its door's keepalive tick gives it a task again.
//!
//! Most chat connections are idle most of the time; a task, its future and its reactor
//! registration are what an idle connection cost beyond what it must remember (about 1.5 KiB
//! of 2.5; docs/benchmarks.md, "Where an idle connection's bytes go"). A connection that is
//! busy never parks: parking and waking again cost four `epoll_ctl` calls and a task spawn.

use crate::transport::ParkedSocket;
use natter_core::{Bell, Outbox};
use std::collections::BTreeSet;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

/// A connection waiting in the park: what it needs to run again.
pub(crate) trait Parked: Send {
    /// Its socket, which the park watches for input.
    fn socket(&self) -> &ParkedSocket;

    /// Its outbox, parked with the park's bell while it waits.
    fn outbox(&self) -> &Outbox;

    /// When its door's keepalive tick is due, when it has one.
    fn tick_due(&self) -> Option<Instant>;

    /// Runs its door's keepalive tick in the park (what the tick sends rings the outbox, and
    /// the connection goes back to work); `Err` with the reason when the session must end.
    fn tick(&mut self, now: Instant) -> Result<(), String>;

    /// Gives it a task again; with `close`, the task first ends the session for that reason.
    fn resume(self: Box<Self>, close: Option<String>);
}

/// Where idle connections go; one per server, cloned into what needs it.
#[derive(Clone, Debug)]
pub(crate) struct Park {
    tx: mpsc::UnboundedSender<ParkMsg>,
    after: Duration,
}

/// What the park task is told, on an unbounded channel that is bounded all the same: at most
/// one `Keep` per connection is on its way, and one `Ring` per parked connection (a bell
/// rings once per parking).
enum ParkMsg {
    /// A connection to keep.
    Keep(Box<dyn Parked>),
    /// The outbox parked with this token has something (or was closed).
    Ring(u64),
}

impl std::fmt::Debug for ParkMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keep(_) => f.write_str("Keep"),
            Self::Ring(token) => write!(f, "Ring({token})"),
        }
    }
}

/// The bell every parked outbox rings: a message to the park task.
struct ParkBell(mpsc::UnboundedSender<ParkMsg>);

impl Bell for ParkBell {
    fn ring(&self, token: u64) {
        // Gone only once the park stopped, which resumed every connection first.
        let _ = self.0.send(ParkMsg::Ring(token));
    }
}

impl Park {
    /// Starts the park's task on the current runtime: connections idle for `after` are parked
    /// until `stop` turns true, when every parked connection is given its task back.
    pub fn start(after: Duration, stop: watch::Receiver<bool>) -> io::Result<Self> {
        // SAFETY: the `mio::Poll` owns its epoll descriptor until it is dropped, which is when
        // the `AsyncFd` is, and `as_raw_fd` always answers that one descriptor.
        let poll =
            unsafe { AsyncFd::register_with_interest(mio::Poll::new()?, tokio::io::Interest::READABLE) }
                .map_err(|refused| refused.into_parts().1)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let bell: Arc<dyn Bell> = Arc::new(ParkBell(tx.clone()));
        tokio::spawn(run(poll, rx, bell, stop));
        Ok(Self { tx, after })
    }

    /// How long a connection must have had nothing to do before it parks.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// Keeps `conn` until it has something to do; when the park has stopped, it is given its
    /// task back at once.
    pub fn keep(&self, conn: Box<dyn Parked>) {
        if let Err(mpsc::error::SendError(ParkMsg::Keep(conn))) = self.tx.send(ParkMsg::Keep(conn)) {
            conn.resume(None);
        }
    }
}

/// The park's task: keeps connections until their socket, their outbox or their tick calls.
async fn run(
    mut poll: AsyncFd<mio::Poll>,
    mut rx: mpsc::UnboundedReceiver<ParkMsg>,
    bell: Arc<dyn Bell>,
    mut stop: watch::Receiver<bool>,
) {
    let mut table = Table::default();
    let mut events = mio::Events::with_capacity(256);
    let far = || Instant::now() + Duration::from_secs(86_400);
    let timer = sleep_until(far());
    tokio::pin!(timer);
    loop {
        let next_tick = table.ticks.first().map(|&(due, _)| due);
        if let Some(due) = next_tick
            && timer.deadline() != due
        {
            timer.as_mut().reset(due);
        }
        tokio::select! {
            changed = stop.wait_for(|stopped| *stopped) => {
                let _ = changed;
                break;
            }
            msg = rx.recv() => match msg {
                Some(ParkMsg::Keep(conn)) => table.keep(conn, poll.get_ref(), &bell),
                Some(ParkMsg::Ring(token)) => table.resume(token, poll.get_ref(), None),
                None => break,
            },
            ready = poll.readable_mut() => {
                let Ok(mut ready) = ready else { break };
                let poll = ready.get_inner_mut();
                if poll.poll(&mut events, Some(Duration::ZERO)).is_err() || events.is_empty() {
                    ready.clear_ready();
                    continue;
                }
                let woken: Vec<u64> = events.iter().map(|event| event.token().0 as u64).collect();
                for token in woken {
                    table.resume(token, ready.get_inner(), None);
                }
            }
            () = &mut timer, if next_tick.is_some() => table.run_ticks(poll.get_ref()),
        }
    }
    // Connections on their way in are given their task back too: from now on `keep` does
    // that itself.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if let ParkMsg::Keep(conn) = msg {
            conn.resume(None);
        }
    }
    table.resume_all(poll.get_ref());
}

/// The parked connections, by slot; a token is a slot and its generation, so that a late
/// ring or event for a connection that already left never wakes the next one in its slot.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Keepalive ticks due, by time.
    ticks: BTreeSet<(Instant, u64)>,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    conn: Option<Box<dyn Parked>>,
}

impl Table {
    fn keep(&mut self, conn: Box<dyn Parked>, poll: &mio::Poll, bell: &Arc<dyn Bell>) {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.slots[index as usize].generation.wrapping_add(1);
        self.slots[index as usize].generation = generation;
        let token = u64::from(generation) << 32 | u64::from(index);
        // Refused when a delivery came while the connection was on its way here: it has work.
        if !conn.outbox().park(bell.clone(), token) {
            self.free.push(index);
            conn.resume(None);
            return;
        }
        let fd = conn.socket().as_raw_fd();
        let registered = poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(token as usize),
            mio::Interest::READABLE,
        );
        if registered.is_err() {
            conn.outbox().unpark();
            self.free.push(index);
            conn.resume(None);
            return;
        }
        if let Some(due) = conn.tick_due() {
            self.ticks.insert((due, token));
        }
        self.slots[index as usize].conn = Some(conn);
    }

    /// Takes the connection of `token` out of the park, when it is still there.
    fn take(&mut self, token: u64, poll: &mio::Poll) -> Option<Box<dyn Parked>> {
        let index = (token & u64::from(u32::MAX)) as usize;
        let slot = self.slots.get_mut(index)?;
        if u64::from(slot.generation) != token >> 32 {
            return None;
        }
        let conn = slot.conn.take()?;
        self.free.push(index as u32);
        conn.outbox().unpark();
        let fd = conn.socket().as_raw_fd();
        let _ = poll.registry().deregister(&mut mio::unix::SourceFd(&fd));
        if let Some(due) = conn.tick_due() {
            self.ticks.remove(&(due, token));
        }
        Some(conn)
    }

    fn resume(&mut self, token: u64, poll: &mio::Poll, close: Option<String>) {
        if let Some(conn) = self.take(token, poll) {
            conn.resume(close);
        }
    }

    /// Runs the ticks that are due, each in its connection's place.
    fn run_ticks(&mut self, poll: &mio::Poll) {
        let now = Instant::now();
        while let Some(&(due, token)) = self.ticks.first()
            && due <= now
        {
            self.ticks.remove(&(due, token));
            let index = (token & u64::from(u32::MAX)) as usize;
            let Some(conn) = self.slots.get_mut(index).and_then(|slot| slot.conn.as_mut()) else { continue };
            match conn.tick(now) {
                Ok(()) => {
                    if let Some(next) = conn.tick_due() {
                        self.ticks.insert((next, token));
                    }
                }
                Err(reason) => {
                    if let Some(conn) = self.take(token, poll) {
                        conn.resume(Some(reason));
                    }
                }
            }
        }
    }

    /// The park is stopping: every connection gets its task back (the hub's shutdown then
    /// says goodbye through it).
    fn resume_all(&mut self, poll: &mio::Poll) {
        for index in 0..self.slots.len() {
            let token = u64::from(self.slots[index].generation) << 32 | index as u64;
            self.resume(token, poll, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc as std_mpsc;

    /// What happened to a fake connection, in order.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Tick(&'static str),
        Resumed(&'static str, Option<String>),
    }

    /// A parked connection that tells the test what the park did with it.
    struct Fake {
        name: &'static str,
        socket: ParkedSocket,
        outbox: Outbox,
        tick_due: Option<Instant>,
        /// Ticks it takes before its session must end.
        ticks_left: u32,
        seen: std_mpsc::Sender<Seen>,
    }

    impl Parked for Fake {
        fn socket(&self) -> &ParkedSocket {
            &self.socket
        }
        fn outbox(&self) -> &Outbox {
            &self.outbox
        }
        fn tick_due(&self) -> Option<Instant> {
            self.tick_due
        }
        fn tick(&mut self, now: Instant) -> Result<(), String> {
            self.seen.send(Seen::Tick(self.name)).unwrap();
            if self.ticks_left == 0 {
                return Err("Ping timeout".into());
            }
            self.ticks_left -= 1;
            self.tick_due = Some(now + Duration::from_millis(20));
            Ok(())
        }
        fn resume(self: Box<Self>, close: Option<String>) {
            self.seen.send(Seen::Resumed(self.name, close)).unwrap();
        }
    }

    /// A fake named `name` and the peer end of its socket.
    fn fake(name: &'static str, seen: &std_mpsc::Sender<Seen>) -> (Box<Fake>, UnixStream, Outbox) {
        let (ours, peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let outbox = Outbox::new(8);
        let conn = Fake {
            name,
            socket: ParkedSocket::Unix(ours),
            outbox: outbox.clone(),
            tick_due: None,
            ticks_left: 0,
            seen: seen.clone(),
        };
        (Box::new(conn), peer, outbox)
    }

    /// The next thing seen, waiting for the park's task (a blocking wait on the test's own
    /// channel, off the runtime's thread).
    async fn next(seen: &std_mpsc::Receiver<Seen>) -> Seen {
        tokio::task::block_in_place(|| seen.recv_timeout(Duration::from_secs(10))).expect("the park acted")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_input_and_a_hang_up_each_give_a_connection_back() {
        let (stop_tx, stop) = watch::channel(false);
        let park = Park::start(Duration::from_secs(1), stop).unwrap();
        let (seen_tx, seen) = std_mpsc::channel();
        let (ann, _ann_peer, ann_outbox) = fake("ann", &seen_tx);
        let (bob, mut bob_peer, _) = fake("bob", &seen_tx);
        let (cat, cat_peer, _) = fake("cat", &seen_tx);
        park.keep(ann);
        park.keep(bob);
        park.keep(cat);
        // A park that has the three parked has installed ann's bell: a delivery rings it.
        tokio::task::block_in_place(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !ann_outbox.is_parked() {
                assert!(std::time::Instant::now() < deadline, "ann never parked");
                std::thread::yield_now();
            }
        });
        ann_outbox.send(natter_core::Event::Notice { req: None, room: None, text: "hi".into() }).unwrap();
        assert_eq!(next(&seen).await, Seen::Resumed("ann", None));
        bob_peer.write_all(b"PING x\r\n").unwrap();
        assert_eq!(next(&seen).await, Seen::Resumed("bob", None));
        drop(cat_peer);
        assert_eq!(next(&seen).await, Seen::Resumed("cat", None));
        stop_tx.send(true).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ticks_run_in_the_park_until_one_ends_the_session() {
        let (_stop_tx, stop) = watch::channel(false);
        let park = Park::start(Duration::from_secs(1), stop).unwrap();
        let (seen_tx, seen) = std_mpsc::channel();
        let (mut dan, _dan_peer, _) = fake("dan", &seen_tx);
        dan.tick_due = Some(Instant::now());
        dan.ticks_left = 2;
        park.keep(dan);
        assert_eq!(next(&seen).await, Seen::Tick("dan"));
        assert_eq!(next(&seen).await, Seen::Tick("dan"));
        assert_eq!(next(&seen).await, Seen::Tick("dan"));
        assert_eq!(next(&seen).await, Seen::Resumed("dan", Some("Ping timeout".into())));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopping_park_gives_every_connection_back_and_a_busy_one_is_never_kept() {
        let (stop_tx, stop) = watch::channel(false);
        let park = Park::start(Duration::from_secs(1), stop).unwrap();
        let (seen_tx, seen) = std_mpsc::channel();
        let (busy, _busy_peer, busy_outbox) = fake("busy", &seen_tx);
        busy_outbox
            .send(natter_core::Event::Notice { req: None, room: None, text: "queued".into() })
            .unwrap();
        park.keep(busy);
        assert_eq!(next(&seen).await, Seen::Resumed("busy", None));
        let (eve, _eve_peer, _) = fake("eve", &seen_tx);
        let (fay, _fay_peer, _) = fake("fay", &seen_tx);
        park.keep(eve);
        park.keep(fay);
        stop_tx.send(true).unwrap();
        let mut back = [next(&seen).await, next(&seen).await];
        back.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(back, [Seen::Resumed("eve", None), Seen::Resumed("fay", None)]);
        // Once stopped, a connection that asks to park is given its task back at once.
        let (late, _late_peer, _) = fake("late", &seen_tx);
        tokio::task::block_in_place(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !park.tx.is_closed() {
                assert!(std::time::Instant::now() < deadline, "the park never stopped");
                std::thread::yield_now();
            }
        });
        park.keep(late);
        assert_eq!(next(&seen).await, Seen::Resumed("late", None));
    }
}
