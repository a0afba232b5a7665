//! The client stays logged in to its account across reconnects and restarts with a saved
//! resume token, against the real server: the token is asked for after a registration, a
//! login and a password change, saved in private files (never the password), given at every
//! reconnect and the next start, deleted by `/logout`, and deleted when the server refuses it
//! (the user is told once).

mod client_util;

use client_util::{Server, TempDir};
use natter_client::conn::{Client, ConnectOptions, Event, Events, Status};
use natter_client::saved_login::SavedLogins;
use natter_proto::native::{AccountChangeFrame, ClientFrame, ErrorCode, RequestId, ServerFrame};
use std::path::Path;
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "correct horse battery";

fn opts(server: &Server, nick: &str, logins: Option<&SavedLogins>) -> ConnectOptions {
    let mut o = ConnectOptions::new(server.addr.clone(), nick);
    o.backoff_min = Duration::from_millis(100);
    o.backoff_max = Duration::from_millis(400);
    o.connect_timeout = Duration::from_secs(5);
    o.saved_logins = logins.cloned();
    o
}

/// The events up to and including the first matching `pred`; panics after [`WAIT`].
async fn until(events: &mut Events, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(e) => {
                    let hit = pred(&e);
                    seen.push(e);
                    if hit {
                        return;
                    }
                }
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {seen:#?}"));
    seen
}

fn account_change(e: &Event, want: AccountChangeFrame) -> bool {
    matches!(e, Event::Frame(ServerFrame::Account { change, .. }) if *change == want)
}

/// True for the answer to a resume at login (`hello`'s id is 0).
fn resumed(e: &Event) -> bool {
    matches!(
        e,
        Event::Frame(ServerFrame::Account {
            id: Some(RequestId::Num(0)),
            change: AccountChangeFrame::LoggedIn,
            ..
        })
    )
}

fn reconnected(e: &Event) -> bool {
    matches!(e, Event::Status(Status::Connected { reconnected: true, .. }))
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The account `nick` is logged in to, as the server tells it (`whois`).
async fn account_of(client: &Client, nick: &str) -> Option<String> {
    match timeout(WAIT, client.request(ClientFrame::Whois { nick: nick.into(), id: None })).await.unwrap() {
        Ok(ServerFrame::UserInfo { user, .. }) => user.account.map(|a| a.into_owned()),
        other => panic!("whois answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_stays_logged_in_across_server_and_client_restarts_without_the_password() {
    // Nick protection at its default: a resuming owner must not be told to log in.
    let mut server = Server::start();
    let data = TempDir::new("data");
    let logins = SavedLogins::in_dir(data.0.join("natter").join("resume"));
    let (ann, mut ev) = Client::connect(opts(&server, "ann", Some(&logins))).await.unwrap();
    ann.submit(ClientFrame::Register { password: PASSWORD.into(), id: None });
    until(&mut ev, "registered", |e| account_change(e, AccountChangeFrame::Registered)).await;
    timeout(WAIT, ann.wait_idle()).await.unwrap();
    let file = logins.file(&server.addr, "ann");
    let first = logins.load(&server.addr, "ann").expect("a saved login after registering");
    assert_eq!(first.account, "ann");
    assert_eq!((mode(logins.dir()), mode(&file)), (0o700, 0o600));
    let bytes = all_bytes(&data.0);
    assert!(!bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "the password is on disk");

    // The server restarts: the reconnect logs in to the account again, nick kept.
    server.restart();
    until(&mut ev, "the reconnect", reconnected).await;
    let seen = until(&mut ev, "logged in again", resumed).await;
    assert!(!seen.iter().any(|e| matches!(e, Event::Frame(ServerFrame::NickProtected { .. }))), "{seen:#?}");
    assert_eq!(ann.nick(), "ann");
    assert_eq!(account_of(&ann, "ann").await.as_deref(), Some("ann"));

    // A password change revokes every token; the client asks for a new one by itself.
    ann.submit(ClientFrame::Passwd { old: PASSWORD.into(), new: "staple of the stable".into(), id: None });
    until(&mut ev, "password changed", |e| account_change(e, AccountChangeFrame::PasswordChanged)).await;
    timeout(WAIT, ann.wait_idle()).await.unwrap();
    let second = logins.load(&server.addr, "ann").expect("a saved login after the change");
    assert_ne!(first.token, second.token);
    ann.quit(None).await;

    // natter connect starts again: logged in from the start.
    let (ann, mut ev) = Client::connect(opts(&server, "ann", Some(&logins))).await.unwrap();
    until(&mut ev, "logged in at start", resumed).await;
    assert_eq!(account_of(&ann, "ann").await.as_deref(), Some("ann"));

    // /logout deletes the saved login: the next start is not logged in, and is told so by
    // nick protection.
    ann.submit(ClientFrame::Logout { id: None });
    until(&mut ev, "logged out", |e| account_change(e, AccountChangeFrame::LoggedOut)).await;
    assert!(!file.exists(), "the saved login is deleted");
    ann.quit(None).await;
    let (_ann, mut ev) = Client::connect(opts(&server, "ann", Some(&logins))).await.unwrap();
    let seen =
        until(&mut ev, "nick protection", |e| matches!(e, Event::Frame(ServerFrame::NickProtected { .. })))
            .await;
    assert!(!seen.iter().any(resumed), "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_refuses_is_deleted_and_the_user_told_once() {
    let mut server = Server::start_with(&["--msg-rate", "0", "--nick-protection", "off"]);
    let data = TempDir::new("data");
    let logins = SavedLogins::in_dir(data.0.join("resume"));
    let (ann, mut ev) = Client::connect(opts(&server, "ann", Some(&logins))).await.unwrap();
    ann.submit(ClientFrame::Register { password: PASSWORD.into(), id: None });
    until(&mut ev, "registered", |e| account_change(e, AccountChangeFrame::Registered)).await;
    timeout(WAIT, ann.wait_idle()).await.unwrap();
    assert!(logins.load(&server.addr, "ann").is_some());

    // Elsewhere, someone logged in to the account changes its password: ann's token is dead.
    let (other, mut other_ev) = Client::connect(opts(&server, "elsewhere", None)).await.unwrap();
    other.submit(ClientFrame::Login {
        name: Some("ann".into()),
        password: Some(PASSWORD.into()),
        msg: None,
        id: None,
    });
    until(&mut other_ev, "logged in", |e| account_change(e, AccountChangeFrame::LoggedIn)).await;
    other.submit(ClientFrame::Passwd { old: PASSWORD.into(), new: "a new password".into(), id: None });
    until(&mut other_ev, "changed", |e| account_change(e, AccountChangeFrame::PasswordChanged)).await;

    server.restart();
    let seen = until(&mut ev, "the refusal", |e| {
        matches!(e, Event::Frame(ServerFrame::Error { code: ErrorCode::BadResumeToken, .. }))
    })
    .await;
    let Some(Event::Frame(ServerFrame::Error { message, .. })) = seen.last() else { unreachable!() };
    assert!(message.contains("/login"), "{message}");
    assert_eq!(logins.load(&server.addr, "ann"), None, "the refused token is deleted");

    // The next reconnect gives no token: no second refusal.
    server.restart();
    let seen = until(&mut ev, "the second reconnect", reconnected).await;
    timeout(WAIT, ann.request(ClientFrame::Ping { id: None })).await.unwrap().unwrap();
    let mut after: Vec<Event> = seen;
    while let Ok(e) = ev.try_recv() {
        after.push(e);
    }
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Event::Frame(ServerFrame::Error { code: ErrorCode::BadResumeToken, .. }))),
        "{after:#?}"
    );
    assert_eq!(account_of(&ann, "ann").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_client_takes_its_nickname_back_from_whoever_holds_it() {
    let server = Server::start();
    let data = TempDir::new("data");
    let logins = SavedLogins::in_dir(data.0.join("resume"));
    let (ann, mut ev) = Client::connect(opts(&server, "ann", Some(&logins))).await.unwrap();
    ann.submit(ClientFrame::Register { password: PASSWORD.into(), id: None });
    until(&mut ev, "registered", |e| account_change(e, AccountChangeFrame::Registered)).await;
    timeout(WAIT, ann.wait_idle()).await.unwrap();
    ann.quit(None).await;

    // Someone (or a session ann's client left behind) holds the nickname meanwhile.
    let (squatter, mut squatter_ev) = Client::connect(opts(&server, "ann", None)).await.unwrap();
    assert_eq!(squatter.nick(), "ann");
    let (ann, mut ev) = Client::connect(opts(&server, "ann", Some(&logins))).await.unwrap();
    // Welcomed as ann_ (the squatter holds ann): the nick frame awaited below says so. The
    // handle itself may already show ann, when the server's rename came in the welcome's read.
    assert!(["ann_", "ann"].contains(&ann.nick().as_str()), "{}", ann.nick());
    until(&mut ev, "logged in", resumed).await;
    until(
        &mut ev,
        "the nickname back",
        |e| matches!(e, Event::Frame(ServerFrame::Nick { old, new, .. }) if old == "ann_" && new == "ann"),
    )
    .await;
    // The handle's copy of the nickname is refreshed once the frame is handled: a round trip
    // through the actor later, it is.
    timeout(WAIT, ann.wait_idle()).await.unwrap();
    assert_eq!(ann.nick(), "ann");
    until(&mut squatter_ev, "the squatter renamed", |e| {
        matches!(e, Event::Frame(ServerFrame::Nick { old, new, .. }) if old == "ann" && new.starts_with("Guest"))
    })
    .await;
}
