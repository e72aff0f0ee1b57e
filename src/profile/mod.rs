//! Profiles: what to check. Reads `health-checks/*.toml` and `scenarios/*.toml`
//! (files or directories), validates them with file/line/column errors, applies
//! `[defaults]` and target values, and yields ready `Check`s.
//!
//! Two stages: the raw serde types (unknown fields denied) and the checked
//! `Check` with every default applied; nothing gets a default at run time.

pub mod interp;
pub mod target;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Location, UserError, UserErrors};
use crate::model::{HumanDuration, Phase, Severity};
use crate::probe::{ProbeSpec, RawCheck, RawRetry};
use crate::run::retry::RetryPolicy;
pub use target::Target;

/// Default deadline of a check when neither it nor `[defaults]` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    profile: RawMeta,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    check: Vec<RawCheck>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Default `service` of the profile's checks.
    #[serde(default)]
    service: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    severity: Option<Severity>,
}

/// A ready check: defaults applied, target values interpolated.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub phase: Phase,
    pub description: String,
    pub service: String,
    pub severity: Severity,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub needs: Vec<String>,
    pub hint: Option<String>,
    pub probe: ProbeSpec,
    pub location: Location,
}

/// A profile file that was read, with its digest for the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub name: String,
    pub sha256: String,
}

/// Everything loaded from `--profile` paths.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    pub checks: Vec<Check>,
    pub sources: Vec<Source>,
}

impl Profiles {
    /// sha256 over the sorted `path-name:sha256` lines of every source.
    pub fn digest(&self) -> String {
        let mut lines: Vec<String> = self
            .sources
            .iter()
            .map(|s| format!("{}:{}", s.name, s.sha256))
            .collect();
        lines.sort();
        format!("sha256:{}", hex::encode(Sha256::digest(lines.join("\n"))))
    }
}

/// Expands `--profile` arguments: a file, or a directory whose `*.toml`
/// files are read in name order.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, UserErrors> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                    .collect(),
                Err(e) => {
                    errors.push(
                        UserError::new(format!("cannot read profile directory: {e}")).in_file(path),
                    );
                    continue;
                }
            };
            found.sort();
            if found.is_empty() {
                errors.push(
                    UserError::new("profile directory holds no .toml files")
                        .in_file(path)
                        .hint(
                            "point --profile at a directory of check files such as health-checks/",
                        ),
                );
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            errors.push(
                UserError::new("profile not found")
                    .in_file(path)
                    .hint("pass --profile with an existing .toml file or a directory of them"),
            );
        }
    }
    if errors.is_empty() {
        files.dedup();
        Ok(files)
    } else {
        Err(UserErrors(errors))
    }
}

/// Turns a `toml` error into a user error with file, line, column and a hint.
pub(crate) fn toml_error(path: &Path, text: &str, e: &toml::de::Error, hint: &str) -> UserError {
    let message = e.message().trim().to_string();
    let mut err = UserError::new(message.clone()).in_file(path);
    if let Some(span) = e.span() {
        err = err.at(Location::from_offset(path, text, span.start));
        let key = text.get(span.clone()).unwrap_or("").trim();
        if !key.is_empty() && key.len() < 60 && !key.contains('\n') {
            err = err.field(key.to_string());
        }
    }
    let hint = if message.starts_with("unknown field") && message.contains("`tcp`") {
        format!(
            "probe tables are written `[check.<kind>]`; kinds: {}",
            ProbeSpec::KINDS.join(", ")
        )
    } else if message.starts_with("unknown field") {
        format!("remove the field or fix its spelling ({message}); {hint}")
    } else if message.starts_with("unknown variant") {
        format!("use one of the listed values; {hint}")
    } else {
        hint.to_string()
    };
    err.hint(hint)
}

/// Loads and checks every profile; all problems are reported together.
pub fn load(paths: &[PathBuf], target: &Target) -> Result<Profiles, UserErrors> {
    let files = expand_paths(paths)?;
    let mut profiles = Profiles::default();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, Location> = BTreeMap::new();
    for file in files {
        match load_file(&file, target) {
            Ok((checks, source)) => {
                for check in checks {
                    if let Some(first) = seen.get(&check.id) {
                        errors.push(
                            UserError::new(format!("duplicate check id `{}`", check.id))
                                .at(check.location.clone())
                                .field("id")
                                .hint(format!(
                                    "ids must be unique across all profiles; it is first defined at {}:{}:{}",
                                    first.file.display(),
                                    first.line,
                                    first.column
                                )),
                        );
                        continue;
                    }
                    seen.insert(check.id.clone(), check.location.clone());
                    profiles.checks.push(check);
                }
                profiles.sources.push(source);
            }
            Err(e) => errors.extend(e.0),
        }
    }
    errors.extend(check_needs(&profiles.checks));
    if errors.is_empty() {
        Ok(profiles)
    } else {
        Err(UserErrors(errors))
    }
}

fn load_file(path: &Path, target: &Target) -> Result<(Vec<Check>, Source), UserErrors> {
    let bytes = std::fs::read(path)
        .map_err(|e| UserError::new(format!("cannot read profile: {e}")).in_file(path))?;
    let text = String::from_utf8(bytes.clone()).map_err(|e| {
        UserError::new(format!(
            "profile is not valid UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
        .in_file(path)
        .hint("save the file as UTF-8")
    })?;
    let hint = "see the profile format in README.md (\"Writing checks\")";
    let raw: RawProfile = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e, hint))?;
    // The same document as plain values, for interpolating probe tables.
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| toml_error(path, &text, &e, hint))?;
    let value_checks = table
        .get("check")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let name = raw.profile.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let _ = &raw.profile.description;
    let mut values = target.values.clone();
    if let Some(dir) = path.parent().and_then(|d| d.canonicalize().ok()) {
        values
            .vars
            .entry("profile_dir".into())
            .or_insert_with(|| dir.display().to_string());
    }
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    for (index, raw_check) in raw.check.iter().enumerate() {
        let value = value_checks
            .get(index)
            .cloned()
            .unwrap_or(toml::Value::Table(Default::default()));
        match build_check(path, &text, &raw, raw_check, value, &values, index) {
            Ok(c) => checks.push(c),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(UserErrors(errors));
    }
    let source = Source {
        path: path.to_path_buf(),
        name,
        sha256: hex::encode(Sha256::digest(&bytes)),
    };
    Ok((checks, source))
}

fn build_check(
    path: &Path,
    text: &str,
    profile: &RawProfile,
    raw: &RawCheck,
    value: toml::Value,
    values: &interp::Values,
    index: usize,
) -> Result<Check, UserError> {
    let id = raw.id.get_ref().clone();
    let location = Location::from_offset(path, text, raw.id.span().start);
    let field_prefix = format!("check[{index}]");
    if !valid_id(&id) {
        return Err(UserError::new(format!("invalid check id `{id}`"))
            .at(location)
            .field(format!("{field_prefix}.id"))
            .hint("ids are dotted lowercase words: letters, digits, `-`, `_` and `.`, e.g. `postgres.reachable`"));
    }
    let tables = raw.probe_tables();
    let kind = match tables.as_slice() {
        [(kind, _)] => *kind,
        [] => {
            return Err(UserError::new(format!("check `{id}` has no probe table"))
                .at(location)
                .field(field_prefix)
                .hint(format!(
                    "add exactly one probe table such as `[check.tcp]`; kinds: {}",
                    ProbeSpec::KINDS.join(", ")
                )))
        }
        [_, (second, span), ..] => return Err(UserError::new(format!(
            "check `{id}` has more than one probe table ({})",
            tables
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .at(Location::from_offset(path, text, span.start))
        .field(format!("{field_prefix}.{second}"))
        .hint(
            "a check has exactly one probe; split it into two checks and link them with `needs`",
        )),
    };
    let mut probe_value = value
        .get(kind)
        .cloned()
        .unwrap_or(toml::Value::Table(Default::default()));
    interp::interpolate_value(&mut probe_value, values, &format!("{field_prefix}.{kind}")).map_err(
        |(field, e)| {
            let (what, fix) = match &e {
                interp::InterpError::UnknownVar(v) => (
                    format!("check `{id}` refers to `${{{v}}}`, which the target does not define"),
                    format!("add `{v} = \"...\"` under [vars] in the target file (pass it with --target)"),
                ),
                interp::InterpError::UnknownSecret(s) => (
                    format!("check `{id}` refers to secret `{s}`, which the target does not define"),
                    format!("add `{s} = {{ env = \"VAR\" }}` under [secrets] in the target file"),
                ),
                interp::InterpError::Unclosed => (
                    format!("check `{id}` has an unclosed `${{`"),
                    "close it with `}`, or write `$${` for a literal `${`".to_string(),
                ),
            };
            UserError::new(what).at(location.clone()).field(field).hint(fix)
        },
    )?;
    let probe = ProbeSpec::from_value(kind, probe_value).map_err(|e| {
        UserError::new(format!("check `{id}`: {e}"))
            .at(location.clone())
            .field(format!("{field_prefix}.{kind}"))
            .hint("a target value made the probe table invalid; check the target's [vars]")
    })?;
    let retry = raw
        .retry
        .as_ref()
        .or(profile.defaults.retry.as_ref())
        .map(retry_policy);
    let retry = match retry {
        Some(Ok(r)) => r,
        Some(Err(msg)) => {
            return Err(UserError::new(format!("check `{id}`: {msg}"))
                .at(location)
                .field(format!("{field_prefix}.retry")))
        }
        None => RetryPolicy::ONCE,
    };
    let timeout = raw
        .timeout
        .or(profile.defaults.timeout)
        .map(|d| d.0)
        .unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(UserError::new(format!("check `{id}` has a zero timeout"))
            .at(location)
            .field(format!("{field_prefix}.timeout"))
            .hint("give every check a deadline, e.g. `timeout = \"10s\"`"));
    }
    let service = raw
        .service
        .clone()
        .or_else(|| profile.profile.service.clone())
        .unwrap_or_else(|| id.split('.').next().unwrap_or(&id).to_string());
    Ok(Check {
        description: raw.description.clone().unwrap_or_default(),
        phase: raw.phase,
        service,
        severity: raw
            .severity
            .or(profile.defaults.severity)
            .unwrap_or_default(),
        timeout,
        retry,
        needs: raw.needs.iter().map(|n| n.get_ref().clone()).collect(),
        hint: raw.hint.clone(),
        probe,
        location,
        id,
    })
}

fn retry_policy(raw: &RawRetry) -> Result<RetryPolicy, String> {
    let policy = RetryPolicy {
        max_attempts: raw.attempts,
        initial: raw
            .initial
            .map(|d| d.0)
            .unwrap_or(Duration::from_millis(250)),
        max: raw.max.map(|d| d.0).unwrap_or(Duration::from_secs(5)),
        factor: raw.factor.unwrap_or(2.0),
    };
    if raw.attempts == Some(0) {
        return Err(
            "retry.attempts must be at least 1 (omit it to retry until the deadline)".into(),
        );
    }
    if !(1.0..=10.0).contains(&policy.factor) {
        return Err("retry.factor must be between 1.0 and 10.0".into());
    }
    if policy.initial > policy.max {
        return Err("retry.initial must not exceed retry.max".into());
    }
    Ok(policy)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        && !id.starts_with('.')
        && !id.ends_with('.')
}

/// Every `needs` entry names an existing check of the same or an earlier phase.
fn check_needs(checks: &[Check]) -> Vec<UserError> {
    let by_id: BTreeMap<&str, &Check> = checks.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut errors = Vec::new();
    for check in checks {
        for need in &check.needs {
            match by_id.get(need.as_str()) {
                None => {
                    let suggestion = closest(need, by_id.keys().copied())
                        .map(|s| format!("did you mean `{s}`? "))
                        .unwrap_or_default();
                    errors.push(
                        UserError::new(format!("check `{}` needs unknown check `{need}`", check.id))
                            .at(check.location.clone())
                            .field("needs")
                            .hint(format!("{suggestion}`needs` must name checks defined in the loaded profiles")),
                    );
                }
                Some(dep) if dep.phase > check.phase => errors.push(
                    UserError::new(format!(
                        "check `{}` (phase {}) needs `{need}` of the later phase {}",
                        check.id, check.phase, dep.phase
                    ))
                    .at(check.location.clone())
                    .field("needs")
                    .hint("a check may only need checks of its own or an earlier phase; move one of them"),
                ),
                Some(_) if need == &check.id => errors.push(
                    UserError::new(format!("check `{}` needs itself", check.id))
                        .at(check.location.clone())
                        .field("needs")
                        .hint("remove its own id from `needs`"),
                ),
                Some(_) => {}
            }
        }
    }
    errors
}

/// The candidate closest to `word` by edit distance, when close enough.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
