//! Runs `sshd -T` through the target's executor: the effective
//! configuration of the checked host's sshd, not of this machine's.

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    crate::checks::ran::run_once(&spec.command(), ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::sshd::run;
    use crate::os::FakeExecutor;
    use std::sync::Arc;

    #[tokio::test]
    async fn asks_the_targets_sshd_through_the_executor() {
        let fake = Arc::new(FakeExecutor::new());
        fake.answer(
            "sshd",
            0,
            "passwordauthentication yes\nkbdinteractiveauthentication no\npermitrootlogin no\n",
            "",
        );
        let mut ctx = ProbeContext::for_tests(5);
        ctx.executor = fake.clone();
        let spec: Spec = toml::from_str("").unwrap();
        let v = run(&spec, &ctx).await;
        assert!(!v.pass && v.found.contains("passwordauthentication yes"), "{v:?}");
        assert_eq!(fake.calls()[0].display(), "sshd -T");
    }

    #[tokio::test]
    async fn a_missing_sshd_fails_saying_so() {
        let spec: Spec =
            toml::from_str("binary = \"/nonexistent/spinup-smoke/sshd\"").unwrap();
        let v = run(&spec, &ProbeContext::for_tests(5)).await;
        assert!(!v.pass && v.found.contains("sshd -T did not run"), "{v:?}");
    }
}
