//! Invariants of the source tree that review would miss: judges are pure,
//! the layers import only downwards, and no two modules import each other.
//!
//! The source is read as text: `use` declarations and `crate::`/`super::`
//! paths are the imports; test modules (`#[cfg(test)]` to the end of a
//! file, `tests.rs`, `testutil.rs`) are left out, since tests may build
//! what they check from any layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file's text without its test module and without comments.
fn production_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_test_file(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("tests.rs" | "testutil.rs")
    )
}

/// The module path of a file: `src/checks/tcp/judge.rs` -> `checks::tcp::judge`.
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file that holds module `path` (or its longest existing prefix).
fn file_of(modules: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains_key(prefix))
}

/// Module paths named by the file's imports, made absolute.
fn imports(code: &str, me: &[String]) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    // `self` is the file's own module and `super` its parent, whether the
    // file is `a/b.rs` or `a/b/mod.rs`.
    let here: Vec<String> = me.to_vec();
    let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let starts_word = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        let base = if !starts_word {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            let mut base = parent.clone();
            let mut len = "super::".len();
            while code[i + len..].starts_with("super::") {
                base.pop();
                len += "super::".len();
            }
            Some((base, len))
        } else if rest.starts_with("self::") {
            Some((here.clone(), "self::".len()))
        } else {
            None
        };
        let Some((base, len)) = base else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let tail: String = code[i + len..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut path = base;
        path.extend(
            tail.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        found.insert(path);
        i += len + tail.len();
    }
    // `use child::...` and `pub use child::...` of a module's own children.
    for line in code.lines() {
        let line = line.trim_start();
        let line = line.strip_prefix("pub ").unwrap_or(line);
        if let Some(rest) = line.strip_prefix("use ") {
            let first: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !first.is_empty() && !["crate", "super", "self", "std"].contains(&first.as_str()) {
                let mut path = here.clone();
                path.push(first);
                found.insert(path);
            }
        }
    }
    found
}

/// The import graph between files: file module path -> imported file module paths.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files: Vec<PathBuf> = rust_files(&src())
        .into_iter()
        .filter(|p| !is_test_file(p))
        .collect();
    let modules: BTreeMap<Vec<String>, PathBuf> =
        files.iter().map(|p| (module_of(p), p.clone())).collect();
    let mut graph = BTreeMap::new();
    for (module, path) in &modules {
        let code = production_code(path);
        let targets: BTreeSet<Vec<String>> = imports(&code, module)
            .iter()
            .filter_map(|p| file_of(&modules, p))
            .filter(|t| t != module && !t.is_empty())
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

fn show(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

#[test]
fn judges_do_no_io_and_read_no_clock_or_environment() {
    let forbidden = [
        "tokio",
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "Instant::now",
        "SystemTime::now",
        "Utc::now",
        "Local::now",
    ];
    let mut problems = Vec::new();
    let checks = src().join("checks");
    for entry in std::fs::read_dir(&checks).unwrap() {
        let judge = entry.unwrap().path().join("judge.rs");
        if !judge.exists() {
            continue;
        }
        let code = production_code(&judge);
        for word in forbidden {
            if code.contains(word) {
                problems.push(format!("{} uses `{word}`", judge.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "judges must be pure (spec + facts -> verdict); move the I/O into probe.rs:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_kind_folder_has_spec_probe_judge_and_mod() {
    let checks = src().join("checks");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&checks).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for part in ["mod.rs", "spec.rs", "probe.rs", "judge.rs"] {
            if !dir.join(part).exists() {
                problems.push(format!("{} has no {part}", dir.display()));
            }
        }
        let probe = production_code(&dir.join("probe.rs"));
        if probe.contains("Verdict") {
            problems.push(format!(
                "{}/probe.rs names `Verdict`: a probe returns facts; the judge decides",
                dir.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_two_files_import_each_other_directly_or_in_a_circle() {
    let graph = graph();
    // A file is in a cycle when it can reach itself.
    let mut cycles = BTreeSet::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(Vec<String>, Vec<Vec<String>>)> =
            vec![(start.clone(), vec![start.clone()])];
        while let Some((node, trail)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    let mut circle: Vec<String> = trail.iter().map(|m| show(m)).collect();
                    let min = circle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, m)| (*m).clone())
                        .map(|(i, _)| i)
                        .unwrap_or(0);
                    circle.rotate_left(min);
                    cycles.insert(circle.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles (a child should import its siblings, e.g. `super::spec::Spec`, not what its parent re-exports):\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The layers, lowest first. A module may import its own layer's
/// infrastructure listed before it and anything of a lower layer, never a
/// higher one.
const LAYERS: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("text", &[]),
    ("digest", &[]),
    ("redact", &[]),
    ("os", &["error", "text"]),
    ("web", &["error", "text"]),
    ("sysinfo", &["os"]),
    ("vm", &["error", "text", "os"]),
    ("host", &["error", "text", "os"]),
    ("check", &["error", "text", "os", "vm"]),
    (
        "checks",
        &["error", "text", "digest", "os", "web", "vm", "check"],
    ),
    ("plan", &["error", "check"]),
    ("profile", &["error", "text", "check", "checks", "plan"]),
    (
        "run",
        &["error", "text", "os", "vm", "host", "check", "plan"],
    ),
    ("sign", &["error", "digest"]),
    ("exit", &["check"]),
    (
        "report",
        &[
            "error", "text", "digest", "redact", "sysinfo", "check", "checks", "profile", "plan",
            "run", "sign",
        ],
    ),
];

#[test]
fn layers_import_only_downwards() {
    let graph = graph();
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for (module, targets) in &graph {
        let Some(top) = module.first() else { continue };
        let Some(may) = allowed.get(top.as_str()) else {
            continue; // cli and the crate root may use everything
        };
        for target in targets {
            let Some(other) = target.first() else {
                continue;
            };
            if other != top && !may.contains(&other.as_str()) {
                problems.push(format!(
                    "{} imports {} (`{top}` may import only: {})",
                    show(module),
                    show(target),
                    if may.is_empty() {
                        "nothing".to_string()
                    } else {
                        may.join(", ")
                    }
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports against the layering:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let known: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).chain(["cli"]).collect();
    let missing: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .filter(|m| !known.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "give these modules a place in LAYERS: {missing:?}"
    );
}
