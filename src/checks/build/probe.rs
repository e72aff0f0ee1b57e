//! Runs the build command through the check's executor (killed at the
//! deadline), once or, for `reproducible` with an `artifact`, twice (each
//! with a new empty cache directory named by `scratch_env`, made with
//! `mktemp -d` and removed on the check's host), and digests the artifact
//! after each run.

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
    let scratch = match &spec.scratch_env {
        Some(var) if spec.reproducible && spec.artifact.is_some() => Some(var.as_str()),
        _ => None,
    };
    let mut runs = Vec::new();
    let mut digests = Vec::new();
    let mut scratch_dirs = Vec::new();
    let times = if spec.reproducible && spec.artifact.is_some() { 2 } else { 1 };
    for _ in 0..times {
        if runs.last().is_some_and(|r: &BuildRun| r.exit_code != Some(0)) {
            break;
        }
        let mut command = command.clone();
        let dir = match scratch {
            Some(var) => {
                let dir = make_scratch_dir(ctx).await?;
                command.env.insert(var.to_string(), dir.clone());
                scratch_dirs.push(dir.clone());
                Some(dir)
            }
            None => None,
        };
        runs.push(run_once(&command, ctx).await);
        if let Some(artifact) = &spec.artifact {
            digests.push(digest(artifact).await);
        }
        if let Some(dir) = dir {
            remove_scratch_dir(&dir, ctx).await;
        }
    }
    Ok(Facts {
        command: command.display(),
        place: ctx.executor.describe(),
        runs,
        artifact: spec.artifact.as_ref().map(|p| p.display().to_string()),
        digests,
        scratch_dirs,
    })
}

/// A new empty directory on the check's host.
async fn make_scratch_dir(ctx: &ProbeContext) -> Result<String, String> {
    let cmd = CommandSpec::new("mktemp", &["-d", "-t", "spinup-build.XXXXXX"]);
    match ctx.executor.run(&cmd, ctx.deadline).await {
        Ok(out) if out.exit_code == Some(0) && !out.stdout_text().trim().is_empty() => {
            Ok(out.stdout_text().trim().to_string())
        }
        Ok(out) => Err(format!(
            "`{}` made no scratch directory for the build: {}",
            cmd.display(),
            out.stderr_text().trim()
        )),
        Err(e) => Err(format!("`{}`: {e}", cmd.display())),
    }
}

/// Best effort: a directory left behind is in the system's temp dir.
async fn remove_scratch_dir(dir: &str, ctx: &ProbeContext) {
    let cmd = CommandSpec::new("rm", &["-rf", "--one-file-system", dir]);
    let _ = ctx.executor.run(&cmd, ctx.deadline).await;
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
                ExecError::Spawn(_) | ExecError::Connection(_) => (String::new(), String::new()),
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

    /// A builder shaped like scripts/build-guest-image.sh: a cache under
    /// `$FAKE_CACHE` (a hit prints `cached=true` and the recorded build),
    /// an artifact in `out` written from `content` (a shell expression).
    fn fake_builder(dir: &std::path::Path, content: &str) -> std::path::PathBuf {
        let script = dir.join("builder.sh");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
set -eu
cache="${{FAKE_CACHE:?}}/fake"
out="$1"
if [ ! -f "$cache/complete" ]; then
    mkdir -p "$cache"
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    {content} >"$cache/image"
    printf 'build_started=%s\nbuild_finished=%s\nbuild_seconds=1\n' "$started" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$cache/build_info"
    touch "$cache/complete"
    cached=false
else
    cached=true
fi
cp "$cache/image" "$out"
echo "cached=$cached"
cat "$cache/build_info"
"#
            ),
        )
        .unwrap();
        script
    }

    fn fake_spec(script: &std::path::Path, out: &std::path::Path, extra: &str) -> Spec {
        spec(&format!(
            // Through `sh`: executing a file just written races with other
            // tests' forks holding it open (ETXTBSY).
            "command = [\"sh\", {:?}, {:?}]\nmax_duration = \"15m\"\nartifact = {:?}\n{extra}",
            script.display().to_string(),
            out.display().to_string(),
            out.display().to_string()
        ))
    }

    /// Like the demo guest image (a new host key, debootstrap's timestamps),
    /// a build that writes the time into its artifact is not reproducible:
    /// two builds from scratch give two digests, and the check says so.
    #[tokio::test]
    async fn a_build_that_embeds_its_time_fails_reproducibility_from_scratch() {
        let dir = tempfile::tempdir().unwrap();
        let script = fake_builder(dir.path(), "date +%s%N");
        let out = dir.path().join("image");
        let s = fake_spec(&script, &out, "reproducible = true\nscratch_env = \"FAKE_CACHE\"");
        let v = run(&s, &ProbeContext::for_tests(30)).await;
        assert!(!v.pass, "{v:?}");
        assert!(v.found.contains("not reproducible: sha256:"), "{v:?}");
        assert_eq!(v.evidence.matches("from scratch: FAKE_CACHE = ").count(), 2, "{v:?}");
        // Both scratch caches were removed.
        for line in v.evidence.lines().filter(|l| l.contains("from scratch:")) {
            let path = line.split(" = ").nth(1).unwrap().split(' ').next().unwrap();
            assert!(!std::path::Path::new(path).exists(), "{path} left behind");
        }
    }

    #[tokio::test]
    async fn two_identical_builds_from_scratch_pass() {
        let dir = tempfile::tempdir().unwrap();
        let script = fake_builder(dir.path(), "echo same bytes");
        let out = dir.path().join("image");
        let s = fake_spec(&script, &out, "reproducible = true\nscratch_env = \"FAKE_CACHE\"");
        let v = run(&s, &ProbeContext::for_tests(30)).await;
        assert!(v.pass, "{v:?}");
        assert!(v.found.contains("both sha256:"), "{v:?}");
        assert_eq!(v.metrics["build_cached"], 0.0);
    }

    /// Without `scratch_env` a warm cache answers both runs: not two builds.
    #[tokio::test]
    async fn a_reproducibility_check_answered_by_the_cache_fails() {
        let dir = tempfile::tempdir().unwrap();
        let script = fake_builder(dir.path(), "echo same bytes");
        let out = dir.path().join("image");
        let mut s = fake_spec(&script, &out, "reproducible = true");
        s.env.insert("FAKE_CACHE".into(), dir.path().join("cache").display().to_string());
        let v = run(&s, &ProbeContext::for_tests(30)).await;
        assert!(!v.pass, "{v:?}");
        assert!(v.found.contains("the second build came from a cache"), "{v:?}");
    }

    /// A cache hit is reported as one, with the real build's time, which is
    /// what the budget judges: a cached slow build fails a budget its
    /// lookup would meet.
    #[tokio::test]
    async fn a_cache_hit_reports_and_judges_the_real_build() {
        let dir = tempfile::tempdir().unwrap();
        let script = fake_builder(dir.path(), "echo image");
        let out = dir.path().join("image");
        let cache = dir.path().join("cache");
        let mut s = fake_spec(&script, &out, "");
        s.env.insert("FAKE_CACHE".into(), cache.display().to_string());
        let ctx = ProbeContext::for_tests(30);
        let v = run(&s, &ctx).await;
        assert!(v.pass && v.metrics["build_cached"] == 0.0, "{v:?}");
        let v = run(&s, &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.found.contains("cached, built at "), "{v:?}");
        assert!(v.evidence.contains("cached, built at "), "{v:?}");
        assert_eq!(v.metrics["build_seconds"], 1.0);
        assert_eq!(v.metrics["build_cached"], 1.0);
        // The same cache, recording a 20-minute build.
        std::fs::write(
            cache.join("fake/build_info"),
            "build_started=2026-12-01T10:00:00Z\nbuild_finished=2026-12-01T10:20:00Z\nbuild_seconds=1200\n",
        )
        .unwrap();
        let v = run(&s, &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(
            v.found.contains("cached, built at 2026-12-01T10:20:00Z (the build ran 1200s from 2026-12-01T10:00:00Z), over the 900s budget"),
            "{v:?}"
        );
        assert_eq!(v.metrics["build_seconds"], 1200.0);
    }
}
