//! Replays the committed fuzzing corpora of the parser targets (`fuzz/corpus/`) through the
//! same checks the fuzzer runs (`fuzz/checks/`), so that every input the fuzzer found
//! interesting stays covered on stable Rust, in `cargo test`, without libFuzzer.

#[path = "../../../fuzz/checks/irc_line.rs"]
mod irc_line;
#[path = "../../../fuzz/checks/native_frame.rs"]
mod native_frame;
#[path = "../../../fuzz/checks/sasl.rs"]
mod sasl;
#[path = "../../../fuzz/checks/text_command.rs"]
mod text_command;

/// Runs `check` on every input of `target`'s corpus; fails when the corpus is missing.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("no corpus at {}: {e}", dir.display()));
    let mut inputs = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        inputs += 1;
    }
    assert!(inputs >= 10, "{target}: only {inputs} inputs in the corpus");
}

#[test]
fn irc_line_corpus() {
    replay("irc_line", irc_line::check);
}

#[test]
fn native_frame_corpus() {
    replay("native_frame", native_frame::check);
}

#[test]
fn text_command_corpus() {
    replay("text_command", text_command::check);
}

#[test]
fn sasl_corpus() {
    replay("sasl", sasl::check);
}
