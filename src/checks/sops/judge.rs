//! Judges sops files: each parses (JSON for `.json`, else YAML), has a
//! top-level `sops` map with a `mac` (itself `ENC[...]`), `lastmodified`
//! and at least one recipient (`age`, `pgp`, `kms`, `gcp_kms`, `azure_kv`,
//! `hc_vault`), and every value outside `sops` is an `ENC[...]` string.
//! Nothing is excused: a key left plaintext by `unencrypted_suffix` or a
//! regex is a plaintext value. Found names the file and the key path, never
//! the value. Null values hold nothing and pass.

use std::path::PathBuf;

use super::spec::Spec;
use crate::check::Verdict;

/// What the probe read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Each file (listed, or matched by a glob) and its text.
    pub files: Vec<(PathBuf, Read)>,
    /// Globs that matched no file.
    pub unmatched: Vec<String>,
}

pub type Read = Result<String, String>;

/// A parsed document: only its shape matters.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Str(String),
    /// A number, boolean or alias: never encrypted by sops.
    Other,
    Null,
}

/// Recipient kinds of the sops metadata.
const RECIPIENTS: [&str; 6] = ["age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"];

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let expected = "every file has sops metadata (mac, lastmodified, a recipient) and only ENC[...] values";
    if spec.files.is_empty() {
        return Verdict::fail(expected, "no file listed (`files` is empty)");
    }
    let mut problems: Vec<String> = facts
        .unmatched
        .iter()
        .map(|g| format!("no file matches `{g}`"))
        .collect();
    let mut encrypted_values = 0usize;
    let mut recipients = Vec::new();
    for (path, read) in &facts.files {
        let name = path.display();
        let text = match read {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{name}: cannot read: {e}"));
                continue;
            }
        };
        let is_json = path.extension().is_some_and(|e| e == "json");
        let doc = match parse(text, is_json) {
            Ok(doc) => doc,
            Err(e) => {
                problems.push(format!("{name}: not valid {}: {e}", if is_json { "JSON" } else { "YAML" }));
                continue;
            }
        };
        match file_report(&doc) {
            Ok(report) => {
                encrypted_values += report.encrypted;
                recipients.push(format!("{name}: {}", report.recipients.join(", ")));
            }
            Err(file_problems) => {
                problems.extend(file_problems.into_iter().map(|p| format!("{name}: {p}")));
            }
        }
    }
    let files = facts.files.len();
    let verdict = if problems.is_empty() {
        Verdict::pass(
            expected,
            format!("{files} files encrypted, {encrypted_values} values ENC[...]"),
        )
    } else {
        Verdict::fail(expected, problems.join("; "))
    };
    verdict
        .with_evidence(recipients.join("\n"))
        .with_metric("files", files as f64)
        .with_metric("encrypted_values", encrypted_values as f64)
}

struct FileReport {
    encrypted: usize,
    recipients: Vec<String>,
}

/// One file's encrypted value count and recipient kinds, or its problems.
fn file_report(doc: &Node) -> Result<FileReport, Vec<String>> {
    let Node::Map(top) = doc else {
        return Err(vec!["not a map at the top level (no `sops` metadata)".into()]);
    };
    let mut problems = Vec::new();
    let mut recipients = Vec::new();
    match top.iter().find(|(k, _)| k == "sops") {
        None => problems.push("no `sops` metadata (not encrypted with sops)".into()),
        Some((_, Node::Map(meta))) => {
            let get = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            match get("mac") {
                Some(Node::Str(mac)) if is_encrypted(mac) => {}
                Some(_) => problems.push("`sops.mac` is not an ENC[...] value".into()),
                None => problems.push("no `sops.mac` (the file's integrity cannot be checked)".into()),
            }
            match get("lastmodified") {
                Some(Node::Str(s)) if !s.is_empty() => {}
                _ => problems.push("no `sops.lastmodified`".into()),
            }
            for kind in RECIPIENTS {
                if let Some(Node::List(items)) = get(kind) {
                    if !items.is_empty() {
                        recipients.push(format!("{} {kind}", items.len()));
                    }
                }
            }
            if recipients.is_empty() {
                problems.push(format!(
                    "no recipient in `sops` (none of {})",
                    RECIPIENTS.join(", ")
                ));
            }
        }
        Some(_) => problems.push("`sops` is not a map".into()),
    }
    let mut plaintext = Vec::new();
    let mut encrypted = 0;
    for (key, value) in top.iter().filter(|(k, _)| k != "sops") {
        leaves(value, key, &mut encrypted, &mut plaintext);
    }
    if let Some(first) = plaintext.first() {
        problems.push(if plaintext.len() == 1 {
            format!("plaintext value at `{first}`")
        } else {
            format!(
                "plaintext value at `{first}` and {} more: {}",
                plaintext.len() - 1,
                plaintext[1..].iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
            )
        });
    }
    if problems.is_empty() {
        Ok(FileReport { encrypted, recipients })
    } else {
        Err(problems)
    }
}

/// Counts the encrypted leaves under `node` and records the key path of
/// each plaintext one.
fn leaves(node: &Node, path: &str, encrypted: &mut usize, plaintext: &mut Vec<String>) {
    match node {
        Node::Map(entries) => {
            for (k, v) in entries {
                leaves(v, &format!("{path}.{k}"), encrypted, plaintext);
            }
        }
        Node::List(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, &format!("{path}[{i}]"), encrypted, plaintext);
            }
        }
        Node::Str(s) if is_encrypted(s) => *encrypted += 1,
        Node::Null => {}
        Node::Str(_) | Node::Other => plaintext.push(path.to_string()),
    }
}

/// A sops-encrypted value: `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]`.
fn is_encrypted(value: &str) -> bool {
    value.starts_with("ENC[AES256_GCM,")
        && value.ends_with(']')
        && value.contains("data:")
        && value.contains("iv:")
        && value.contains("tag:")
}

/// Parses a document into its shape.
pub fn parse(text: &str, json: bool) -> Result<Node, String> {
    if json {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return Ok(from_json(&value));
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.as_slice() {
        [] => Ok(Node::Null),
        [doc] => Ok(from_yaml(doc)),
        more => Err(format!("{} documents; a sops file holds one", more.len())),
    }
}

fn from_json(value: &serde_json::Value) -> Node {
    use serde_json::Value;
    match value {
        Value::Object(map) => Node::Map(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
        Value::Array(items) => Node::List(items.iter().map(from_json).collect()),
        Value::String(s) => Node::Str(s.clone()),
        Value::Null => Node::Null,
        Value::Bool(_) | Value::Number(_) => Node::Other,
    }
}

fn from_yaml(value: &yaml_rust2::Yaml) -> Node {
    use yaml_rust2::Yaml;
    match value {
        Yaml::Hash(map) => Node::Map(
            map.iter()
                .map(|(k, v)| (yaml_key(k), from_yaml(v)))
                .collect(),
        ),
        Yaml::Array(items) => Node::List(items.iter().map(from_yaml).collect()),
        Yaml::String(s) => Node::Str(s.clone()),
        Yaml::Null => Node::Null,
        _ => Node::Other,
    }
}

fn yaml_key(key: &yaml_rust2::Yaml) -> String {
    use yaml_rust2::Yaml;
    match key {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENC: &str = "ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]";

    fn meta(extra: &str) -> String {
        format!("sops:\n  age:\n    - recipient: age1xyz\n      enc: x\n  lastmodified: \"2026-01-01T00:00:00Z\"\n  mac: {ENC}\n{extra}")
    }

    fn check(yaml: &str, pass: bool, found_has: &str) {
        let spec = Spec {
            files: vec!["s.yaml".into()],
        };
        let facts = Facts {
            files: vec![(PathBuf::from("s.yaml"), Ok(yaml.to_string()))],
            unmatched: vec![],
        };
        let v = judge(&spec, &facts);
        assert_eq!(v.pass, pass, "{yaml}\n{v:?}");
        assert!(v.found.contains(found_has), "`{found_has}` not in {v:?}");
    }

    #[test]
    fn metadata_and_values() {
        let ok = format!("a: {ENC}\nb:\n  c:\n    - {ENC}\n    - {ENC}\nn: null\n{}", meta(""));
        check(&ok, true, "1 files encrypted, 3 values ENC[...]");
        check(
            &format!("a: {ENC}\nb:\n  c:\n    - {ENC}\n    - plain-token-value\n{}", meta("")),
            false,
            "s.yaml: plaintext value at `b.c[1]`",
        );
        check(&format!("port: 5432\n{}", meta("")), false, "plaintext value at `port`");
        check(
            &format!("x: 1\ny: true\n{}", meta("")),
            false,
            "plaintext value at `x` and 1 more: `y`",
        );
        check(&format!("a: \"ENC[not really]\"\n{}", meta("")), false, "plaintext value at `a`");
        check("a: secret\n", false, "no `sops` metadata");
        check(&format!("a: {ENC}\nsops:\n  lastmodified: x\n  mac: {ENC}\n"), false, "no recipient in `sops`");
        check(&format!("a: {ENC}\nsops:\n  age: []\n  lastmodified: x\n  mac: {ENC}\n"), false, "no recipient");
        check(&format!("a: {ENC}\nsops:\n  pgp: [{{fp: x}}]\n  lastmodified: x\n"), false, "no `sops.mac`");
        check(&format!("a: {ENC}\nsops:\n  pgp: [{{fp: x}}]\n  mac: plain\n  lastmodified: x\n"), false, "`sops.mac` is not an ENC");
        check(&format!("a: {ENC}\nsops:\n  kms: [{{arn: x}}]\n  mac: {ENC}\n"), false, "no `sops.lastmodified`");
        check("- a\n- b\n", false, "not a map at the top level");
        check("a: [unclosed\n", false, "not valid YAML");
        check("a: 1\n---\nb: 2\n", false, "2 documents");
    }

    #[test]
    fn json_files_and_missing_ones() {
        let spec = Spec {
            files: vec!["s.json".into(), "*.yaml".into()],
        };
        let json = format!(r#"{{"a": "{ENC}", "sops": {{"age": [{{"recipient": "age1"}}], "lastmodified": "t", "mac": "{ENC}"}}}}"#);
        let facts = Facts {
            files: vec![(PathBuf::from("s.json"), Ok(json))],
            unmatched: vec!["*.yaml".into()],
        };
        let v = judge(&spec, &facts);
        assert!(!v.pass && v.found == "no file matches `*.yaml`", "{v:?}");
        let facts = Facts {
            unmatched: vec![],
            ..facts
        };
        assert!(judge(&spec, &facts).pass);
        let v = judge(&Spec { files: vec![] }, &Facts::default());
        assert!(!v.pass && v.found.contains("no file listed"), "{v:?}");
    }
}
