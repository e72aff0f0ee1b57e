//! Targets: where to check. A target file names endpoints, hosts and other
//! values (`[vars]`), where secrets come from (`[secrets]`: a file path or
//! an environment variable name, never the secret itself), the phases a run
//! must examine (`require_phases`) and the services answered by stand-ins
//! (`[stand_ins]`, keyed by a check's `service`).
//!
//! ```toml
//! name = "demo"
//! rave_version = "P6-production"
//! require_phases = ["services", "security"]   # or "all"
//! [vars]
//! synapse.url = "http://127.0.0.1:8008"
//! [secrets]
//! postgres_password = { env = "PGPASSWORD" }
//! signing_hint = { file = "/run/secrets/hint" }
//! [stand_ins]
//! gitlab = "demo stand-in replaying GitLab's recorded API shapes"
//! [logs]                       # by service: the tail joins a failed check's evidence
//! synapse = { unit = "matrix-synapse.service" }
//! gitlab = { file = "/var/log/gitlab/production.log" }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::hosts::{self, HostSpec, RawHost};
use super::interp::Values;
use super::toml_error::toml_error;
use crate::check::{LogSource, Phase};
use crate::error::{Location, UserError, UserErrors};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rave_version: Option<String>,
    /// `"all"` or a list of phase names; checked by `required_phases`.
    #[serde(default)]
    require_phases: Option<toml::Spanned<toml::Value>>,
    #[serde(default)]
    vars: toml::Table,
    #[serde(default)]
    secrets: BTreeMap<String, toml::Spanned<RawSecret>>,
    #[serde(default)]
    stand_ins: BTreeMap<String, toml::Spanned<String>>,
    /// Where each service logs, by service.
    #[serde(default)]
    logs: BTreeMap<String, toml::Spanned<RawLog>>,
    /// The default host (`hosts.rs`).
    #[serde(default)]
    host: Option<toml::Spanned<RawHost>>,
    /// Named hosts, each claiming profiles.
    #[serde(default)]
    hosts: BTreeMap<String, toml::Spanned<RawHost>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<PathBuf>,
    /// Accepted only to reject it with a clear message.
    #[serde(default)]
    value: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    unit: Option<String>,
}

/// A loaded target: its values and secrets, ready for interpolation.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub path: Option<PathBuf>,
    pub name: String,
    pub rave_version: Option<String>,
    pub values: Values,
    /// Phases that must run a check, or the run fails.
    pub required_phases: BTreeSet<Phase>,
    /// Services answered by stand-ins: service -> what answers instead.
    pub stand_ins: BTreeMap<String, String>,
    /// Where each service logs (`[logs]`), read on the check's host.
    pub logs: BTreeMap<String, LogSource>,
    /// `sha256:<hex>` of the target file's bytes.
    pub sha256: Option<String>,
    /// `[host]`: where checks run unless a named host claims their
    /// profile; `None`: this machine.
    pub host: Option<HostSpec>,
    /// `[hosts.NAME]`, by name.
    pub hosts: Vec<HostSpec>,
}

impl Target {
    /// The built-in target when none is given: no vars, no secrets.
    pub fn local() -> Target {
        Target {
            path: None,
            name: "local".into(),
            rave_version: None,
            values: Values::default(),
            required_phases: BTreeSet::new(),
            stand_ins: BTreeMap::new(),
            logs: BTreeMap::new(),
            sha256: None,
            host: None,
            hosts: Vec::new(),
        }
    }

    /// Every secret value, for the redactor.
    pub fn secret_values(&self) -> Vec<String> {
        self.values.secrets.values().cloned().collect()
    }
}

/// Reads and checks a target file; secrets are read now so a missing one is
/// reported before anything runs.
pub fn load(path: &Path) -> Result<Target, UserErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UserError::new(format!("cannot read target file: {e}"))
            .in_file(path)
            .hint("pass --target with the path of an existing target TOML file")
    })?;
    let raw: RawTarget = toml::from_str(&text).map_err(|e| {
        toml_error(
            path,
            &text,
            &e,
            "a target file has `name`, `rave_version`, `require_phases`, `[vars]`, `[secrets]`, `[stand_ins]`, `[logs]`, `[host]` and `[hosts.NAME]` (docs/targets.md)",
        )
    })?;
    let mut vars = BTreeMap::new();
    let mut errors = Vec::new();
    flatten_vars(&raw.vars, "", &mut vars, &mut |key| {
        errors.push(
            UserError::new(format!("var `{key}` is a date, which profiles cannot use"))
                .in_file(path)
                .field(format!("vars.{key}"))
                .hint("write the value as a string in quotes"),
        )
    });
    let mut secrets = BTreeMap::new();
    let mut secret_files = BTreeMap::new();
    for (name, spanned) in &raw.secrets {
        let file = spanned
            .get_ref()
            .file
            .as_deref()
            .map(|f| resolve_relative(path, f));
        secret_files.insert(
            name.clone(),
            file.filter(|_| spanned.get_ref().env.is_none()),
        );
    }
    for (name, spanned) in &raw.secrets {
        let loc = crate::error::Location::from_offset(path, &text, spanned.span().start);
        let secret = spanned.get_ref();
        let field = format!("secrets.{name}");
        let result = match (&secret.env, &secret.file, &secret.value) {
            (_, _, Some(_)) => Err(UserError::new(format!(
                "secret `{name}` is written inline; secrets must never be stored in a target file"
            ))
            .hint(format!(
                "replace it with `{name} = {{ env = \"VAR\" }}` or `{name} = {{ file = \"/run/secrets/{name}\" }}`"
            ))),
            (Some(var), None, None) => std::env::var(var).map_err(|_| {
                UserError::new(format!("secret `{name}` comes from environment variable `{var}`, which is not set"))
                    .hint(format!("export {var}=... before running, or change the secret to `file = ...`"))
            }),
            (None, Some(file), None) => {
                let file = resolve_relative(path, file);
                std::fs::read_to_string(&file)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| {
                        UserError::new(format!(
                            "secret `{name}` comes from file {}, which cannot be read: {e}",
                            file.display()
                        ))
                        .hint("create the file (mode 0600) or fix the path")
                    })
            }
            (None, None, None) | (Some(_), Some(_), None) => Err(UserError::new(format!(
                "secret `{name}` must name exactly one source"
            ))
            .hint(format!("write `{name} = {{ env = \"VAR\" }}` or `{name} = {{ file = \"PATH\" }}`"))),
        };
        match result {
            Ok(value) if value.is_empty() => errors.push(
                UserError::new(format!("secret `{name}` is empty"))
                    .at(loc)
                    .field(field)
                    .hint("put the secret's value in its file or environment variable"),
            ),
            Ok(value) => {
                secrets.insert(name.clone(), value);
            }
            Err(e) => errors.push(e.at(loc).field(field)),
        }
    }
    let required_phases = match &raw.require_phases {
        None => BTreeSet::new(),
        Some(spanned) => {
            let loc = Location::from_offset(path, &text, spanned.span().start);
            required_phases(spanned.get_ref()).unwrap_or_else(|e| {
                errors.push(e.at(loc));
                BTreeSet::new()
            })
        }
    };
    let mut stand_ins = BTreeMap::new();
    for (service, note) in &raw.stand_ins {
        if note.get_ref().trim().is_empty() {
            errors.push(
                UserError::new(format!("stand-in `{service}` does not say what answers instead"))
                    .at(Location::from_offset(path, &text, note.span().start))
                    .field(format!("stand_ins.{service}"))
                    .hint(format!("describe the stand-in, e.g. `{service} = \"demo stand-in replaying recorded API shapes\"`")),
            );
        } else {
            stand_ins.insert(service.clone(), note.get_ref().trim().to_string());
        }
    }
    let mut logs = BTreeMap::new();
    for (service, spanned) in &raw.logs {
        let at = Location::from_offset(path, &text, spanned.span().start);
        let field = format!("logs.{service}");
        match (&spanned.get_ref().file, &spanned.get_ref().unit) {
            (Some(file), None) if !file.as_os_str().is_empty() => {
                logs.insert(service.clone(), LogSource::File(resolve_relative(path, file)));
            }
            (None, Some(unit)) if !unit.trim().is_empty() => {
                logs.insert(service.clone(), LogSource::Unit(unit.trim().to_string()));
            }
            _ => errors.push(
                UserError::new(format!("log of `{service}` must name exactly one non-empty source"))
                    .at(at)
                    .field(field)
                    .hint(format!("write `{service} = {{ file = \"/var/log/{service}.log\" }}` or `{service} = {{ unit = \"{service}.service\" }}`")),
            ),
        }
    }
    let cx = hosts::Context {
        path,
        text: &text,
        secrets: &secret_files,
    };
    let host = raw
        .host
        .as_ref()
        .and_then(|table| hosts::check(&cx, None, table, &mut errors));
    let named: Vec<HostSpec> = raw
        .hosts
        .iter()
        .filter_map(|(name, table)| hosts::check(&cx, Some(name), table, &mut errors))
        .collect();
    hosts::check_claims(&cx, &raw.hosts, &mut errors);
    if !errors.is_empty() {
        return Err(UserErrors(errors));
    }
    Ok(Target {
        path: Some(path.to_path_buf()),
        name: raw.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "target".into())
        }),
        rave_version: raw.rave_version,
        values: Values { vars, secrets },
        required_phases,
        stand_ins,
        logs,
        sha256: Some(format!("sha256:{}", hex::encode(Sha256::digest(&text)))),
        host,
        hosts: named,
    })
}

/// `require_phases`: `"all"`, or a list of phase names.
fn required_phases(value: &toml::Value) -> Result<BTreeSet<Phase>, UserError> {
    let names = || Phase::ALL.map(|p| p.name()).join(", ");
    let shape = || {
        UserError::new("`require_phases` must be \"all\" or a list of phase names")
            .field("require_phases")
            .hint(format!(
                "write `require_phases = \"all\"` or e.g. `require_phases = [\"services\", \"security\"]`; phases: {}",
                names()
            ))
    };
    match value {
        toml::Value::String(s) if s == "all" => Ok(Phase::ALL.into_iter().collect()),
        toml::Value::Array(items) => {
            let mut phases = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let name = item.as_str().ok_or_else(shape)?;
                let phase = Phase::parse(name).ok_or_else(|| {
                    UserError::new(format!("`require_phases` names unknown phase `{name}`"))
                        .field(format!("require_phases[{i}]"))
                        .hint(format!("phases: {}", names()))
                })?;
                phases.insert(phase);
            }
            Ok(phases)
        }
        _ => Err(shape()),
    }
}

fn resolve_relative(target_file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    target_file
        .parent()
        .map(|dir| dir.join(path))
        .unwrap_or_else(|| path.to_path_buf())
}

fn flatten_vars(
    table: &toml::Table,
    prefix: &str,
    out: &mut BTreeMap<String, toml::Value>,
    bad: &mut dyn FnMut(&str),
) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten_vars(t, &key, out, bad),
            toml::Value::Datetime(_) => bad(&key),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Target, UserErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret-file\n").unwrap();
        load(&path)
    }

    #[test]
    fn vars_flatten_and_secrets_load_from_file_and_env() {
        std::env::set_var("SPINUP_SMOKE_TEST_SECRET_A", "s3cret-env");
        let t = load_text(
            r#"name = "demo"
[vars]
pg = { host = "h", port = 5432 }
[secrets]
a = { env = "SPINUP_SMOKE_TEST_SECRET_A" }
b = { file = "pw" }
"#,
        )
        .unwrap();
        assert_eq!(t.values.vars["pg.port"].as_integer(), Some(5432));
        assert_eq!(t.values.secrets["a"], "s3cret-env");
        assert_eq!(t.values.secrets["b"], "s3cret-file");
    }

    #[test]
    fn logs_load_by_service_and_bad_ones_name_line_field_and_fix() {
        let t = load_text(
            "[logs]\nsynapse = { unit = \"matrix-synapse.service\" }\ngitlab = { file = \"gitlab.log\" }\n",
        )
        .unwrap();
        assert_eq!(
            t.logs["synapse"],
            LogSource::Unit("matrix-synapse.service".into())
        );
        match &t.logs["gitlab"] {
            LogSource::File(path) => assert!(
                path.is_absolute() && path.ends_with("gitlab.log"),
                "{path:?}"
            ),
            other => panic!("{other:?}"),
        }
        for (text, needles) in [
            (
                "[logs]\nsynapse = { unit = \"a\", file = \"b\" }\n",
                &[
                    "t.toml:2:",
                    "logs.synapse",
                    "exactly one",
                    "unit = \"synapse.service\"",
                ][..],
            ),
            (
                "[logs]\n\nsynapse = { unit = \" \" }\n",
                &["t.toml:3:", "logs.synapse"][..],
            ),
            (
                "[logs]\nsynapse = { journal = \"x\" }\n",
                &["t.toml:2:", "journal"][..],
            ),
        ] {
            let e = load_text(text).unwrap_err().to_string();
            for needle in needles {
                assert!(e.contains(needle), "{text}: `{needle}` in {e}");
            }
        }
    }

    #[test]
    fn inline_secret_is_refused_with_the_fix() {
        let e = load_text("[secrets]\npw = { value = \"hunter2\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("written inline"), "{e}");
        assert!(e.contains("t.toml:2:"), "{e}");
        assert!(e.contains("secrets.pw"), "{e}");
        assert!(
            !e.contains("hunter2"),
            "the error must not echo the secret: {e}"
        );
    }

    #[test]
    fn missing_env_and_file_are_reported_together() {
        let e = load_text(
            "[secrets]\na = { env = \"SPINUP_SMOKE_TEST_UNSET_VAR\" }\nb = { file = \"nope\" }\n",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
    }

    #[test]
    fn required_phases_and_stand_ins_load() {
        let t = load_text(
            "name = \"t\"\nrequire_phases = [\"services\", \"security\", \"services\"]\n\
             [stand_ins]\ngitlab = \"demo stand-in (recorded API shapes)\"\ngrafana = \" replay \"\n",
        )
        .unwrap();
        assert_eq!(
            t.required_phases,
            BTreeSet::from([Phase::Services, Phase::Security])
        );
        assert_eq!(t.stand_ins["gitlab"], "demo stand-in (recorded API shapes)");
        assert_eq!(t.stand_ins["grafana"], "replay");
        assert!(t.sha256.as_deref().unwrap().starts_with("sha256:"));
        let all = load_text("require_phases = \"all\"\n").unwrap();
        assert_eq!(all.required_phases.len(), 10);
        let none = load_text("name = \"t\"\n").unwrap();
        assert!(none.required_phases.is_empty() && none.stand_ins.is_empty());
    }

    /// Bad `require_phases` and `[stand_ins]` values: the error text, the
    /// file and line, and the field.
    #[test]
    fn bad_required_phases_and_stand_ins_name_file_line_and_field() {
        let check = |text: &str, needles: &[&str]| {
            let e = load_text(text).unwrap_err().to_string();
            for needle in needles {
                assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
            }
        };
        check(
            "name = \"t\"\nrequire_phases = [\"services\", \"agnet\"]\n",
            &[
                "unknown phase `agnet`",
                "t.toml:2:",
                "require_phases[1]",
                "phases: config, build",
            ],
        );
        check(
            "require_phases = \"some\"\n",
            &["must be \"all\" or a list", "t.toml:1:", "require_phases"],
        );
        check(
            "require_phases = [1]\n",
            &["must be \"all\" or a list", "t.toml:1:"],
        );
        check(
            "require_phases = true\n",
            &["must be \"all\" or a list", "t.toml:1:"],
        );
        check(
            "name = \"t\"\n[stand_ins]\ngitlab = \" \"\n",
            &[
                "stand-in `gitlab` does not say",
                "t.toml:3:",
                "stand_ins.gitlab",
            ],
        );
        check("[stand_ins]\ngitlab = true\n", &["t.toml:2:", "string"]);
    }

    const PIN: &str = "SHA256:94yiotacdD7G+JCYpJrLurqnqIciJ+0LlKg9zIRQk6k";

    /// A target with an ssh `[host]` whose table ends with `extra` lines.
    fn ssh_target(extra: &str) -> String {
        format!(
            "[secrets]\nkey = {{ file = \"pw\" }}\n[host]\ntransport = \"ssh\"\naddress = \"p6.example.org\"\nuser = \"rave\"\nidentity = {{ secret = \"key\" }}\n{extra}\n"
        )
    }

    #[test]
    fn host_tables_load() {
        let t = load_text(&ssh_target(&format!(
            "host_key = \"{PIN}\"\nport = 2222\nsudo = true\nvia = \"host\"\nconnect_timeout = \"3s\"\n[hosts.guest]\ntransport = \"local\"\nprofiles = [\"security\"]"
        )))
        .unwrap();
        let host = t.host.unwrap();
        assert!(host.sudo && host.via_host && host.name.is_none());
        let hosts::Transport::Ssh(ssh) = host.transport else {
            panic!("not ssh")
        };
        assert_eq!(
            (ssh.address.as_str(), ssh.port, ssh.user.as_str()),
            ("p6.example.org", 2222, "rave")
        );
        assert_eq!(ssh.identity_secret, "key");
        assert!(ssh.identity_file.unwrap().ends_with("pw"));
        assert_eq!(ssh.host_key.as_deref(), Some(PIN));
        assert_eq!(ssh.connect_timeout, std::time::Duration::from_secs(3));
        assert_eq!(t.hosts.len(), 1);
        assert_eq!(t.hosts[0].table(), "[hosts.guest]");
        assert_eq!(t.hosts[0].profiles, ["security"]);
        // Defaults: port 22, 10 s, direct, no sudo; known_hosts relative to the target.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(dir.path().join("pw"), "k").unwrap();
        std::fs::write(dir.path().join("p6.known_hosts"), "").unwrap();
        std::fs::write(&path, ssh_target("known_hosts = \"p6.known_hosts\"")).unwrap();
        let t = load(&path).unwrap();
        let host = t.host.unwrap();
        assert!(!host.sudo && !host.via_host);
        let hosts::Transport::Ssh(ssh) = host.transport else {
            panic!("not ssh")
        };
        assert_eq!(ssh.port, 22);
        assert_eq!(ssh.connect_timeout, hosts::DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(ssh.known_hosts.unwrap(), dir.path().join("p6.known_hosts"));
        assert!(load_text("name = \"t\"\n").unwrap().host.is_none());
    }

    /// Bad host tables: the message, file:line, field and fix; never a key.
    #[test]
    fn bad_host_tables_name_file_line_field_and_fix() {
        let check = |text: &str, needles: &[&str]| {
            let e = load_text(text).unwrap_err().to_string();
            for needle in needles {
                assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
            }
            e
        };
        let pin = format!("host_key = \"{PIN}\"");
        check(
            &ssh_target(&format!("{pin}\nadress = \"x\"")),
            &["t.toml:9:", "adress", "unknown field"],
        );
        check(
            "[host]\ntransport = \"telnet\"\n",
            &[
                "unknown transport `telnet`",
                "t.toml:2:",
                "host.transport",
                "transport = \"ssh\"",
            ],
        );
        check(
            "[host]\ntransport = \"ssh\"\nuser = \"rave\"\n",
            &[
                "without `address`",
                "host.address",
                "without `identity`",
                "without a pinned host key",
                "host.known_hosts",
            ],
        );
        check(
            &ssh_target("").replace("user = \"rave\"\n", ""),
            &[
                "ssh host without `user`",
                "host.user",
                "add `user = \"rave\"`",
            ],
        );
        check(
            &ssh_target(&format!("{pin}\nknown_hosts = \"k\"")),
            &["pins its host key twice", "host.host_key", "t.toml:"],
        );
        check(
            &ssh_target("host_key = \"MD5:aa:bb\""),
            &[
                "not a SHA256 fingerprint",
                "host.host_key",
                "ssh-keygen -lf",
            ],
        );
        check(
            &ssh_target("host_key = \"SHA256:tooshort\""),
            &["not a SHA256 fingerprint"],
        );
        check(
            &ssh_target("known_hosts = \"absent.known_hosts\""),
            &["does not exist", "host.known_hosts", "trust_on_first_use"],
        );
        assert!(load_text(&ssh_target(
            "known_hosts = \"absent.known_hosts\"\ntrust_on_first_use = true"
        ))
        .is_ok());
        check(
            &ssh_target(&format!("{pin}\ntrust_on_first_use = true")),
            &[
                "trusts on first use without a known_hosts file",
                "host.trust_on_first_use",
            ],
        );
        check(
            &ssh_target(&format!("{pin}\nport = 70000")),
            &["port 70000", "not a TCP port", "host.port"],
        );
        check(
            &ssh_target(&format!("{pin}\nvia = \"tunnel\"")),
            &["unknown via `tunnel`", "host.via"],
        );
        check(
            &ssh_target(&format!("{pin}\nconnect_timeout = \"0s\"")),
            &["zero connect_timeout"],
        );
        check(
            &ssh_target(&format!("{pin}\nconnect_timeout = \"10\"")),
            &["t.toml:", "missing unit"],
        );
        let e = check(
            &ssh_target(pin.as_str()).replace(
                "identity = { secret = \"key\" }",
                "identity = \"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaA\"",
            ),
            &[
                "private key written inline",
                "host.identity",
                "t.toml:7:",
                "{ secret = \"host_ssh_key\" }",
            ],
        );
        assert!(!e.contains("b3BlbnNzaA"), "the error echoes the key: {e}");
        check(
            &ssh_target(pin.as_str()).replace(
                "identity = { secret = \"key\" }",
                "identity = \"~/.ssh/id_ed25519\"",
            ),
            &[
                "path string",
                "host_ssh_key = { file = \"~/.ssh/id_ed25519\" }",
            ],
        );
        check(
            &ssh_target(pin.as_str()).replace("{ secret = \"key\" }", "{ secret = \"nope\" }"),
            &[
                "identity secret `nope`, which [secrets] does not define",
                "name one of: key",
            ],
        );
        check(
            &ssh_target(pin.as_str()).replace("{ secret = \"key\" }", "{ file = \"/k\" }"),
            &["not `{ secret = \"NAME\" }`"],
        );
        check(
            "[host]\naddress = \"p6\"\n",
            &[
                "`address` is only for an ssh host",
                "host.address",
                "add `transport = \"ssh\"`",
            ],
        );
        check(
            "[host]\nvia = \"host\"\n",
            &["needs an ssh host", "host.via"],
        );
        check(
            "[host]\nprofiles = [\"security\"]\n",
            &["claims no profiles", "host.profiles", "[hosts.NAME]"],
        );
        check(
            "[hosts.guest]\ntransport = \"local\"\n",
            &["[hosts.guest] claims no profile", "hosts.guest.profiles"],
        );
        check(
            "[hosts.guest]\nprofiles = []\n",
            &["[hosts.guest] claims no profile"],
        );
        check(
            "[hosts.a]\nprofiles = [\"security\"]\n[hosts.b]\nprofiles = [\"gitlab\", \"security\"]\n",
            &["profile `security` is claimed by two hosts: [hosts.a] and [hosts.b]", "hosts.b.profiles", "t.toml:4:"],
        );
    }

    #[test]
    fn unknown_top_level_key_names_line_and_column() {
        let e = load_text("nmae = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("t.toml:1:1"), "{e}");
        assert!(e.contains("nmae"), "{e}");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Arbitrary target files never panic the loader.
        #[test]
        fn arbitrary_targets_never_panic(text in "\\PC{0,300}") {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.toml");
            std::fs::write(&path, &text).unwrap();
            let _ = load(&path);
        }

        /// Nor do structured ones with odd secrets and vars.
        #[test]
        fn structured_targets_never_panic(name in "[a-z.]{0,8}", source in "(env|file|value|other)", value in "\\PC{0,20}") {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.toml");
            let text = format!("[vars]\n\"{name}\" = {value:?}\n[secrets]\n\"{name}\" = {{ {source} = {value:?} }}\n");
            std::fs::write(&path, text).unwrap();
            let _ = load(&path);
        }
    }
}
