//! `natter connect`: the terminal client.
//!
//! - [`conn`]: the connection library (login, requests, events, reconnect with catch-up and
//!   resend), shared with line mode, the TUI, tests and `natter bench`.
//! - [`line_mode`]: one line in, one message out; for scripts and pipes.
//! - [`tui`]: the full-screen client.
//! - [`config`]: defaults and saved servers from the XDG config file.
//! - [`saved_login`]: resume tokens kept in the XDG data directory, never passwords.

pub mod config;
pub mod conn;
pub mod format;
pub mod line_mode;
pub mod plan;
pub mod saved_login;
pub mod tls;
pub mod tui;

use std::io::IsTerminal;

/// Command-line arguments of `natter connect`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Server to connect to: HOST, HOST:PORT, or the name of a server saved in the config file.
    /// The nodes of a cluster: HOST[:PORT],HOST[:PORT],... (at most 16), tried in order; when
    /// the connection is lost the client moves to the next one and catches up there.
    /// Default: the config file's default server, else localhost:7878.
    pub server: Option<String>,
    /// Nickname (default: the config file's, else $USER).
    #[arg(long, short)]
    pub nick: Option<String>,
    /// Room to open (default: the config file's, else #lobby).
    #[arg(long, short)]
    pub room: Option<String>,
    /// Line mode even on a terminal: each stdin line is sent, each event printed as one line.
    #[arg(long)]
    pub line: bool,
    /// In line mode, print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Do not reconnect when the connection drops; exit instead.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Config file to use instead of the XDG one ($XDG_CONFIG_HOME/natter/client.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,
    /// Connect over TLS: the certificate must be vouched for by the system's roots, or is
    /// trusted on first use and remembered in $XDG_DATA_HOME/natter/known_hosts.
    #[arg(long)]
    pub tls: bool,
    /// Accept exactly the certificate with this SHA-256 fingerprint (as `natter cert` and
    /// `natter serve` print it); implies --tls.
    #[arg(long, value_name = "SHA256")]
    pub fingerprint: Option<String>,
}

/// Runs `natter connect`: the TUI on a terminal, line mode otherwise.
pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = config::Settings::resolve(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if args.line || args.json || !tty {
        runtime.block_on(line_mode::run(settings, args.json))
    } else {
        runtime.block_on(tui::run(settings))
    }
}
