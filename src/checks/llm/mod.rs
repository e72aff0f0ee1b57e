//! `[check.llm]`: an OpenAI-compatible endpoint (`/v1/models`,
//! `/v1/chat/completions`) lists its models and answers a chat completion
//! whose response holds to the API's schema; latency and tokens per second
//! are recorded.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Gathers the facts on the check's route and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    let facts = probe::probe(spec, ctx, &route).await;
    via::annotate(judge::judge(spec, &facts), &route)
}
