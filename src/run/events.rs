//! Events the runner emits while it works; the live console consumes them.

use std::time::Duration;

use crate::check::{CheckResult, Phase};
use crate::run::report::RunReport;

#[derive(Debug)]
pub enum Event<'a> {
    RunStarted {
        session_id: &'a str,
        total: usize,
    },
    PhaseStarted {
        phase: Phase,
        checks: usize,
    },
    CheckStarted {
        id: &'a str,
        phase: Phase,
    },
    /// An attempt failed and the check will retry after `retry_in`.
    AttemptFailed {
        id: &'a str,
        attempt: u32,
        found: &'a str,
        retry_in: Duration,
    },
    /// A check finished (any outcome, including skipped and aborted).
    CheckFinished {
        result: &'a CheckResult,
    },
    PhaseFinished {
        phase: Phase,
        duration: Duration,
    },
    RunFinished {
        report: &'a RunReport,
    },
}

/// Receives events; must be cheap and must not block.
pub trait EventSink: Send + Sync {
    fn event(&self, event: &Event<'_>);
}

/// Discards every event.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _: &Event<'_>) {}
}
