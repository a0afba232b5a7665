//! The `natter` binary: command-line dispatch only. Each subcommand lives in its own crate.

use clap::{Parser, Subcommand};

/// jemalloc instead of the system allocator: glibc's per-thread arenas keep the pages that
/// bursts of short-lived buffers leave behind, which made idle connections cost more memory.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: a background thread hands freed pages back to the
/// system about a second after a burst (a join flood, a history replay), so the memory of
/// connections that then sit idle is what they use, not what the burst needed; the hot path
/// never waits for that.
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// `natter --version`: the release and the commit it was built from (`build.rs`), so that a
/// report names exactly what ran.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("NATTER_COMMIT"), ")");

/// natter: self-hosted chat in one binary.
#[derive(Debug, Parser)]
#[command(name = "natter", version = VERSION, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the chat server (native protocol, text mode and UDP on one port number).
    // Boxed: the server has many settings, and the other commands should not carry their size.
    Serve(Box<natter_server::Args>),
    /// Connect to a natter server: a full-screen client on a terminal, line mode when piped.
    Connect(natter_client::Args),
    /// A private, encrypted chat for two, with no server in between.
    Direct(natter_direct::Args),
    /// Load-test a running natter (or IRC) server.
    Bench(natter_bench::Args),
    /// Manage registered accounts in the store (also while the server runs).
    User(natter_server::user_admin::UserArgs),
    /// Make a self-signed TLS certificate and key for `natter serve --tls-cert --tls-key`.
    Cert(natter_server::cert::CertArgs),
    /// Print the shell completion script for bash, zsh or fish (e.g. `natter completions bash >
    /// ~/.local/share/bash-completion/completions/natter`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Writes `bytes` to standard output. A reader that stopped early (`natter completions bash |
/// head`) is not an error, as for other Unix tools; clap_complete's own writer panics there.
fn print_all(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Serve(args) => natter_server::run(*args),
        Commands::Connect(args) => natter_client::run(args),
        Commands::Direct(args) => natter_direct::run(args),
        Commands::Bench(args) => natter_bench::run(args),
        Commands::User(args) => natter_server::user_admin::run(args),
        Commands::Cert(args) => natter_server::cert::run(args),
        Commands::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "natter", &mut script);
            print_all(&script)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: what went wrong and what to do, each cause once (no "Caused by" list
            // repeating the sentence above it, no backtrace for a user's mistake).
            eprintln!("natter: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: a cause whose words the sentence above already
/// contains is left out.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
