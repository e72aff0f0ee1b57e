//! `[check.file]`: existence, type, mode, owner, digest and content of a file.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Inspects the path, then judges what it found.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error(format!("{} can be inspected", spec.path.display()), e),
    }
}
