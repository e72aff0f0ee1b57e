//! The runner's finished product: every check's result plus run-level facts.
//! Reporters (`crate::report`) render it; they never change or judge it.

use std::collections::BTreeMap;

use crate::model::{CheckResult, Outcome, OverallStatus, Phase};

/// Everything a finished (or aborted) run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// `spinup-YYYYMMDD-HHMMSS`.
    pub session_id: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: chrono::DateTime<chrono::Utc>,
    pub status: OverallStatus,
    /// Why the run stopped early: "SIGINT", "VALIDATION_TIMEOUT (1800s) reached".
    pub abort_reason: Option<String>,
    /// One per planned check, in plan order.
    pub results: Vec<CheckResult>,
    /// Wall-clock time of each phase that ran.
    pub phase_durations_ms: BTreeMap<Phase, u64>,
    pub safe_mode: bool,
}

/// Counts of outcomes (ABORTED counts as failed, so the parts add up to the total).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
}

impl OutcomeCounts {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for result in results {
            counts.total += 1;
            match result.status {
                Outcome::Pass => counts.passed += 1,
                Outcome::Warn => counts.warned += 1,
                Outcome::Fail | Outcome::Aborted => counts.failed += 1,
                Outcome::Skip => counts.skipped += 1,
            }
        }
        counts
    }
}

impl RunReport {
    pub fn counts(&self) -> OutcomeCounts {
        OutcomeCounts::of(&self.results)
    }

    /// Run duration in whole seconds (never negative).
    pub fn duration_seconds(&self) -> u64 {
        (self.completed_at - self.started_at).num_seconds().max(0) as u64
    }
}
