//! `[check.ports]`: which sockets listen on the target, from /proc/net.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Reads the target's listening sockets, then judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error(
            format!(
                "listening sockets can be read ({} on {})",
                e.command, e.place
            ),
            e.reason,
        ),
    }
}
