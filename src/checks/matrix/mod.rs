//! `[check.matrix]`: asks a Matrix homeserver's client API one question:
//! which spec versions it speaks, its server version, whether registration
//! is closed and federation not served, whether a user can log in (and log
//! out), whether media survive an upload/download round trip, whether
//! SSO is advertised, and whether an SSO login through the identity
//! provider ends in a working access token.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
use probe::ProbeError;
pub use spec::Spec;

/// Gathers the facts on the check's route and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    let verdict = match probe::probe(spec, ctx, &route).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(ProbeError::Client(e)) => {
            Verdict::probe_error(format!("a client for {}", spec.base_url), e)
        }
        Err(ProbeError::Deadline) => Verdict::probe_error(
            format!("an answer from {}", spec.base_url),
            "no answer before the check's deadline",
        ),
    };
    via::annotate(verdict, &route)
}
