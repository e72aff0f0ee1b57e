//! `[check.sandbox]`: one full sandbox cycle the way RAVE runs agent jobs, cleanup proven.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Runs the sandbox cycle, then judges it.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error("a sandbox job", e),
    }
}
