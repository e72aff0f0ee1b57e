//! Runs the command through the target's `CommandExecutor`; a command that
//! cannot start or does not finish is a fact (with its partial output).

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::os::ExecError;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    let command = spec.command();
    match ctx.executor.run(&command, ctx.deadline).await {
        Ok(out) => Facts {
            command: command.display(),
            place: ctx.executor.describe(),
            exit_code: out.exit_code,
            stdout: out.stdout_text(),
            stderr: out.stderr_text(),
            error: None,
            duration_ms: out.duration.as_secs_f64() * 1000.0,
        },
        Err(e) => {
            let (stdout, stderr) = match &e {
                ExecError::TimedOut { partial, .. } => {
                    (partial.stdout_text(), partial.stderr_text())
                }
                ExecError::Spawn(_) | ExecError::Connection(_) => (String::new(), String::new()),
            };
            Facts {
                command: command.display(),
                place: ctx.executor.describe(),
                exit_code: None,
                stdout,
                stderr,
                error: Some(e.to_string()),
                duration_ms: 0.0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::command::run;
    use crate::os::FakeExecutor;
    use std::sync::Arc;

    fn spec(toml_text: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(toml_text).map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn real_commands_pass_and_fail_for_the_right_reason() {
        let ctx = ProbeContext::for_tests(10);
        let ok = spec("run = [\"uname\", \"-s\"]\nstdout_contains = [\"Linux\"]").unwrap();
        assert!(run(&ok, &ctx).await.pass);
        let wrong_exit = spec("script = \"echo boom >&2; exit 3\"").unwrap();
        let v = run(&wrong_exit, &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("exit code 3"), "{v:?}");
        assert!(v.evidence.contains("boom"), "{v:?}");
        let missing = spec("run = [\"/nonexistent/prog\"]").unwrap();
        let v = run(&missing, &ctx).await;
        assert!(!v.pass && v.found.contains("could not start"), "{v:?}");
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_at_the_deadline() {
        let mut ctx = ProbeContext::for_tests(1);
        ctx.deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let v = run(&spec("run = [\"sleep\", \"30\"]").unwrap(), &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("timed out"), "{v:?}");
    }

    #[tokio::test]
    async fn runs_through_the_executor() {
        let fake = Arc::new(FakeExecutor::new());
        fake.answer(
            "sshd",
            0,
            "passwordauthentication yes\npermitrootlogin no\n",
            "",
        );
        let mut ctx = ProbeContext::for_tests(5);
        ctx.executor = fake.clone();
        let s = spec("run = [\"sshd\", \"-T\"]\nstdout_contains = [\"passwordauthentication no\"]")
            .unwrap();
        let v = run(&s, &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(v.found.contains("passwordauthentication no"), "{v:?}");
        assert_eq!(fake.calls()[0].args, ["-T"]);
    }
}
