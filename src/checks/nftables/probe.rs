//! Runs `nft -j list ruleset` through the target's executor: the ruleset
//! of the checked host (or of the network namespace it runs in).

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    crate::checks::ran::run_once(&spec.command(), ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::nftables::run;
    use crate::os::FakeExecutor;
    use std::sync::Arc;

    #[tokio::test]
    async fn reads_the_targets_ruleset_through_the_executor() {
        let fake = Arc::new(FakeExecutor::new());
        fake.answer(
            "nft",
            0,
            r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}"#,
            "",
        );
        let mut ctx = ProbeContext::for_tests(5);
        ctx.executor = fake.clone();
        let spec: Spec = toml::from_str("allowed_tcp = [22]").unwrap();
        let v = run(&spec, &ctx).await;
        assert!(!v.pass && v.found.contains("no input chain"), "{v:?}");
        assert_eq!(fake.calls()[0].display(), "nft -j list ruleset");
    }
}
