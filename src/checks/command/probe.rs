//! `[check.command]`: run a program (argv) or a shell script through the
//! target's `CommandExecutor`; judge its exit code and output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::judge;
use super::judge::Facts;
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::os::CommandSpec;
use crate::os::ExecError;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    run: Option<Vec<String>>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    stdout_contains: Vec<String>,
    #[serde(default)]
    stdout_not_contains: Vec<String>,
    #[serde(default)]
    stderr_contains: Vec<String>,
    #[serde(default)]
    stdout_equals: Option<String>,
}

/// A command check. Exactly one of `run` (argv, no shell) and `script`
/// (run by `sh -c`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<String>,
    /// Expected exit code (default 0).
    pub exit_code: i32,
    pub stdout_contains: Vec<String>,
    pub stdout_not_contains: Vec<String>,
    pub stderr_contains: Vec<String>,
    pub stdout_equals: Option<String>,
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;
    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let argv = match (raw.run, raw.script) {
            (Some(run), None) if !run.is_empty() => run,
            (Some(_), None) => {
                return Err("`run` must name a program: run = [\"prog\", \"arg\"]".into())
            }
            (None, Some(script)) => vec!["sh".into(), "-c".into(), script],
            (Some(_), Some(_)) => return Err("give either `run` or `script`, not both".into()),
            (None, None) => {
                return Err("give `run = [\"prog\", \"arg\"]` or `script = \"...\"`".into())
            }
        };
        Ok(Spec {
            argv,
            env: raw.env,
            cwd: raw.cwd,
            stdin: raw.stdin,
            exit_code: raw.exit_code.unwrap_or(0),
            stdout_contains: raw.stdout_contains,
            stdout_not_contains: raw.stdout_not_contains,
            stderr_contains: raw.stderr_contains,
            stdout_equals: raw.stdout_equals,
        })
    }
}

impl Spec {
    pub fn command(&self) -> CommandSpec {
        CommandSpec {
            program: self.argv[0].clone(),
            args: self.argv[1..].to_vec(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            stdin: self.stdin.as_ref().map(|s| s.as_bytes().to_vec()),
        }
    }
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let command = spec.command();
    let facts = match ctx.executor.run(&command, ctx.deadline).await {
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
                ExecError::Spawn(_) => (String::new(), String::new()),
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
    };
    judge::judge(spec, &facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::FakeExecutor;
    use std::sync::Arc;

    fn spec(toml_text: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn run_or_script_exactly_once() {
        assert_eq!(spec("run = [\"true\"]").unwrap().argv, ["true"]);
        assert_eq!(
            spec("script = \"echo hi\"").unwrap().argv,
            ["sh", "-c", "echo hi"]
        );
        assert!(spec("").unwrap_err().contains("give `run"));
        assert!(spec("run = [\"a\"]\nscript = \"b\"")
            .unwrap_err()
            .contains("not both"));
        assert!(spec("run = []")
            .unwrap_err()
            .contains("must name a program"));
        assert!(spec("run = [\"a\"]\nexit = 1")
            .unwrap_err()
            .contains("unknown field `exit`"));
    }

    #[tokio::test]
    async fn real_commands_pass_and_fail_for_the_right_reason() {
        let ctx = ProbeContext::for_tests(10);
        let ok = spec("run = [\"uname\", \"-s\"]\nstdout_contains = [\"Linux\"]").unwrap();
        assert!(probe(&ok, &ctx).await.pass);
        let wrong_exit = spec("script = \"echo boom >&2; exit 3\"").unwrap();
        let v = probe(&wrong_exit, &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("exit code 3"), "{v:?}");
        assert!(v.evidence.contains("boom"), "{v:?}");
        let missing = spec("run = [\"/nonexistent/prog\"]").unwrap();
        let v = probe(&missing, &ctx).await;
        assert!(!v.pass && v.found.contains("could not start"), "{v:?}");
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_at_the_deadline() {
        let mut ctx = ProbeContext::for_tests(1);
        ctx.deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let v = probe(&spec("run = [\"sleep\", \"30\"]").unwrap(), &ctx).await;
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
        let v = probe(&s, &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(v.found.contains("passwordauthentication no"), "{v:?}");
        assert_eq!(fake.calls()[0].args, ["-T"]);
    }
}
