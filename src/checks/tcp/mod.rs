//! `[check.tcp]`: connect to an address; optionally expect it closed.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Connects on the check's route, then judges the attempt.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    via::annotate(
        judge::judge(spec, &probe::probe(spec, ctx, &route).await),
        &route,
    )
}
