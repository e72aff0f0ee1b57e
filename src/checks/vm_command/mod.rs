//! `[check.vm_command]`: a `[check.command]` run inside a VM booted by an earlier `[check.vm]` check.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::command;
pub use spec::Spec;

/// Finds the VM, then runs and judges the command in it as `[check.command]`
/// does; a VM that is not there is judged here.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(in_guest) => command::run(&spec.command, &in_guest).await,
        Err(unavailable) => judge::judge(spec, &unavailable),
    }
}
