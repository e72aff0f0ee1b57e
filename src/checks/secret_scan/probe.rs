//! Walks the trees on this host (symlinks are not followed), skipping the
//! excluded names and paths, binary files and files over the size limit,
//! and runs the rules on each text file, off the async runtime and bounded
//! by the deadline.

use std::path::Path;
use std::time::Instant;

use super::judge::{scan_text, Entropy, Facts};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::text::{component_match, glob_match};

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let spec2 = spec.clone();
    let deadline = ctx.deadline;
    let scanned = tokio::time::timeout(
        ctx.remaining(),
        tokio::task::spawn_blocking(move || scan(&spec2, deadline)),
    )
    .await;
    match scanned {
        Ok(Ok(facts)) => Ok(facts),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the scan did not finish before the deadline".into()),
    }
}

fn scan(spec: &Spec, deadline: Instant) -> Facts {
    let mut facts = Facts::default();
    let entropy = Entropy {
        min_length: spec.entropy_min_length,
        min_bits: spec.entropy_min_bits,
    };
    for root in &spec.paths {
        match std::fs::symlink_metadata(root) {
            Ok(m) if m.is_dir() => walk(spec, root, "", deadline, entropy, &mut facts),
            Ok(m) if m.is_file() => {
                let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                scan_file(spec, root, &name, entropy, &mut facts);
            }
            Ok(_) => facts.errors.push(format!("{}: not a file or directory", root.display())),
            Err(e) => facts.errors.push(format!("{}: cannot read: {e}", root.display())),
        }
    }
    facts
}

fn excluded(spec: &Spec, name: &str, relative: &str) -> bool {
    spec.exclude.iter().any(|pattern| {
        if pattern.contains('/') {
            glob_match(pattern, relative)
        } else {
            component_match(pattern, name)
        }
    })
}

fn walk(spec: &Spec, dir: &Path, relative: &str, deadline: Instant, entropy: Entropy, facts: &mut Facts) {
    if facts.incomplete.is_some() {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            facts.errors.push(format!("{}: cannot list: {e}", dir.display()));
            return;
        }
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if Instant::now() >= deadline {
            facts.incomplete = Some(format!("the deadline passed after {} files", facts.files_scanned));
            return;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if relative.is_empty() { name.clone() } else { format!("{relative}/{name}") };
        if excluded(spec, &name, &child) {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk(spec, &entry.path(), &child, deadline, entropy, facts);
        } else if kind.is_file() {
            scan_file(spec, &entry.path(), &child, entropy, facts);
        }
    }
}

fn scan_file(spec: &Spec, path: &Path, relative: &str, entropy: Entropy, facts: &mut Facts) {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > spec.max_file_size.0 {
        facts.skipped_large.push(relative.to_string());
        return;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            facts.errors.push(format!("{relative}: cannot read: {e}"));
            return;
        }
    };
    if bytes.iter().take(8192).any(|b| *b == 0) {
        facts.skipped_binary += 1;
        return;
    }
    facts.files_scanned += 1;
    facts.bytes_scanned += bytes.len() as u64;
    let text = String::from_utf8_lossy(&bytes);
    facts.findings.extend(scan_text(relative, &text, entropy));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::secret_scan::run;

    fn spec(root: &Path, extra: &str) -> Spec {
        toml::from_str(&format!("paths = [{:?}]\n{extra}", root.display().to_string())).unwrap()
    }

    /// A tree with a planted token fails naming file, line and rule; the
    /// token itself is nowhere in the verdict.
    #[tokio::test]
    async fn a_planted_secret_fails_and_excluded_or_binary_files_are_skipped() {
        let ctx = ProbeContext::for_tests(10);
        let dir = tempfile::tempdir().unwrap();
        let token = format!("{}{}", "glpat", "-Q1w2E3r4T5y6U7i8O9p0aSd");
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("README.md"), "nothing here\n").unwrap();
        std::fs::write(dir.path().join("config/ci.env"), format!("# runner\nGITLAB_TOKEN={token}\n")).unwrap();
        let v = run(&spec(dir.path(), ""), &ctx).await;
        assert!(!v.pass && v.found.contains("1 findings: config/ci.env:2 gitlab-token glpat-… (29 chars)"), "{v:?}");
        let all = format!("{} {} {}", v.found, v.evidence, v.expected);
        assert!(!all.contains(&token), "{all}");

        // The same file under an excluded directory, as binary, or too large.
        let v = run(&spec(dir.path(), "exclude = [\"config\"]"), &ctx).await;
        assert!(v.pass && v.found.starts_with("1 files"), "{v:?}");
        let v = run(&spec(dir.path(), "exclude = [\"config/*.env\"]"), &ctx).await;
        assert!(v.pass, "{v:?}");
        std::fs::write(dir.path().join("config/ci.env"), format!("\0bin\nGITLAB_TOKEN={token}\n")).unwrap();
        let v = run(&spec(dir.path(), ""), &ctx).await;
        assert!(v.pass && v.metrics.get("files_scanned") == Some(&1.0), "{v:?}");
        std::fs::write(dir.path().join("config/ci.env"), format!("GITLAB_TOKEN={token}\n{}", "x".repeat(2000))).unwrap();
        let v = run(&spec(dir.path(), "max_file_size = \"1KiB\""), &ctx).await;
        assert!(v.pass && v.evidence.contains("not scanned (over 1024 bytes): config/ci.env"), "{v:?}");

        let v = run(&spec(&dir.path().join("absent"), ""), &ctx).await;
        assert!(!v.pass && v.found.contains("cannot read"), "{v:?}");
    }

    /// The repository itself holds no secret beyond its allow-list: the
    /// same scan health-checks/config.toml runs, with its exclusions.
    #[tokio::test]
    async fn this_checkout_is_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let profile: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("health-checks/config.toml")).unwrap()).unwrap();
        let table = profile["check"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|c| c.get("secret_scan"))
            .expect("config.toml has a secret_scan check")
            .clone();
        let mut spec: Spec = table.try_into().unwrap();
        spec.paths = vec![root.to_path_buf()];
        let v = run(&spec, &ProbeContext::for_tests(30)).await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.contains("allowed nixos/facts.nix:"), "{v:?}");
    }
}
