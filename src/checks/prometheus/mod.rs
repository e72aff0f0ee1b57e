//! `[check.prometheus]`: asks a Prometheus server whether every active

pub mod judge;
pub mod probe;

use crate::check::{ProbeContext, Verdict};
pub use probe::Spec;

/// Gathers the facts and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    probe::probe(spec, ctx).await
}
