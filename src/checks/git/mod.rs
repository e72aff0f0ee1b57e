//! `[check.git]`: proves with git itself what a remote repository holds at
//! a ref: its commit (optionally the one an API names), the head commit's
//! subject, files and their contents, paths that must be absent.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Gathers the facts on the check's route and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = match spec.remote {
        spec::Remote::Http(_) => via::route(spec.via, ctx),
        spec::Remote::File(_) => via::Route::Direct,
    };
    via::annotate(
        judge::judge(spec, &probe::probe(spec, ctx, &route).await),
        &route,
    )
}
