//! Placeholder until this part of natter lands.

/// Command-line arguments of `natter direct`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `natter direct`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("natter direct is not built yet")
}
