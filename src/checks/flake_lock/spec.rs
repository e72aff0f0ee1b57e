//! The `[check.flake_lock]` table (phase `config`): a flake's lock file on
//! this host, the inputs it must hold, how old a locked input may be, and
//! the Nix that compares it with `nix flake metadata --json`.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The lock file, e.g. `${repo.root}/flake.lock`.
    pub path: PathBuf,
    /// Inputs the root flake must have (the names in flake.nix `inputs`).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Every input that records `lastModified` was modified at most this
    /// many days ago (a stale pin); unset: the age is only recorded.
    #[serde(default)]
    pub max_age_days: Option<u64>,
    /// The Nix to run `nix flake metadata --json` with, on the flake the
    /// lock file is in (default `nix`, from PATH; not installed: the
    /// comparison is skipped, and the result says so).
    #[serde(default = "nix")]
    pub nix: String,
    /// Compare the lock with `nix flake metadata` (default true).
    #[serde(default = "yes")]
    pub metadata: bool,
}

fn nix() -> String {
    "nix".into()
}

fn yes() -> bool {
    true
}
