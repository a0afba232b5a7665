//! Placeholder until this part of natter lands.

/// Command-line arguments of `natter bench`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `natter bench`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("natter bench is not built yet")
}
