//! The check model, the lowest layer of the validator: what a check is
//! (`Check`), how it is retried (`RetryPolicy`), what one attempt concluded
//! (`Verdict`), what a probe may use (`ProbeContext`), and the vocabulary of
//! phases, outcomes and results (`model`).
//!
//! **Architecture invariant:** imports only `error`, `text`, `os` and `vm`
//! (the infrastructure below it); no kind, profile, runner or reporter
//! (`tests/tidy.rs` holds it).

pub mod context;
pub mod coverage;
pub mod model;
pub mod retry;
pub mod sessions;
pub mod verdict;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Location;
pub use crate::text::excerpt;
pub use context::{ProbeContext, RunSoFar};
pub use coverage::{Coverage, PhaseCoverage, PhaseStatus, Summary};
pub use model::*;
pub use retry::{RawRetry, RetryPolicy};
pub use verdict::{all_of, Verdict};

/// A kind's declaration, seen by the runner: it names its kind and, given a
/// context, gathers facts and judges them.
pub trait Probe: Send + Sync + std::fmt::Debug {
    /// The kind as written in profiles (`[check.<kind>]`).
    fn kind(&self) -> &'static str;
    /// Gathers the facts and judges them into a verdict.
    fn run<'a>(
        &'a self,
        ctx: &'a ProbeContext,
    ) -> Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;
    /// For tests and tools that look at a concrete declaration.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A ready check: defaults applied, target values interpolated.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub phase: Phase,
    pub description: String,
    pub service: String,
    pub severity: Severity,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub needs: Vec<String>,
    pub hint: Option<String>,
    /// The target declares the check's service a stand-in (`[stand_ins]`):
    /// its results say so.
    pub stand_in: bool,
    /// The kind's declaration; `probe.run(ctx)` gathers facts and judges them.
    pub probe: Arc<dyn Probe>,
    pub location: Location,
    /// Where the check's service logs (the target's `[logs]`): when the
    /// check fails, the last lines join its evidence.
    pub logs: Option<LogSource>,
    /// When it runs after its `needs`.
    pub when: When,
    /// Part of the quick look `--smoke` selects.
    pub smoke: bool,
}

/// When a check runs after its `needs` have finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Only if every need passed or warned (else SKIP with the reason).
    #[default]
    OnSuccess,
    /// Whatever they concluded (a cleanup that must run after a failure).
    Always,
}

/// A service's log, read on the check's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// A log file.
    File(std::path::PathBuf),
    /// A systemd unit's journal.
    Unit(String),
}

impl LogSource {
    /// How many lines a failed check's evidence gets.
    pub const LINES: u32 = 20;

    /// The command that prints the last `lines` lines.
    pub fn command(&self, lines: u32) -> crate::os::CommandSpec {
        let n = lines.to_string();
        match self {
            LogSource::File(path) => {
                let path = path.display().to_string();
                crate::os::CommandSpec::new("tail", &["-n", &n, "--", &path])
            }
            LogSource::Unit(unit) => crate::os::CommandSpec::new(
                "journalctl",
                &["--no-pager", "-o", "short-iso", "-n", &n, "-u", unit],
            ),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            LogSource::File(path) => path.display().to_string(),
            LogSource::Unit(unit) => format!("the journal of {unit}"),
        }
    }
}
