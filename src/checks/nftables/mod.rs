//! `[check.nftables]`: the input hook of the checked host's nftables
//! ruleset (`nft -j list ruleset`, as JSON): policy drop, only allowed
//! TCP ports accepted.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Reads the ruleset, then judges its input chains.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    judge::judge(spec, &probe::probe(spec, ctx).await)
}
