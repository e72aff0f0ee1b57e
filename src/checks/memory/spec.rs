//! The `[check.memory]` table (phase `performance`): whose peak memory to
//! measure on the check's host, and the budget. Either a cgroup (its own
//! peak counter), the host's memory in use (`meminfo`, a sample), or
//! processes of this machine: the ones named by pid files, by name, or this
//! validator, each with all its descendants.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// A cgroup directory: v2 `memory.peak`, else v1
    /// `memory.max_usage_in_bytes`.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    /// Files holding a pid (first word; a second word that is a number is
    /// the process's start time from /proc/<pid>/stat, which must match;
    /// PostgreSQL's `postmaster.pid` reads right), or directories of
    /// `*.pid` files.
    #[serde(default)]
    pub pid_files: Vec<PathBuf>,
    /// Process names (`/proc/<pid>/comm`, exact).
    #[serde(default)]
    pub names: Vec<String>,
    /// This validator and its descendants (the guests it booted).
    #[serde(default)]
    pub include_validator: bool,
    /// The host's memory in use now (MemTotal - MemAvailable of
    /// /proc/meminfo): a sample, not a peak, for a host whose services run
    /// in no cgroup with a peak counter.
    #[serde(default)]
    pub meminfo: bool,
    /// The budget in GiB (e.g. `${budget.memory_gib}`).
    pub max_gib: f64,
}
