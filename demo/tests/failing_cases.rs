//! No check that cannot fail: every check id the demo runs (the profiles of
//! `spinup_smoke_demo::PROFILES`, whatever it lists) and every other check
//! in `health-checks/` and `scenarios/` (the binary's self-tests aside) has
//! an entry in `failing_cases.toml` naming the tests that make it FAIL for
//! the right reason, and each named test function exists. A new check
//! without a failing case breaks the build here. Fast: reads files only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("demo/ sits in the repository")
        .to_path_buf()
}

/// The profile files behind a `PROFILES` entry (a file, or a directory of them).
fn profile_files(entry: &Path) -> Vec<PathBuf> {
    if entry.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(entry)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        files
    } else {
        vec![entry.to_path_buf()]
    }
}

/// Every check id of `file`, with the file.
fn check_ids(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let doc: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    doc.get("check")
        .and_then(|c| c.as_array())
        .map(|checks| {
            checks
                .iter()
                .map(|c| {
                    c.get("id")
                        .and_then(|i| i.as_str())
                        .unwrap_or_else(|| panic!("{}: a check without id", file.display()))
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Check id -> the profile it is in: the demo's profiles, then the rest of
/// health-checks/ and scenarios/ without the binary's self-tests.
fn all_check_ids() -> (BTreeMap<String, String>, BTreeSet<String>) {
    let root = repo();
    let mut ids = BTreeMap::new();
    let mut demo_ids = BTreeSet::new();
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for entry in spinup_smoke_demo::PROFILES {
        for file in profile_files(&root.join(entry)) {
            files.push((file, true));
        }
    }
    for dir in ["health-checks", "scenarios"] {
        for file in profile_files(&root.join(dir)) {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("selftest") {
                files.push((file, false));
            }
        }
    }
    for (file, in_demo) in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for id in check_ids(&file) {
            if in_demo {
                demo_ids.insert(id.clone());
            }
            ids.entry(id).or_insert_with(|| rel.clone());
        }
    }
    (ids, demo_ids)
}

struct Registry {
    cases: BTreeMap<String, Vec<String>>,
    pending: BTreeMap<String, String>,
}

fn registry() -> Registry {
    let path = repo().join("demo/tests/failing_cases.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table = |name: &str| {
        doc.get(name)
            .and_then(|t| t.as_table())
            .cloned()
            .unwrap_or_default()
    };
    let cases = table("cases")
        .into_iter()
        .map(|(id, tests)| {
            let tests = tests
                .as_array()
                .unwrap_or_else(|| panic!("[cases] {id}: a list of \"path::function\""))
                .iter()
                .map(|t| {
                    t.as_str()
                        .unwrap_or_else(|| panic!("[cases] {id}: {t} is not a string"))
                        .to_string()
                })
                .collect();
            (id, tests)
        })
        .collect();
    let pending = table("pending")
        .into_iter()
        .map(|(id, why)| {
            let why = why
                .as_str()
                .unwrap_or_else(|| panic!("[pending] {id}: the reason, as a string"))
                .to_string();
            (id, why)
        })
        .collect();
    Registry { cases, pending }
}

/// Whether `file` holds a test function `name`: `fn name(` with `#[test]`
/// or `#[tokio::test]` among the attributes right above it.
fn has_test_fn(file: &str, name: &str) -> bool {
    let lines: Vec<&str> = file.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let line = line.trim_start();
        let declares = line.starts_with(&format!("fn {name}("))
            || line.starts_with(&format!("async fn {name}("));
        // The attribute block: up to the previous blank line or item end.
        declares
            && lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim())
                .take_while(|l| {
                    !(l.is_empty() || l.ends_with('}') || l.ends_with(';') || l.ends_with('{'))
                })
                .any(|l| l.starts_with("#[test]") || l.starts_with("#[tokio::test"))
    })
}

#[test]
fn every_check_has_a_test_that_makes_it_fail() {
    let (ids, demo_ids) = all_check_ids();
    assert!(
        !demo_ids.is_empty(),
        "the demo's profiles hold no checks: are PROFILES' paths right?"
    );
    let registry = registry();
    let mut problems = Vec::new();
    for (id, profile) in &ids {
        match (registry.cases.get(id), registry.pending.get(id)) {
            (None, None) => problems.push(format!(
                "{id} ({profile}) has no failing case: add a test that makes it FAIL for the right reason and name it under [cases] in demo/tests/failing_cases.toml"
            )),
            (Some(_), Some(_)) => problems.push(format!("{id} is under both [cases] and [pending]")),
            (Some(tests), None) if tests.is_empty() => {
                problems.push(format!("{id}: [cases] names no test"))
            }
            _ => {}
        }
    }
    for id in registry.cases.keys().chain(registry.pending.keys()) {
        if !ids.contains_key(id) {
            problems.push(format!(
                "{id} is in failing_cases.toml but in no profile: remove it"
            ));
        }
    }
    let mut sources: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (id, tests) in &registry.cases {
        for test in tests {
            let Some((path, name)) = test.rsplit_once("::") else {
                problems.push(format!("{id}: `{test}` is not \"path::function\""));
                continue;
            };
            let source = sources
                .entry(path.to_string())
                .or_insert_with(|| std::fs::read_to_string(repo().join(path)).ok());
            match source {
                None => problems.push(format!("{id}: {path} does not exist")),
                Some(text) if !has_test_fn(text, name) => {
                    problems.push(format!("{id}: {path} has no test function `{name}`"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if !registry.pending.is_empty() {
        eprintln!(
            "{} checks have no failing case yet (failing_cases.toml [pending]):",
            registry.pending.len()
        );
        for (id, why) in &registry.pending {
            eprintln!("  {id}: {why}");
        }
    }
    eprintln!(
        "{} checks ({} run by the demo), {} with failing cases, {} pending",
        ids.len(),
        demo_ids.len(),
        registry.cases.len(),
        registry.pending.len()
    );
}

#[test]
fn the_test_function_finder_needs_a_test_attribute() {
    let text = "#[test]\nfn a() {}\n\nfn b() {}\n\n#[tokio::test]\n#[cfg_attr(\n    missing = \"x\",\n    ignore = \"y\"\n)]\nasync fn c() {}\n";
    assert!(has_test_fn(text, "a"));
    assert!(!has_test_fn(text, "b"), "a helper is not a test");
    assert!(has_test_fn(text, "c"));
    assert!(!has_test_fn(text, "d"));
}
