//! `[check.vm_command]`: a `[check.command]` run inside a VM booted by an

pub mod probe;

use crate::check::{ProbeContext, Verdict};
pub use probe::Spec;

/// Gathers the facts and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    probe::probe(spec, ctx).await
}
