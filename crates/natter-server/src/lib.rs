//! Placeholder until this part of natter lands.

/// Command-line arguments of `natter server`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `natter server`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("natter server is not built yet")
}
