//! Expands the globs and reads each file on this host, off the async
//! runtime and bounded by the deadline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::text::glob_match;

/// Bigger than any real secrets file; a larger one is not read.
const MAX_BYTES: u64 = 4 << 20;
/// How deep a glob's `**` descends.
const MAX_DEPTH: usize = 12;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let patterns = spec.files.clone();
    let deadline = ctx.deadline;
    let read = tokio::time::timeout(
        ctx.remaining(),
        tokio::task::spawn_blocking(move || gather(&patterns, deadline)),
    )
    .await;
    match read {
        Ok(Ok(facts)) => Ok(facts),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("reading the files did not finish before the deadline".into()),
    }
}

fn gather(patterns: &[String], deadline: Instant) -> Facts {
    let mut facts = Facts::default();
    for pattern in patterns {
        let paths = if pattern.contains(['*', '?']) {
            expand(pattern, deadline)
        } else {
            vec![PathBuf::from(pattern)]
        };
        if paths.is_empty() {
            facts.unmatched.push(pattern.clone());
        }
        for path in paths {
            if facts.files.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let read = read_bounded(&path).map_err(|e| e.to_string());
            facts.files.push((path, read));
        }
    }
    facts
}

/// The regular files a glob names: walks from its longest literal prefix.
fn expand(pattern: &str, deadline: Instant) -> Vec<PathBuf> {
    let components: Vec<&str> = pattern.split('/').collect();
    let literal = components
        .iter()
        .take_while(|c| !c.contains(['*', '?']))
        .count();
    let base = match components[..literal].join("/") {
        b if b.is_empty() && pattern.starts_with('/') => "/".to_string(),
        b if b.is_empty() => ".".to_string(),
        b => b,
    };
    let rest = components[literal..].join("/");
    let mut found = Vec::new();
    walk(Path::new(&base), "", &rest, 0, deadline, &mut found);
    found.sort();
    found
}

fn walk(dir: &Path, relative: &str, rest: &str, depth: usize, deadline: Instant, found: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH || Instant::now() >= deadline {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk(&entry.path(), &child, rest, depth + 1, deadline, found);
        } else if kind.is_file() && glob_match(rest, &child) {
            found.push(entry.path());
        }
    }
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than {MAX_BYTES}"
        )));
    }
    std::fs::read_to_string(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::sops::run;

    fn data(name: &str) -> String {
        format!("{}/tests/data/sops/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn spec(files: &[String]) -> Spec {
        Spec {
            files: files.to_vec(),
        }
    }

    /// The fixtures are real sops 3.11 files encrypted with age
    /// (scripts/gen-sops-fixtures.sh).
    #[tokio::test]
    async fn real_sops_files_pass_and_a_plaintext_value_fails() {
        let ctx = ProbeContext::for_tests(5);
        let v = run(&spec(&[data("encrypted.yaml"), data("encrypted.json")]), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert_eq!(v.metrics.get("files"), Some(&2.0), "{v:?}");

        let v = run(&spec(&[data("encrypted.*")]), &ctx).await;
        assert!(v.pass && v.found.contains("2 files"), "{v:?}");

        let v = run(&spec(&[data("plaintext-leaf.yaml")]), &ctx).await;
        assert!(!v.pass && v.found.contains("plaintext-leaf.yaml: plaintext value at `database.port`"), "{v:?}");
        assert!(!v.found.contains("5432"), "the value itself is never shown: {v:?}");

        let v = run(&spec(&[data("edited-plaintext.yaml")]), &ctx).await;
        assert!(!v.pass && v.found.contains("plaintext value at `database.password`"), "{v:?}");
        assert!(!v.found.contains("hunter2"), "{v:?}");

        let v = run(&spec(&[data("no-metadata.yaml")]), &ctx).await;
        assert!(!v.pass && v.found.contains("no `sops` metadata"), "{v:?}");

        let v = run(&spec(&[data("no-mac.yaml")]), &ctx).await;
        assert!(!v.pass && v.found.contains("no `sops.mac`"), "{v:?}");

        let v = run(&spec(&[data("*.toml")]), &ctx).await;
        assert!(!v.pass && v.found.contains("no file matches"), "{v:?}");

        let v = run(&spec(&[data("absent.yaml")]), &ctx).await;
        assert!(!v.pass && v.found.contains("absent.yaml: cannot read"), "{v:?}");
    }
}
