//! Runs the build command through the check's executor (killed at the
//! deadline), once or, for `reproducible` with an `artifact`, twice, and
//! digests the artifact after each run.

use std::time::Instant;

use super::judge::BuildRun;
use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::os::CommandSpec;
use crate::os::ExecError;

/// Runs the build and digests the artifact; the error is why the build
/// cannot start (no command).
pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let command = spec.command_spec()?;
    let mut runs = vec![run_once(&command, ctx).await];
    let mut digests = Vec::new();
    if let Some(artifact) = &spec.artifact {
        digests.push(digest(artifact).await);
        if spec.reproducible && runs[0].exit_code == Some(0) {
            runs.push(run_once(&command, ctx).await);
            digests.push(digest(artifact).await);
        }
    }
    Ok(Facts {
        command: command.display(),
        place: ctx.executor.describe(),
        runs,
        artifact: spec.artifact.as_ref().map(|p| p.display().to_string()),
        digests,
    })
}

async fn run_once(command: &CommandSpec, ctx: &ProbeContext) -> BuildRun {
    let started = Instant::now();
    match ctx.executor.run(command, ctx.deadline).await {
        Ok(out) => BuildRun {
            exit_code: out.exit_code,
            seconds: started.elapsed().as_secs_f64(),
            stdout: out.stdout_text(),
            stderr: out.stderr_text(),
            error: None,
        },
        Err(e) => {
            let (stdout, stderr) = match &e {
                ExecError::TimedOut { partial, .. } => {
                    (partial.stdout_text(), partial.stderr_text())
                }
                ExecError::Spawn(_) => (String::new(), String::new()),
            };
            BuildRun {
                exit_code: None,
                seconds: started.elapsed().as_secs_f64(),
                stdout,
                stderr,
                error: Some(e.to_string()),
            }
        }
    }
}

async fn digest(path: &std::path::Path) -> Result<String, String> {
    let file = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::digest::sha256_file(&file))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::build::run;

    fn spec(text: &str) -> Spec {
        toml::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn a_real_build_passes_records_its_time_and_fails_on_exit_or_budget() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.img");
        let ctx = ProbeContext::for_tests(30);
        let ok = spec(&format!(
            "command = [\"sh\", \"-c\", \"printf image > {0}\"]\nmax_duration = \"20s\"\nartifact = {0:?}\nreproducible = true",
            out.display()
        ));
        let v = run(&ok, &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.metrics.contains_key("build_seconds"), "{v:?}");
        assert!(v.evidence.contains("sha256:"), "{v:?}");

        let failing = spec("command = [\"sh\", \"-c\", \"echo missing dependency >&2; exit 4\"]\nmax_duration = \"20s\"");
        let v = run(&failing, &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("exit code 4"), "{v:?}");
        assert!(v.evidence.contains("missing dependency"), "{v:?}");

        // Over budget: exits 0 but slower than max_duration.
        let slow = spec("command = [\"sleep\", \"1\"]\nmax_duration = \"100ms\"");
        let v = run(&slow, &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("took"), "{v:?}");
    }

    #[tokio::test]
    async fn an_unreproducible_build_fails_the_digest_comparison() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.img");
        let s = spec(&format!(
            "command = [\"sh\", \"-c\", \"head -c 32 /dev/urandom > {0}\"]\nmax_duration = \"20s\"\nartifact = {0:?}\nreproducible = true",
            out.display()
        ));
        let v = run(&s, &ProbeContext::for_tests(30)).await;
        assert!(!v.pass);
        assert!(v.expected.contains("same digest"), "{v:?}");
    }

    #[tokio::test]
    async fn a_hanging_build_is_killed_at_the_deadline() {
        let mut ctx = ProbeContext::for_tests(1);
        ctx.deadline = Instant::now() + std::time::Duration::from_millis(300);
        let v = run(
            &spec("command = [\"sleep\", \"30\"]\nmax_duration = \"1h\""),
            &ctx,
        )
        .await;
        assert!(!v.pass);
        assert!(v.found.contains("timed out"), "{v:?}");
    }
}
