//! The full-screen client.

use crate::config::Settings;

/// Runs the TUI until the user quits.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    crate::line_mode::run(settings, false).await
}
