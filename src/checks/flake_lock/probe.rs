//! Reads the lock file on this host, off the async runtime and bounded by
//! the deadline, with the clock the age is measured against; runs `nix
//! flake metadata --json` on the flake the file is in, through the check's
//! executor (this machine only: the file is read here).

use super::judge::{Facts, Metadata};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::os::{CommandSpec, ExecError};

/// Bigger than any real lock file; a larger one is not read.
const MAX_BYTES: u64 = 4 << 20;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let path = spec.path.clone();
    let read = tokio::time::timeout(
        ctx.remaining(),
        tokio::task::spawn_blocking(move || read_bounded(&path)),
    )
    .await;
    let text = match read {
        Ok(Ok(Ok(text))) => text,
        Ok(Ok(Err(e))) => return Err(format!("cannot read {}: {e}", spec.path.display())),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("reading the lock file did not finish before the deadline".into()),
    };
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let metadata = metadata(spec, ctx).await;
    Ok(Facts {
        text,
        now_unix,
        metadata,
    })
}

async fn metadata(spec: &Spec, ctx: &ProbeContext) -> Metadata {
    if !spec.metadata {
        return Metadata::Skipped("metadata = false".into());
    }
    if !ctx.executor.is_local() {
        return Metadata::Skipped(format!(
            "the lock file is read on this machine, the check's host is {}",
            ctx.executor.describe()
        ));
    }
    let flake = match spec.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
        _ => ".".to_string(),
    };
    let cmd = CommandSpec::new(
        &spec.nix,
        &[
            "--extra-experimental-features",
            "nix-command flakes",
            "flake",
            "metadata",
            "--json",
            // Never writes the lock: a lock that needs changing fails.
            "--no-update-lock-file",
            // Fetches nothing: a complete lock needs no input.
            "--offline",
            &flake,
        ],
    );
    match ctx.executor.run(&cmd, ctx.deadline).await {
        Ok(out) if out.exit_code == Some(0) => Metadata::Ran(out.stdout_text()),
        Ok(out) => Metadata::Failed(format!(
            "exit {}: {}",
            out.exit_code.map_or("none".into(), |c| c.to_string()),
            crate::text::excerpt(out.stderr_text().trim(), 1500)
        )),
        Err(ExecError::Spawn(e)) if e.contains("No such file") || e.contains("not found") => {
            Metadata::Skipped(format!("{} not installed", spec.nix))
        }
        Err(e) => Metadata::Failed(format!("`{}`: {e}", cmd.display())),
    }
}

fn read_bounded(path: &std::path::Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than a lock file's {MAX_BYTES}"
        )));
    }
    std::fs::read_to_string(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::flake_lock::run;

    fn spec(path: &std::path::Path, extra: &str) -> Spec {
        toml::from_str(&format!("path = {:?}\n{extra}", path.display().to_string())).unwrap()
    }

    #[tokio::test]
    async fn the_projects_own_lock_pins_every_input_and_a_missing_one_fails() {
        let ctx = ProbeContext::for_tests(5);
        let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flake.lock");
        let v = run(
            &spec(&lock, "inputs = [\"nixpkgs\", \"crane\", \"flake-utils\", \"advisory-db\"]"),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        assert!(v.metrics.contains_key("inputs"), "{v:?}");
        if v.found.contains("skipped the metadata comparison") {
            eprintln!("nix is not installed: the metadata comparison did not run");
        } else {
            assert!(v.evidence.contains("nix flake metadata locks the same 5 nodes"), "{v:?}");
        }

        let v = run(&spec(&lock, "inputs = [\"sops-nix\"]"), &ctx).await;
        assert!(!v.pass && v.found.contains("no root input `sops-nix`"), "{v:?}");

        let dir = tempfile::tempdir().unwrap();
        let v = run(&spec(&dir.path().join("flake.lock"), ""), &ctx).await;
        assert!(!v.pass && v.found.contains("cannot read"), "{v:?}");
    }

    #[tokio::test]
    async fn without_nix_the_metadata_comparison_is_skipped_and_said() {
        let ctx = ProbeContext::for_tests(5);
        let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flake.lock");
        let v = run(&spec(&lock, "nix = \"/nonexistent/bin/nix\""), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(
            v.found.ends_with("; /nonexistent/bin/nix not installed: skipped the metadata comparison"),
            "{v:?}"
        );
        // A flake Nix cannot read (no flake.nix beside the lock) fails.
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&lock, dir.path().join("flake.lock")).unwrap();
        let v = run(&spec(&dir.path().join("flake.lock"), ""), &ctx).await;
        if !v.found.contains("skipped the metadata comparison") {
            assert!(!v.pass && v.found.contains("nix flake metadata failed"), "{v:?}");
        }
    }
}
