//! `[check.http]`: an HTTP(S) request with a deadline; judges status,
//! headers, body and JSON values of the answer.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Gathers the facts on the check's route and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    via::annotate(
        judge::judge(spec, &probe::probe(spec, ctx, &route).await),
        &route,
    )
}
