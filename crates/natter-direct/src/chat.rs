//! The chat engine and its two seams: the user interface and the network link.
//!
//! Both seams are pairs of channels, so the line interface of [`crate::ui`] and the
//! full-screen interface of [`crate::tui`] are interchangeable without touching the
//! transports, and every transport (encrypted TCP, reliable UDP, plain) looks the same to the
//! engine.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::DirectError;
use crate::frame::AppMsg;

/// Something the user did; produced by a user interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// A line of text to send to the peer.
    Line(String),
    /// Leave the chat (`/quit`, Ctrl+C, end of input).
    Quit,
}

/// Something to show the user; consumed by a user interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Display {
    /// A chat message from the peer.
    Message {
        /// Who sent it.
        from: String,
        /// The text, not yet sanitised for the terminal.
        text: String,
    },
    /// A status line (connection state, notices, warnings).
    Status(String),
    /// The channel is up: typed lines now reach the other side. Structured (not just a
    /// status line) so the full-screen interface can show the verification words in its
    /// title bar for the whole chat.
    Connected {
        /// The verification words of an encrypted channel; `None` with `--plain`.
        sas: Option<String>,
    },
    /// The other side said goodbye or closed the connection; structured so an interface can
    /// mark the chat as over.
    PeerLeft,
    /// The session failed; the text says why. The line interface never gets this (the error
    /// is printed at exit); the full-screen one shows it, as its screen hides that output.
    Error(String),
}

/// The words shown once the channel is secure (line and full-screen interfaces alike).
pub fn established_text(sas: &str) -> String {
    format!("secure channel established, verify: {sas}")
}

/// The notice shown when the other side leaves.
pub const PEER_LEFT_TEXT: &str = "the other side left the chat";

/// The user-interface seam: what any interface (line, TUI) provides to the engine.
pub struct Ui {
    /// Events typed by the user, in order.
    pub input: mpsc::Receiver<UserEvent>,
    /// Lines to show.
    pub output: mpsc::Sender<Display>,
    /// True when a person is at the keyboard: then the chat ends as soon as the peer leaves.
    /// Scripted input keeps going until its own end, so nothing it sends is lost.
    pub interactive: bool,
}

impl Ui {
    /// Shows a status line; a closed interface is not an error worth stopping for.
    pub async fn status(&self, text: impl Into<String>) {
        let _ = self.output.send(Display::Status(text.into())).await;
    }
}

/// Something that happened on the network link.
#[derive(Debug)]
pub enum NetEvent {
    /// A chat message arrived.
    Text(String),
    /// The peer said goodbye (or closed a plain connection); it will send nothing more.
    PeerLeft,
    /// A notice for the user (e.g. a rejected forged datagram).
    Status(String),
    /// The link is finished; `Err` says why it broke.
    Closed(Result<(), DirectError>),
}

/// The network seam: a running transport task seen as two channels.
pub struct Link {
    /// Messages to send, in order; [`AppMsg::Bye`] is the last one.
    pub tx: mpsc::Sender<AppMsg>,
    /// What happened on the network.
    pub rx: mpsc::Receiver<NetEvent>,
    /// How long to wait for the peer's goodbye after ours.
    pub linger: Duration,
}

/// The name shown in front of the peer's messages.
pub const PEER_NAME: &str = "peer";

/// Runs the chat until both sides are done, the link breaks, or the linger time runs out.
pub async fn converse(ui: &mut Ui, mut link: Link) -> Result<(), DirectError> {
    let mut quit_deadline: Option<Instant> = None;
    loop {
        let linger = async {
            match quit_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = ui.input.recv(), if quit_deadline.is_none() => match ev {
                Some(UserEvent::Line(text)) => {
                    // A send error means the link task ended; its Closed event explains why.
                    let _ = link.tx.send(AppMsg::Text(text)).await;
                }
                Some(UserEvent::Quit) | None => {
                    let _ = link.tx.send(AppMsg::Bye).await;
                    quit_deadline = Some(Instant::now() + link.linger);
                }
            },
            ev = link.rx.recv() => match ev {
                Some(NetEvent::Text(text)) => {
                    let _ = ui.output.send(Display::Message { from: PEER_NAME.into(), text }).await;
                }
                Some(NetEvent::PeerLeft) => {
                    let _ = ui.output.send(Display::PeerLeft).await;
                    if ui.interactive && quit_deadline.is_none() {
                        let _ = link.tx.send(AppMsg::Bye).await;
                        quit_deadline = Some(Instant::now() + link.linger);
                    }
                }
                Some(NetEvent::Status(s)) => ui.status(s).await,
                Some(NetEvent::Closed(r)) => return r,
                None => return Ok(()),
            },
            () = linger => {
                ui.status("the other side did not confirm the goodbye in time; leaving anyway").await;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(
        interactive: bool,
    ) -> (
        Ui,
        mpsc::Sender<UserEvent>,
        mpsc::Receiver<Display>,
        Link,
        mpsc::Receiver<AppMsg>,
        mpsc::Sender<NetEvent>,
    ) {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, out_rx) = mpsc::channel(16);
        let (app_tx, app_rx) = mpsc::channel(16);
        let (net_tx, net_rx) = mpsc::channel(16);
        let ui = Ui { input: in_rx, output: out_tx, interactive };
        let link = Link { tx: app_tx, rx: net_rx, linger: Duration::from_secs(5) };
        (ui, in_tx, out_rx, link, app_rx, net_tx)
    }

    #[tokio::test]
    async fn lines_go_out_and_quit_sends_bye_then_waits_for_close() {
        let (mut ui, in_tx, mut out_rx, link, mut app_rx, net_tx) = setup(false);
        in_tx.send(UserEvent::Line("hi".into())).await.unwrap();
        in_tx.send(UserEvent::Quit).await.unwrap();
        net_tx.send(NetEvent::Text("yo".into())).await.unwrap();
        let engine = tokio::spawn(async move { converse(&mut ui, link).await });
        assert_eq!(app_rx.recv().await, Some(AppMsg::Text("hi".into())));
        assert_eq!(app_rx.recv().await, Some(AppMsg::Bye));
        assert_eq!(out_rx.recv().await, Some(Display::Message { from: "peer".into(), text: "yo".into() }));
        net_tx.send(NetEvent::Closed(Ok(()))).await.unwrap();
        assert!(engine.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn interactive_side_leaves_when_peer_leaves() {
        let (mut ui, _in_tx, _out_rx, link, mut app_rx, net_tx) = setup(true);
        net_tx.send(NetEvent::PeerLeft).await.unwrap();
        let engine = tokio::spawn(async move { converse(&mut ui, link).await });
        assert_eq!(app_rx.recv().await, Some(AppMsg::Bye));
        net_tx.send(NetEvent::Closed(Ok(()))).await.unwrap();
        assert!(engine.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn linger_is_bounded() {
        let (mut ui, in_tx, _out_rx, mut link, _app_rx, _net_tx) = setup(false);
        link.linger = Duration::from_millis(50);
        in_tx.send(UserEvent::Quit).await.unwrap();
        assert!(converse(&mut ui, link).await.is_ok());
    }
}
