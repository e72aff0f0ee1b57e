//! `[check.process]`: whether processes matching a name or command line run.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Lists the processes, then judges the matching ones.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(processes) => judge::judge(spec, &processes),
        Err(e) => Verdict::probe_error("the process table can be read", e),
    }
}
