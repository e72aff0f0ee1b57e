//! `[check.container]`: ask a container engine over the Docker API for its version, or run a container.

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
