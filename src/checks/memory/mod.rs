//! `[check.memory]`: peak memory against a budget, a peak and not a sample:
//! a cgroup's peak counter, or the sum of the high-water marks (`VmHWM`) of
//! the selected processes and their descendants.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Reads the peaks, then judges their sum against the budget.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    judge::judge(spec, &probe::probe(spec, ctx).await)
}
