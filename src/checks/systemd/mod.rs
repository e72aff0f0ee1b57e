//! `[check.systemd]`: systemd's own view of a booted VM or of the check's
//! host, read over D-Bus.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Reads systemd's state, then judges it.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error("a complete [check.systemd] table", e),
    }
}
