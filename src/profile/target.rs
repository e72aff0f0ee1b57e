//! Targets: where to check. A target file names endpoints, hosts and other
//! values (`[vars]`) and where secrets come from (`[secrets]`: a file path or
//! an environment variable name, never the secret itself).
//!
//! ```toml
//! name = "demo"
//! rave_version = "P6-production"
//! [vars]
//! synapse.url = "http://127.0.0.1:8008"
//! [secrets]
//! postgres_password = { env = "PGPASSWORD" }
//! signing_hint = { file = "/run/secrets/hint" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::interp::Values;
use super::toml_error::toml_error;
use crate::error::{UserError, UserErrors};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rave_version: Option<String>,
    #[serde(default)]
    vars: toml::Table,
    #[serde(default)]
    secrets: BTreeMap<String, toml::Spanned<RawSecret>>,
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

/// A loaded target: its values and secrets, ready for interpolation.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub path: Option<PathBuf>,
    pub name: String,
    pub rave_version: Option<String>,
    pub values: Values,
}

impl Target {
    /// The built-in target when none is given: no vars, no secrets.
    pub fn local() -> Target {
        Target {
            path: None,
            name: "local".into(),
            rave_version: None,
            values: Values::default(),
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
            "a target file has `name`, `rave_version`, `[vars]` and `[secrets]`",
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
    })
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
