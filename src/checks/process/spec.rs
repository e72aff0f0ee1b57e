//! The `[check.process]` table: a name or command-line selector, and whether
//! (and how many) matching processes should be running.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Exact process name (`/proc/<pid>/comm`, at most 15 characters).
    #[serde(default)]
    pub name: Option<String>,
    /// A substring of the full command line.
    #[serde(default)]
    pub cmdline_contains: Option<String>,
    /// Expect it running (default) or not running.
    #[serde(default = "yes")]
    pub running: bool,
    /// At least this many matching processes (default 1).
    #[serde(default)]
    pub min_count: Option<usize>,
}

fn yes() -> bool {
    true
}
