//! `[check.image]`: a built disk image has the expected format and size; its digest is recorded.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Inspects the image, then judges it.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    judge::judge(spec, &probe::probe(spec, ctx).await)
}
