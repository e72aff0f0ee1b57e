//! `[check.build]`: runs the target's image build command (for RAVE a
//! `nix build` of the P6 image; for the demo `scripts/build-guest-image.sh`)
//! through the check's executor; it must exit 0 within `max_duration`. The
//! build time is recorded as `build_seconds`. With `reproducible = true`
//! and an `artifact`, the command runs a second time and both builds'
//! artifacts must have the same SHA-256 digest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;

use super::judge;
use super::judge::BuildRun;
use super::judge::Facts;
use crate::check::HumanDuration;
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::os::CommandSpec;
use crate::os::ExecError;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The build command as argv, e.g. ["nix", "build", ".#p6-image"].
    pub command: Vec<String>,
    /// Working directory of the build (default: the validator's).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Extra environment for the build.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Build-time budget; a slower (even successful) build fails.
    pub max_duration: HumanDuration,
    /// The file the build produces (digested for `reproducible`).
    #[serde(default)]
    pub artifact: Option<PathBuf>,
    /// Build twice and require the same artifact digest.
    #[serde(default)]
    pub reproducible: bool,
}

impl Spec {
    fn command_spec(&self) -> Result<CommandSpec, String> {
        let (program, args) = self
            .command
            .split_first()
            .ok_or("`command` is empty: give the build command as argv, e.g. [\"nix\", \"build\", \".#image\"]")?;
        Ok(CommandSpec {
            program: program.clone(),
            args: args.to_vec(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            stdin: None,
        })
    }
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let command = match spec.command_spec() {
        Ok(c) => c,
        Err(e) => return Verdict::probe_error("a build command", e),
    };
    let mut runs = vec![run_once(&command, ctx).await];
    let mut digests = Vec::new();
    if let Some(artifact) = &spec.artifact {
        digests.push(digest(artifact).await);
        if spec.reproducible && runs[0].exit_code == Some(0) {
            runs.push(run_once(&command, ctx).await);
            digests.push(digest(artifact).await);
        }
    }
    let facts = Facts {
        command: command.display(),
        place: ctx.executor.describe(),
        runs,
        artifact: spec.artifact.as_ref().map(|p| p.display().to_string()),
        digests,
    };
    judge::judge(spec, &facts)
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
        let v = probe(&ok, &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.metrics.contains_key("build_seconds"), "{v:?}");
        assert!(v.evidence.contains("sha256:"), "{v:?}");

        let failing = spec("command = [\"sh\", \"-c\", \"echo missing dependency >&2; exit 4\"]\nmax_duration = \"20s\"");
        let v = probe(&failing, &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("exit code 4"), "{v:?}");
        assert!(v.evidence.contains("missing dependency"), "{v:?}");

        // Over budget: exits 0 but slower than max_duration.
        let slow = spec("command = [\"sleep\", \"1\"]\nmax_duration = \"100ms\"");
        let v = probe(&slow, &ctx).await;
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
        let v = probe(&s, &ProbeContext::for_tests(30)).await;
        assert!(!v.pass);
        assert!(v.expected.contains("same digest"), "{v:?}");
    }

    #[tokio::test]
    async fn a_hanging_build_is_killed_at_the_deadline() {
        let mut ctx = ProbeContext::for_tests(1);
        ctx.deadline = Instant::now() + std::time::Duration::from_millis(300);
        let v = probe(
            &spec("command = [\"sleep\", \"30\"]\nmax_duration = \"1h\""),
            &ctx,
        )
        .await;
        assert!(!v.pass);
        assert!(v.found.contains("timed out"), "{v:?}");
    }
}
