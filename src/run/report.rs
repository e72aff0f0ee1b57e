//! The run report: everything the runner gathered, for the reporters.

use std::collections::BTreeMap;

use crate::check::{CheckResult, Coverage, OverallStatus, Phase};

#[derive(Debug, Clone)]
pub struct RunReport {
    pub session_id: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: chrono::DateTime<chrono::Utc>,
    /// The verdict: `coverage.status`.
    pub status: OverallStatus,
    /// Every phase: examined or not, required or not, its counts.
    pub coverage: Coverage,
    pub abort_reason: Option<String>,
    pub results: Vec<CheckResult>,
    pub phase_durations_ms: BTreeMap<Phase, u64>,
    pub safe_mode: bool,
}
