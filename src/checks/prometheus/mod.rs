//! `[check.prometheus]`: ask Prometheus whether its scrape targets are up or a query returns samples.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Gathers the facts and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let facts = probe::probe(spec, ctx).await;
    judge::judge(spec, &facts)
}
