//! `natter direct`: a private, encrypted chat for two, with no server.
pub mod code;
pub mod frame;
pub mod reliable;
pub mod session;
pub mod words;

/// Command-line arguments of `natter direct`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `natter direct`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("natter direct is not built yet")
}
