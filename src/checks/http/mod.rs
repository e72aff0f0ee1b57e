//! `[check.http]`: an HTTP(S) request with a deadline; judges status,
//! headers, body and JSON values of the answer.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Gathers the facts and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    judge::judge(spec, &probe::probe(spec, ctx).await)
}
