//! The bundle's manifest, pure: every member's name, SHA-256 and size, the
//! in-toto statement that signs them, and the comparison of a bundle's
//! members with the manifest (changed, missing, extra).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The manifest in the bundle (readable JSON).
pub const MANIFEST: &str = "manifest.json";
/// The manifest's signature: a DSSE envelope over the in-toto statement.
pub const MANIFEST_ENVELOPE: &str = "manifest.intoto.json";
pub const PREDICATE_TYPE: &str = "https://spinup-smoke.dev/proof-bundle/v1";

/// One member as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    /// hex SHA-256 of the member's bytes.
    pub sha256: String,
    pub size: u64,
}

/// Every member of a bundle but the manifest and its envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The member that is the run's transcript.
    pub transcript: String,
    /// Sorted by name.
    pub members: Vec<Entry>,
}

/// The manifest of `members` (name, bytes), sorted by name.
pub fn build(transcript: &str, members: &[(String, Vec<u8>)]) -> Manifest {
    let mut entries: Vec<Entry> = members
        .iter()
        .map(|(name, bytes)| Entry {
            name: name.clone(),
            sha256: hex_digest(bytes),
            size: bytes.len() as u64,
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Manifest {
        transcript: transcript.to_string(),
        members: entries,
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    let d = crate::digest::sha256_bytes(bytes);
    d.strip_prefix("sha256:").unwrap_or(&d).to_string()
}

/// The in-toto statement: the members are its subjects, the manifest its
/// predicate.
pub fn statement(manifest: &Manifest) -> serde_json::Value {
    let subjects: Vec<serde_json::Value> = manifest
        .members
        .iter()
        .map(|e| json!({ "name": e.name, "digest": { "sha256": e.sha256 } }))
        .collect();
    json!({
        "_type": crate::report::dsse::STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": manifest,
    })
}

/// The manifest a verified statement signs, checked against its subjects.
pub fn from_statement(statement: &serde_json::Value) -> Result<Manifest, String> {
    if statement.get("predicateType").and_then(|t| t.as_str()) != Some(PREDICATE_TYPE) {
        return Err(format!(
            "the statement's predicateType is not {PREDICATE_TYPE}"
        ));
    }
    let manifest: Manifest = statement
        .get("predicate")
        .cloned()
        .ok_or("the statement has no predicate")
        .and_then(|p| serde_json::from_value(p).map_err(|_| "the predicate is not a manifest"))
        .map_err(str::to_string)?;
    if statement != &self::statement(&manifest) {
        return Err("the statement's subjects are not the manifest's members".into());
    }
    if !manifest
        .members
        .iter()
        .any(|e| e.name == manifest.transcript)
    {
        return Err(format!(
            "the transcript `{}` is not a member",
            manifest.transcript
        ));
    }
    Ok(manifest)
}

/// What is wrong with one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// In the manifest, not in the bundle.
    Missing,
    /// In the bundle, not in the manifest.
    Extra,
    /// Its bytes are not the ones signed.
    Changed {
        expected_sha256: String,
        found_sha256: String,
        expected_size: u64,
        found_size: u64,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing => write!(f, "missing (the signed manifest lists it)"),
            Problem::Extra => write!(f, "extra (the signed manifest does not list it)"),
            Problem::Changed {
                expected_sha256,
                found_sha256,
                expected_size,
                found_size,
            } => write!(
                f,
                "changed (signed: sha256 {expected_sha256}, {expected_size} bytes; found: sha256 {found_sha256}, {found_size} bytes)"
            ),
        }
    }
}

/// Every member whose bytes, presence or absence disagree with `manifest`,
/// by name. `found` holds the bundle's members but the manifest files.
pub fn check(manifest: &Manifest, found: &BTreeMap<String, Vec<u8>>) -> Vec<(String, Problem)> {
    let mut problems = Vec::new();
    for entry in &manifest.members {
        match found.get(&entry.name) {
            None => problems.push((entry.name.clone(), Problem::Missing)),
            Some(bytes) => {
                let sha256 = hex_digest(bytes);
                let size = bytes.len() as u64;
                if sha256 != entry.sha256 || size != entry.size {
                    problems.push((
                        entry.name.clone(),
                        Problem::Changed {
                            expected_sha256: entry.sha256.clone(),
                            found_sha256: sha256,
                            expected_size: entry.size,
                            found_size: size,
                        },
                    ));
                }
            }
        }
    }
    for name in found.keys() {
        if !manifest.members.iter().any(|e| &e.name == name) {
            problems.push((name.clone(), Problem::Extra));
        }
    }
    problems.sort_by(|a, b| a.0.cmp(&b.0));
    problems
}

/// Whether `name` may name a member: relative, `/`-separated normal
/// components (no `..`, `.`, empty part, backslash or NUL).
pub fn safe_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an empty path".into());
    }
    if name.starts_with('/') {
        return Err("an absolute path".into());
    }
    if name.contains('\0') || name.contains('\\') {
        return Err("a path with a NUL or a backslash".into());
    }
    for part in name.split('/') {
        match part {
            ".." => return Err("a path with `..`".into()),
            "" | "." => return Err("a path with an empty or `.` component".into()),
            _ => {}
        }
    }
    Ok(())
}

/// The evidence files among `candidates` (names of files beside the
/// transcript) that a string of `transcript` names: the name stands alone
/// or after a `/`, and no path character follows it.
pub fn referenced<'a>(transcript: &serde_json::Value, candidates: &'a [String]) -> Vec<&'a str> {
    let mut texts = Vec::new();
    strings(transcript, &mut texts);
    let named = |name: &str| {
        texts.iter().any(|text| {
            text.match_indices(name).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let starts = match before {
                    None | Some('/') => true,
                    Some(c) => !(c.is_alphanumeric() || "._-".contains(c)),
                };
                starts && !after_is_path(text, at + name.len())
            })
        })
    };
    let mut found: Vec<&str> = candidates
        .iter()
        .map(String::as_str)
        .filter(|n| named(n))
        .collect();
    found.sort_unstable();
    found
}

fn after_is_path(text: &str, end: usize) -> bool {
    let mut rest = text[end..].chars();
    match rest.next() {
        None => false,
        // A sentence may end with the path: "... in x.log." still names x.log.
        Some('.') => rest.next().is_some_and(|c| c.is_alphanumeric()),
        Some(c) => c.is_alphanumeric() || "_-/".contains(c),
    }
}

fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
            .collect()
    }

    fn found(list: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        members(list).into_iter().collect()
    }

    #[test]
    fn the_manifest_lists_every_member_sorted_with_digest_and_size() {
        let m = build("t.json", &members(&[("t.json", "{}"), ("a.log", "abc")]));
        assert_eq!(
            m.members,
            vec![
                Entry {
                    name: "a.log".into(),
                    sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                        .into(),
                    size: 3,
                },
                Entry {
                    name: "t.json".into(),
                    sha256: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
                        .into(),
                    size: 2,
                },
            ]
        );
        let statement = statement(&m);
        assert_eq!(statement["subject"][0]["name"], "a.log");
        assert_eq!(
            statement["subject"][1]["digest"]["sha256"],
            m.members[1].sha256
        );
        assert_eq!(from_statement(&statement).unwrap(), m);
    }

    #[test]
    fn check_names_each_changed_missing_and_extra_member() {
        let m = build("t.json", &members(&[("t.json", "{}"), ("a.log", "abc")]));
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (&[("t.json", "{}"), ("a.log", "abc")], &[]),
            (
                &[("t.json", "{}"), ("a.log", "abd")],
                &[("a.log", "changed")],
            ),
            (
                &[("t.json", "{}"), ("a.log", "abcd")],
                &[("a.log", "changed")],
            ),
            (&[("t.json", "{}")], &[("a.log", "missing")]),
            (
                &[("t.json", "{}"), ("a.log", "abc"), ("x", "")],
                &[("x", "extra")],
            ),
            (
                &[("a.log", "abc"), ("b", "1")],
                &[("b", "extra"), ("t.json", "missing")],
            ),
        ];
        for (bundle, expect) in cases {
            let got: Vec<(String, String)> = check(&m, &found(bundle))
                .into_iter()
                .map(|(n, p)| {
                    let word = p.to_string().split(' ').next().unwrap().to_string();
                    (n, word)
                })
                .collect();
            let expect: Vec<(String, String)> = expect
                .iter()
                .map(|(n, w)| (n.to_string(), w.to_string()))
                .collect();
            assert_eq!(got, expect, "{bundle:?}");
        }
    }

    #[test]
    fn a_statement_that_disagrees_with_its_predicate_is_refused() {
        let m = build("t.json", &members(&[("t.json", "{}")]));
        let mut s = statement(&m);
        s["subject"][0]["digest"]["sha256"] = json!("00");
        assert!(from_statement(&s).unwrap_err().contains("subjects"));
        let mut s = statement(&m);
        s["predicateType"] = json!("https://example.com/other");
        assert!(from_statement(&s).unwrap_err().contains("predicateType"));
        let mut s = statement(&m);
        s["predicate"]["transcript"] = json!("other.json");
        s["predicate"]["members"] = json!(m.members);
        let s = {
            let m: Manifest = serde_json::from_value(s["predicate"].clone()).unwrap();
            statement(&m)
        };
        assert!(from_statement(&s).unwrap_err().contains("not a member"));
    }

    #[test]
    fn member_names_must_be_relative_and_plain() {
        for (name, ok) in [
            ("boot_transcript_1.json", true),
            ("evidence/vm-a-1-console.log", true),
            ("..", false),
            ("../evil", false),
            ("a/../../evil", false),
            ("/etc/passwd", false),
            ("./a", false),
            ("a//b", false),
            ("", false),
            ("a\\..\\b", false),
        ] {
            assert_eq!(safe_name(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn evidence_is_what_the_transcript_names() {
        let transcript = json!({
            "results": [
                { "evidence": "console log: artifacts/vm-boot-1-console.log\nconsole tail: ok" },
                { "evidence": ["see vm-job-2-console.log."] },
                { "found": "/tmp/x/vm-boot-10-console.log.old" }
            ]
        });
        let candidates: Vec<String> = [
            "vm-boot-1-console.log",
            "vm-job-2-console.log",
            "vm-boot-10-console.log",
            "vm-boot-1-qemu.log",
            "ole.log",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            referenced(&transcript, &candidates),
            vec!["vm-boot-1-console.log", "vm-job-2-console.log"]
        );
    }
}
