//! `[check.sshd]`: the effective sshd configuration of the checked host
//! (`sshd -T` through its executor): authentication and algorithms.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Asks sshd for its effective configuration, then judges it.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    judge::judge(spec, &probe::probe(spec, ctx).await)
}
