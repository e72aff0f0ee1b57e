//! `[check.flake_lock]`: a flake.lock pins every input of the root flake,
//! recursively (a `locked` revision and `narHash`), holds the inputs the
//! flake declares, and records how old its pins are.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Reads the lock file, then judges its pins.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error(
            format!("{} pins every input", spec.path.display()),
            e,
        ),
    }
}
