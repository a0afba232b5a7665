//! Replays the committed corpus of the `server_session` fuzz target (`fuzz/corpus/`) through
//! the check the fuzzer runs (`fuzz/checks/server_session.rs`): whole sessions of every front
//! door against an in-process server, with its invariants checked after each input. Runs on
//! stable Rust in `cargo test`, without libFuzzer.

#[path = "../../../fuzz/checks/server_session.rs"]
mod server_session;

#[test]
fn server_session_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/server_session");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()));
    let mut inputs = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        server_session::check(&std::fs::read(&path).unwrap());
        inputs += 1;
    }
    assert!(inputs >= 10, "only {inputs} inputs in the corpus");
}
