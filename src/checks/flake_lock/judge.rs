//! Judges a flake.lock: every input reachable from the root node (through
//! `inputs`, following `follows` paths) is a node with a `locked` pin:
//! `narHash` always, and `rev` for version-control inputs (github, gitlab,
//! sourcehut, git, mercurial); the required inputs are root inputs; the
//! pins are no older than `max_age_days`; and Nix locks the same: each node
//! of `nix flake metadata --json` has the file's `narHash` and `rev`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::spec::Spec;
use crate::check::Verdict;

/// What the probe read.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub text: String,
    /// The clock the ages are measured against (seconds since the epoch).
    pub now_unix: i64,
    pub metadata: Metadata,
}

/// `nix flake metadata --json` on the flake.
#[derive(Debug, Clone, PartialEq)]
pub enum Metadata {
    /// Not run, and why ("nix not installed").
    Skipped(String),
    /// Nix ran and failed: exit code and stderr.
    Failed(String),
    /// Its stdout.
    Ran(String),
}

/// The pins Nix reports (`locks.nodes` of the metadata) against the lock
/// file's: the node names compared, or each difference.
pub fn compare_metadata(lock: &Value, metadata_json: &str) -> Result<Vec<String>, Vec<String>> {
    let metadata: Value = serde_json::from_str(metadata_json)
        .map_err(|e| vec![format!("nix flake metadata printed no JSON: {e}")])?;
    let Some(theirs) = metadata.pointer("/locks/nodes").and_then(Value::as_object) else {
        return Err(vec!["nix flake metadata has no locks.nodes".into()]);
    };
    let ours = lock.get("nodes").and_then(Value::as_object).cloned().unwrap_or_default();
    let root = |v: &Value| v.get("root").and_then(Value::as_str).unwrap_or("root").to_string();
    let (our_root, their_root) = (root(lock), metadata.get("locks").map(root).unwrap_or_default());
    let mut compared = Vec::new();
    let mut problems = Vec::new();
    for (name, node) in &ours {
        if *name == our_root {
            continue;
        }
        let Some(other) = theirs.get(name) else {
            problems.push(format!("`{name}` is in flake.lock but nix flake metadata does not lock it (flake.nix no longer has it: `nix flake lock`)"));
            continue;
        };
        for field in ["narHash", "rev"] {
            let a = node.pointer(&format!("/locked/{field}")).and_then(Value::as_str);
            let b = other.pointer(&format!("/locked/{field}")).and_then(Value::as_str);
            if a != b {
                problems.push(format!(
                    "`{name}` {field}: flake.lock {}, nix flake metadata {}",
                    a.unwrap_or("none"),
                    b.unwrap_or("none")
                ));
            }
        }
        compared.push(name.clone());
    }
    for name in theirs.keys() {
        if *name != their_root && !ours.contains_key(name) {
            problems.push(format!("nix flake metadata locks `{name}`, which flake.lock lacks (`nix flake lock`)"));
        }
    }
    if problems.is_empty() {
        Ok(compared)
    } else {
        Err(problems)
    }
}

/// Input types whose pin names a revision.
const REV_TYPES: [&str; 5] = ["github", "gitlab", "sourcehut", "git", "mercurial"];

/// One input reached from the root, by its path (`flake-utils/systems`).
#[derive(Debug, Default)]
struct Walk {
    pinned: Vec<String>,
    unpinned: Vec<String>,
    /// (input path, lastModified)
    modified: Vec<(String, i64)>,
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let file = spec.path.display().to_string();
    let expected = match spec.max_age_days {
        Some(days) => format!("{file} pins every input (rev and narHash), none older than {days} days"),
        None => format!("{file} pins every input (rev and narHash)"),
    };
    let lock: Value = match serde_json::from_str(&facts.text) {
        Ok(v) => v,
        Err(e) => return Verdict::fail(expected, format!("{file} is not valid JSON: {e}")),
    };
    let Some(nodes) = lock.get("nodes").and_then(Value::as_object) else {
        return Verdict::fail(expected, format!("{file} has no `nodes` object (not a flake.lock)"));
    };
    let root_name = lock.get("root").and_then(Value::as_str).unwrap_or("root");
    let Some(root) = nodes.get(root_name) else {
        return Verdict::fail(expected, format!("{file} has no root node `{root_name}`"));
    };
    let root_inputs = root.get("inputs").and_then(Value::as_object);
    let missing: Vec<&String> = spec
        .inputs
        .iter()
        .filter(|name| !root_inputs.is_some_and(|i| i.contains_key(name.as_str())))
        .collect();

    let mut walk = Walk::default();
    let mut seen = BTreeSet::new();
    visit(&lock, root, "", &mut walk, &mut seen, 0);

    let mut problems: Vec<String> = missing
        .iter()
        .map(|name| format!("no root input `{name}`"))
        .collect();
    problems.extend(walk.unpinned.iter().cloned());
    let oldest = walk.modified.iter().min_by_key(|(_, t)| *t);
    let age_days = |t: i64| (facts.now_unix - t).max(0) as f64 / 86_400.0;
    if let Some(days) = spec.max_age_days {
        let stale: Vec<String> = walk
            .modified
            .iter()
            .filter(|(_, t)| age_days(*t) > days as f64)
            .map(|(n, t)| format!("`{n}` locked {:.0} days ago", age_days(*t)))
            .collect();
        if !stale.is_empty() {
            problems.push(format!("stale pins: {}", stale.join(", ")));
        }
    }
    let mut evidence = Vec::new();
    let mut note = String::new();
    match &facts.metadata {
        Metadata::Skipped(why) => {
            note = format!("; {why}: skipped the metadata comparison");
            evidence.push(format!("{why}: skipped the metadata comparison"));
        }
        Metadata::Failed(e) => problems.push(format!("nix flake metadata failed: {e}")),
        Metadata::Ran(json) => match compare_metadata(&lock, json) {
            Ok(nodes) => evidence.push(format!(
                "nix flake metadata locks the same {} nodes: {}",
                nodes.len(),
                nodes.join(", ")
            )),
            Err(differences) => problems.extend(differences),
        },
    }
    let found = if problems.is_empty() {
        format!(
            "{} inputs pinned: {}{note}",
            walk.pinned.len(),
            walk.pinned.join(", ")
        )
    } else {
        problems.join("; ")
    };
    let mut verdict = if problems.is_empty() {
        Verdict::pass(expected, found)
    } else {
        Verdict::fail(expected, found)
    };
    verdict = verdict.with_metric("inputs", walk.pinned.len() as f64 + walk.unpinned.len() as f64);
    if let Some((name, t)) = oldest {
        verdict = verdict.with_metric("oldest_pin_age_days", (age_days(*t) * 10.0).round() / 10.0);
        evidence.insert(0, format!("oldest pin: {name} ({:.0} days)", age_days(*t)));
    }
    verdict.with_evidence(evidence.join("\n"))
}

/// Visits the inputs of `node`, each under `prefix/<name>`.
fn visit(
    lock: &Value,
    node: &Value,
    prefix: &str,
    walk: &mut Walk,
    seen: &mut BTreeSet<String>,
    depth: usize,
) {
    let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
        return;
    };
    for (name, target) in inputs {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let node_name = match target {
            Value::String(s) => Some(s.clone()),
            // `follows`: a path of input names from the root.
            Value::Array(steps) => resolve_follows(lock, steps),
            _ => None,
        };
        let Some(node_name) = node_name else {
            walk.unpinned.push(format!("`{path}` follows an input that does not exist"));
            continue;
        };
        // Each node is judged once; `follows` reuse an already judged one.
        if !seen.insert(node_name.clone()) {
            continue;
        }
        let Some(child) = lock.pointer(&format!("/nodes/{}", escape(&node_name))) else {
            walk.unpinned.push(format!("`{path}` names node `{node_name}`, which is not in the lock"));
            continue;
        };
        match pin_problem(child) {
            Some(problem) => walk.unpinned.push(format!("`{path}` is not pinned: {problem}")),
            None => walk.pinned.push(path.clone()),
        }
        if let Some(t) = child.pointer("/locked/lastModified").and_then(Value::as_i64) {
            walk.modified.push((path.clone(), t));
        }
        if depth < 32 {
            visit(lock, child, &path, walk, seen, depth + 1);
        }
    }
}

/// The node a `follows` path names, walking from the root node.
fn resolve_follows(lock: &Value, steps: &[Value]) -> Option<String> {
    let root = lock.get("root").and_then(Value::as_str).unwrap_or("root");
    let mut current = root.to_string();
    for step in steps {
        let node = lock.pointer(&format!("/nodes/{}", escape(&current)))?;
        current = match node.get("inputs")?.get(step.as_str()?)? {
            Value::String(s) => s.clone(),
            Value::Array(inner) => resolve_follows(lock, inner)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Why a node's pin is not enough, if it is not.
fn pin_problem(node: &Value) -> Option<String> {
    let Some(locked) = node.get("locked").and_then(Value::as_object) else {
        return Some(match node.get("original") {
            Some(_) => "only an `original` reference, no `locked` entry".into(),
            None => "no `locked` entry".into(),
        });
    };
    let kind = locked.get("type").and_then(Value::as_str).unwrap_or("");
    let has = |field: &str| {
        locked
            .get(field)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !has("narHash") {
        return Some(format!("{kind} input without `narHash`"));
    }
    if REV_TYPES.contains(&kind) && !has("rev") {
        return Some(format!("{kind} input without `rev`"));
    }
    None
}

/// A node name as a JSON pointer segment.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn check(spec_toml: &str, lock: &str, pass: bool, found_has: &str) {
        let spec: Spec = toml::from_str(&format!("path = \"flake.lock\"\n{spec_toml}")).unwrap();
        let v = judge(
            &spec,
            &Facts {
                text: lock.into(),
                now_unix: 1000 * DAY,
                metadata: Metadata::Skipped("not asked".into()),
            },
        );
        assert_eq!(v.pass, pass, "{v:?}");
        assert!(v.found.contains(found_has), "`{found_has}` not in {v:?}");
    }

    fn gh(rev: bool, modified_day: i64) -> String {
        format!(
            r#"{{"locked": {{"type": "github", "owner": "o", "repo": "r", {} "narHash": "sha256-x", "lastModified": {}}}, "original": {{"type": "github", "owner": "o", "repo": "r"}}}}"#,
            if rev { r#""rev": "abc","# } else { "" },
            modified_day * DAY
        )
    }

    #[test]
    fn every_input_pinned() {
        let good = format!(
            r#"{{"nodes": {{"root": {{"inputs": {{"nixpkgs": "nixpkgs", "utils": "utils"}}}},
            "nixpkgs": {n}, "utils": {{"inputs": {{"systems": "systems", "nixpkgs": ["nixpkgs"]}}, "locked": {{"type": "github", "rev": "r", "narHash": "sha256-y"}}}},
            "systems": {s}}}, "root": "root", "version": 7}}"#,
            n = gh(true, 990),
            s = gh(true, 900)
        );
        check("", &good, true, "3 inputs pinned: nixpkgs, utils, utils/systems");
        check("inputs = [\"nixpkgs\", \"utils\"]", &good, true, "3 inputs pinned");
        check("inputs = [\"crane\"]", &good, false, "no root input `crane`");
        check("max_age_days = 200", &good, true, "pinned");
        check("max_age_days = 50", &good, false, "stale pins: `utils/systems` locked 100 days ago");
    }

    #[test]
    fn an_unpinned_input_is_named() {
        let without_rev = format!(
            r#"{{"nodes": {{"root": {{"inputs": {{"nixpkgs": "nixpkgs"}}}}, "nixpkgs": {}}}, "root": "root"}}"#,
            gh(false, 1)
        );
        check("", &without_rev, false, "`nixpkgs` is not pinned: github input without `rev`");
        let original_only = r#"{"nodes": {"root": {"inputs": {"dev": "dev"}}, "dev": {"original": {"type": "path", "path": "/src/x"}}}, "root": "root"}"#;
        check("", original_only, false, "`dev` is not pinned: only an `original` reference");
        let nested = r#"{"nodes": {"root": {"inputs": {"a": "a"}}, "a": {"inputs": {"b": "b"}, "locked": {"type": "path", "path": "/x", "narHash": "sha256-z"}}, "b": {"locked": {"type": "tarball", "url": "https://x"}}}, "root": "root"}"#;
        check("", nested, false, "`a/b` is not pinned: tarball input without `narHash`");
        let dangling = r#"{"nodes": {"root": {"inputs": {"a": ["nope"]}}}, "root": "root"}"#;
        check("", dangling, false, "`a` follows an input that does not exist");
        let missing_node = r#"{"nodes": {"root": {"inputs": {"a": "gone"}}}, "root": "root"}"#;
        check("", missing_node, false, "names node `gone`, which is not in the lock");
        check("", "{", false, "is not valid JSON");
        check("", "{\"version\": 7}", false, "no `nodes` object");
    }

    /// `nix flake metadata --json` of this repository, captured with Nix
    /// 2.8 (the checkout's path replaced).
    const METADATA: &str = include_str!("../../../tests/data/nix-flake-metadata.json");
    const LOCK: &str = include_str!("../../../flake.lock");

    fn with_metadata(lock: &str, metadata: Metadata) -> Verdict {
        let spec: Spec = toml::from_str("path = \"flake.lock\"").unwrap();
        judge(
            &spec,
            &Facts {
                text: lock.into(),
                now_unix: 1_800_000_000,
                metadata,
            },
        )
    }

    #[test]
    fn nix_flake_metadata_is_compared_with_the_lock() {
        let v = with_metadata(LOCK, Metadata::Ran(METADATA.into()));
        assert!(v.pass, "{v:?}");
        assert!(
            v.evidence.contains("nix flake metadata locks the same 5 nodes: advisory-db, crane, flake-utils, nixpkgs, systems"),
            "{v:?}"
        );
        // Nix locks another nixpkgs than the file: the file is stale.
        let moved = METADATA.replacen(
            "531670d871c0e29724a02f3cbcac170adc65b58c",
            "0000000000000000000000000000000000000000",
            1,
        );
        let v = with_metadata(LOCK, Metadata::Ran(moved));
        assert!(!v.pass, "{v:?}");
        assert!(
            v.found.contains("`nixpkgs` rev: flake.lock 531670d871c0e29724a02f3cbcac170adc65b58c, nix flake metadata 0000000000000000000000000000000000000000"),
            "{v:?}"
        );
        // An input Nix locks that the file lacks.
        let mut extra: Value = serde_json::from_str(METADATA).unwrap();
        extra["locks"]["nodes"]["sops-nix"] = extra["locks"]["nodes"]["crane"].clone();
        let v = with_metadata(LOCK, Metadata::Ran(extra.to_string()));
        assert!(!v.pass && v.found.contains("nix flake metadata locks `sops-nix`, which flake.lock lacks"), "{v:?}");
        let v = with_metadata(LOCK, Metadata::Ran("warning: not json".into()));
        assert!(!v.pass && v.found.contains("printed no JSON"), "{v:?}");
        let v = with_metadata(LOCK, Metadata::Failed("exit 1: error: getting status of '/x/flake.nix'".into()));
        assert!(!v.pass && v.found.contains("nix flake metadata failed: exit 1"), "{v:?}");
        // Without Nix the lock is judged alone, and the result says so.
        let v = with_metadata(LOCK, Metadata::Skipped("nix not installed".into()));
        assert!(v.pass && v.found.ends_with("; nix not installed: skipped the metadata comparison"), "{v:?}");
        assert!(v.evidence.contains("nix not installed: skipped the metadata comparison"), "{v:?}");
    }
}
