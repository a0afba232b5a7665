//! The `natter` binary: command-line dispatch only. Each subcommand lives in its own crate.

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: idle connections cost less memory (it returns
/// freed pages and does not fragment per thread the way glibc's arenas do), and the fanout hot
/// path allocates faster.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// natter: self-hosted chat in one binary.
#[derive(Debug, Parser)]
#[command(name = "natter", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the chat server (native protocol, text mode and UDP on one port number).
    Serve(natter_server::Args),
    /// Connect to a natter server: a full-screen client on a terminal, line mode when piped.
    Connect(natter_client::Args),
    /// A private, encrypted chat for two, with no server in between.
    Direct(natter_direct::Args),
    /// Load-test a running natter (or IRC) server.
    Bench(natter_bench::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Commands::Serve(args) => natter_server::run(args),
        Commands::Connect(args) => natter_client::run(args),
        Commands::Direct(args) => natter_direct::run(args),
        Commands::Bench(args) => natter_bench::run(args),
    }
}
