//! Placeholder until this part of natter lands.

/// Command-line arguments of `natter client`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `natter client`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("natter client is not built yet")
}
