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
}
