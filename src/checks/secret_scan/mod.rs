//! `[check.secret_scan]`: no hardcoded secret in a tree: known shapes
//! (private keys, cloud and service tokens), secret-named assignments and
//! high-entropy strings, each finding shown as file, line and rule with the
//! secret redacted; accepted findings need an allow-list entry with a reason.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Scans the trees, then judges the findings against the allow-list.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error("the trees can be scanned", e),
    }
}
