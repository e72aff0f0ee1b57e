//! The `[check.budget]` table (phase `performance`): one measured quantity
//! (the wall time of a finished phase or the sum of several, a metric another check recorded, or
//! memory: the host's in-use memory, or a cgroup's peak: a peak, not a
//! sample) and its maximum.

use std::path::PathBuf;

use serde::Deserialize;

use crate::check::Phase;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The wall time of this (earlier) phase, in seconds.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// The summed wall times of these (earlier) phases, in seconds: e.g.
    /// `["boot", "services"]`, from the guest's boot to every service healthy.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// `check-id/metric-name`: a number an earlier check recorded.
    #[serde(default)]
    pub metric: Option<String>,
    /// Memory in use on this host (MemTotal - MemAvailable), in GiB.
    #[serde(default)]
    pub host_memory: bool,
    /// A cgroup's peak memory file (v2 `memory.peak`, v1
    /// `memory.max_usage_in_bytes`), in GiB.
    #[serde(default)]
    pub memory_peak_file: Option<PathBuf>,
    /// The budget, in the measured unit (seconds, GiB, or the metric's unit).
    pub max: f64,
}
