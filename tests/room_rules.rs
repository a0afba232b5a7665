//! A room keeps who runs it: its founder and the operators it was given are operators again
//! when they come back, after a reconnect and after a restart, and its modes and bans stay.

mod common;

use common::{Server, json, native};

/// Joins `room` and returns the `joined` frame.
fn join(c: &mut common::Client, room: &str) -> serde_json::Value {
    c.line(&format!(r#"{{"type":"join","room":"{room}"}}"#));
    json(&c.expect(r#""type":"joined""#))
}

fn operators(joined: &serde_json::Value) -> Vec<String> {
    joined["operators"]
        .as_array()
        .map_or(Vec::new(), |a| a.iter().map(|v| v.as_str().unwrap().into()).collect())
}

#[test]
fn operators_modes_and_bans_survive_reconnects_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.db");
    let server = Server::start_with_db(&db, &[]);
    let mut ann = native(server.tcp, "ann");
    assert_eq!(operators(&join(&mut ann, "#ops")), ["ann"], "the founder");
    let mut bob = native(server.tcp, "bob");
    join(&mut bob, "#ops");
    ann.line(
        r##"{"type":"mode","room":"#ops","changes":[{"mode":"op","nick":"bob","on":true},{"mode":"moderated","on":true},{"mode":"ban","mask":"zed","on":true}]}"##,
    );
    bob.expect(r#""type":"mode""#);
    // Both leave; someone else is first into the empty room and does not take it over.
    let mut cat = native(server.tcp, "cat");
    drop(ann);
    cat.expect(r#""type":"quit","nick":"ann""#);
    drop(bob);
    cat.expect(r#""type":"quit","nick":"bob""#);
    let j = join(&mut cat, "#ops");
    assert!(operators(&j).is_empty(), "an empty room is not up for grabs: {j}");
    let mut ann = native(server.tcp, "ann");
    assert!(operators(&join(&mut ann, "#ops")).contains(&"ann".to_string()), "the founder again");
    // A clean stop: what the hub has queued for the store is written before it exits.
    let mut server = server;
    server.signal("-TERM");
    assert!(server.wait_exit().success());

    // After a restart on the same database.
    let server = Server::start_with_db(&db, &[]);
    let mut bob = native(server.tcp, "bob");
    let joined = join(&mut bob, "#ops");
    assert_eq!(operators(&joined), ["bob"], "an operator made by the founder");
    bob.line(r##"{"type":"mode","room":"#ops","id":1}"##);
    let modes = json(&bob.expect(r#""type":"room_modes""#));
    assert_eq!(modes["modes"]["moderated"], true, "{modes}");
    bob.line(r##"{"type":"bans","room":"#ops","id":2}"##);
    let bans = bob.expect(r#""type":"bans""#);
    assert!(bans.contains("zed!*@*"), "{bans}");
    let mut zed = native(server.tcp, "zed");
    zed.line(r##"{"type":"join","room":"#ops","id":3}"##);
    assert!(zed.expect(r#""id":3"#).contains("banned"));
}
