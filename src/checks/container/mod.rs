//! `[check.container]`: ask a container engine over the Docker API for its version, or run a container.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Gathers the facts on the check's route and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    let facts = probe::probe(spec, ctx, &route).await;
    via::annotate(judge::judge(spec, &facts), &route)
}
