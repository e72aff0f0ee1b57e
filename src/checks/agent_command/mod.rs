//! `[check.agent_command]`: holds a chat-ops agent to its contract over
//! Matrix, as a matrix-sdk client. As a given user it sends one command
//! into the control room (found by its alias, created when absent, the
//! agent invited) and judges the agent's reply to that command's event:
//! present before the deadline, its body containing what the spec asks. Side effects of the command are
//! proven by other checks (an `http` check against the GitLab API).

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Sends the command on the check's route and judges the reply.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    let verdict = match probe::probe(spec, ctx, &route).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error(format!("a client for {}", spec.base_url), e),
    };
    via::annotate(verdict, &route)
}
