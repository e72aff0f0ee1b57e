//! `[check.facts]`: sanity of configuration values (the facts the NixOS
//! configuration is built from): memory caps within the budget, ports
//! unique and in range, an allow-list equal to the ports it should hold,
//! every service of the facts examined by a check of the loaded profiles.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Names the values, then judges the assertion.
pub async fn run(spec: &Spec, _ctx: &ProbeContext) -> Verdict {
    match spec.assert {
        spec::Assertion::ServicesExamined => judge::services_examined(spec, &probe::names(spec)),
        _ => judge::judge(spec, &probe::probe(spec)),
    }
}
