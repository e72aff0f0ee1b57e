//! The profiles in health-checks/ read as the demo contract promises: every
//! `${var}` and `${secret:...}` is one the target file defines, every check
//! has a description and a hint, ids follow the file's service, and every
//! probe table of a known kind is valid after interpolation. Once every kind
//! the profiles use is built in, the whole set must load with the real loader.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use spinup_smoke::checks::ProbeSpec;

const CONTRACT_VARS: &[(&str, &str)] = &[
    ("host", "127.0.0.1"),
    ("postgres.host", "127.0.0.1"),
    ("postgres.port", "54321"),
    ("postgres.admin_user", "rave_admin"),
    ("postgres.data_dir", "/demo/postgres/data"),
    ("postgres.databases", "gitlab,synapse,grafana"),
    ("synapse.url", "http://127.0.0.1:8008"),
    ("synapse.server_name", "rave.local"),
    (
        "synapse.metrics_url",
        "http://127.0.0.1:9000/_synapse/metrics",
    ),
    ("synapse.operator_user", "operator"),
    ("idp.issuer", "http://127.0.0.1:3000"),
    ("idp.test_user", "alice"),
    ("prometheus.url", "http://127.0.0.1:9090"),
    ("tls_front.host", "rave.local"),
    ("tls_front.address", "127.0.0.1:3002"),
    ("tls_front.url", "https://127.0.0.1:3002"),
    ("tls_front.ca_file", "/demo/tls/ca.pem"),
    ("gitlab.url", "http://127.0.0.1:8080"),
    ("gitlab.sign_in_offers", "/users/auth/openid_connect"),
    ("grafana.url", "http://127.0.0.1:3001"),
    ("grafana.oauth_provider", "generic_oauth"),
    ("containers.socket", "unix:///demo/containers/podman.sock"),
    ("containers.image", "localhost/spinup-smoke/busybox:demo"),
];

const CONTRACT_SECRETS: &[&str] = &[
    "postgres_admin_password",
    "gitlab_db_password",
    "synapse_db_password",
    "grafana_db_password",
    "synapse_admin_password",
    "synapse_operator_password",
    "synapse_registration_secret",
    "idp_test_password",
    "gitlab_token",
];

/// Kinds the profiles use that another part of the code base provides.
const KINDS_FROM_ELSEWHERE: &[&str] = &["http", "tls", "dns", "command"];

fn profiles() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("health-checks");
    let mut files: Vec<PathBuf> = [
        "postgres",
        "matrix",
        "prometheus",
        "gitlab",
        "grafana",
        "networking",
        "containers",
    ]
    .iter()
    .map(|name| dir.join(format!("{name}.toml")))
    .collect();
    files.sort();
    files
}

fn contract_target(dir: &Path) -> PathBuf {
    let mut text = String::from("name = \"demo\"\nrave_version = \"P6-demo\"\n[vars]\n");
    for (name, value) in CONTRACT_VARS {
        text.push_str(&format!("{name} = \"{value}\"\n"));
    }
    text.push_str("[secrets]\n");
    for name in CONTRACT_SECRETS {
        let file = dir.join(name);
        std::fs::write(&file, format!("secret-{name}")).unwrap();
        text.push_str(&format!("{name} = {{ file = \"{}\" }}\n", file.display()));
    }
    let path = dir.join("target.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every `${...}` reference in a string.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 1..];
    }
    out
}

fn strings_in(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|i| strings_in(i, out)),
        toml::Value::Table(t) => t.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

#[test]
fn profiles_use_only_contract_names_and_document_every_check() {
    let vars: BTreeSet<&str> = CONTRACT_VARS.iter().map(|(n, _)| *n).collect();
    let secrets: BTreeSet<&str> = CONTRACT_SECRETS.iter().copied().collect();
    let mut values = spinup_smoke::profile::interp::Values::default();
    for (name, value) in CONTRACT_VARS {
        values.set(name, *value);
    }
    for name in CONTRACT_SECRETS {
        values
            .secrets
            .insert(name.to_string(), format!("secret-{name}"));
    }
    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    for file in profiles() {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let checks = doc["check"].as_array().unwrap();
        assert!(!checks.is_empty(), "{}", file.display());
        for check in checks {
            let id = check["id"].as_str().unwrap().to_string();
            let at = format!("{} {id}", file.display());
            for field in ["description", "hint"] {
                if check
                    .get(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .is_empty()
                {
                    problems.push(format!("{at}: no {field}"));
                }
            }
            // The container engine is where jobs run (sandbox); the rest are services.
            let phase = if id.starts_with("containers.") {
                "sandbox"
            } else {
                "services"
            };
            if check.get("phase").and_then(|v| v.as_str()) != Some(phase) {
                problems.push(format!("{at}: phase is not {phase}"));
            }
            if !ids.insert(id.clone()) {
                problems.push(format!("{at}: duplicate id"));
            }
            let mut strings = Vec::new();
            strings_in(check, &mut strings);
            for reference in strings.iter().flat_map(|s| references(s)) {
                match reference.strip_prefix("secret:") {
                    Some(secret) if !secrets.contains(secret) => {
                        problems.push(format!("{at}: secret `{secret}` is not in the contract"))
                    }
                    None if !vars.contains(reference.as_str()) => {
                        problems.push(format!("{at}: var `{reference}` is not in the contract"))
                    }
                    _ => {}
                }
            }
            for field in ["description", "hint"] {
                if check
                    .get(field)
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| s.contains("${"))
                {
                    problems.push(format!(
                        "{at}: {field} is not interpolated; do not use ${{...}} in it"
                    ));
                }
            }
            let kinds: Vec<&String> = check
                .as_table()
                .unwrap()
                .keys()
                .filter(|k| {
                    ProbeSpec::KINDS.contains(&k.as_str())
                        || KINDS_FROM_ELSEWHERE.contains(&k.as_str())
                })
                .collect();
            if kinds.len() != 1 {
                problems.push(format!("{at}: probe tables {kinds:?}"));
                continue;
            }
            let kind = kinds[0].as_str();
            if ProbeSpec::KINDS.contains(&kind) {
                let mut table = check[kind].clone();
                spinup_smoke::profile::interp::interpolate_value(&mut table, &values).unwrap();
                if let Err(e) = ProbeSpec::from_value(kind, table) {
                    problems.push(format!("{at}: [check.{kind}] invalid: {e}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn profiles_load_with_the_real_loader_once_every_kind_exists() {
    let missing: Vec<&&str> = KINDS_FROM_ELSEWHERE
        .iter()
        .filter(|k| !ProbeSpec::KINDS.contains(k))
        .collect();
    if !missing.is_empty() {
        eprintln!("probe kinds not built in yet: {missing:?}; loading the profiles one kind at a time instead");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = spinup_smoke::profile::target::load(&contract_target(dir.path())).unwrap();
    let profiles = spinup_smoke::profile::load(&profiles(), &target, Default::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        profiles.checks.len(),
        43,
        "12 postgres, 8 matrix, 3 prometheus, 7 gitlab, 2 grafana, 6 networking, 5 containers"
    );
}

/// health-checks/security.toml loads with the real loader: every
/// `${facts.*}` resolves from rave-facts.json, the TLS front's vars come
/// from the contract, and there is one check per secret of the facts.
#[test]
fn security_profile_loads_with_the_facts_and_the_tls_front_vars() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let target = spinup_smoke::profile::target::load(&contract_target(dir.path())).unwrap();
    let profiles = spinup_smoke::profile::load(
        &[root.join("health-checks/security.toml")],
        &target,
        Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let facts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("health-checks/rave-facts.json")).unwrap(),
    )
    .unwrap();
    let secrets = facts["secrets"]["files"].as_object().unwrap().len();
    assert_eq!(
        profiles.checks.len(),
        4 + secrets,
        "sshd, ports, nftables, tls and one file check per secret"
    );
}
