//! `[check.gitlab_pipeline]`: waits for the newest GitLab pipeline of a
//! ref to finish and judges its status, its jobs and their logs.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Watches the pipeline on the check's route and judges what it did.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    via::annotate(
        judge::judge(spec, &probe::probe(spec, ctx, &route).await),
        &route,
    )
}
