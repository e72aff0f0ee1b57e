//! `spinup-smoke demo [up|down]`: arguments of the demo stack commands.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub action: Option<DemoAction>,
    /// Where the stack keeps its data, logs, secrets and target file.
    #[arg(long, value_name = "DIR", default_value = ".demo", global = true)]
    pub state: PathBuf,
    /// Signing key for the demo run (default: an ephemeral key).
    #[arg(long, value_name = "PATH", env = "SPINUP_SIGNING_KEY")]
    pub key: Option<PathBuf>,
    /// Where the demo run writes its artifacts.
    #[arg(long, value_name = "DIR", default_value = "artifacts/demo")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum DemoAction {
    /// Start the stack and write STATE/target.toml.
    Up,
    /// Stop the stack and remove STATE (safe to repeat, safe after a crash).
    Down,
}
