//! Profiles: what to check. Reads `health-checks/*.toml` and `scenarios/*.toml`
//! (files or directories), validates them with file/line/column errors, applies
//! `[defaults]` and target values, and yields ready `Check`s.
//!
//! Two stages: the raw serde types (unknown fields denied) and the checked
//! `Check` with every default applied; nothing gets a default at run time.

pub mod hosts;
pub mod interp;
mod spans;
pub mod target;
pub mod toml_error;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::check::RawRetry;
use crate::check::{Check, RetryPolicy};
use crate::check::{HumanDuration, Severity};
use crate::checks::ProbeSpec;
use crate::checks::RawCheck;
use crate::error::{Location, UserError, UserErrors};
pub use target::Target;
use toml_error::toml_error;

/// The var that holds the run's id (`${run.id}`).
pub const RUN_ID_VAR: &str = "run.id";

/// A fresh run id: 8 lowercase hex digits, usable in names (projects,
/// users) a run creates and its cleanup removes.
pub fn new_run_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

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
    /// A JSON file of facts (relative to the profile) shared with the NixOS
    /// configuration; its values become vars `facts.<path>`, and
    /// `facts.budgets.<safe|full_pipe>.*` become `budget.*` per SAFE_MODE.
    #[serde(default)]
    facts: Option<PathBuf>,
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

/// A profile file that was read, with its digest for the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
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

/// Options that change how profiles resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// SAFE_MODE=1 (default): `budget.*` vars come from the SAFE budget set;
    /// SAFE_MODE=0 uses FULL_PIPE.
    pub safe_mode: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { safe_mode: true }
    }
}

/// Loads and checks every profile; all problems are reported together.
pub fn load(
    paths: &[PathBuf],
    target: &Target,
    options: LoadOptions,
) -> Result<Profiles, UserErrors> {
    let files = expand_paths(paths)?;
    // `${run.id}`: one per load (so per run), unless the target fixes it.
    let with_run_id;
    let target = if target.values.vars.contains_key(RUN_ID_VAR) {
        target
    } else {
        let mut t = target.clone();
        t.values.set(RUN_ID_VAR, new_run_id());
        with_run_id = t;
        &with_run_id
    };
    let mut profiles = Profiles::default();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, Location> = BTreeMap::new();
    let mut needs_at: BTreeMap<String, Vec<Location>> = BTreeMap::new();
    for file in files {
        match load_file(&file, target, options) {
            Ok((checks, source)) => {
                for (check, need_locations) in checks {
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
                    needs_at.insert(check.id.clone(), need_locations);
                    profiles.checks.push(check);
                }
                profiles.sources.push(source);
            }
            Err(e) => errors.extend(e.0),
        }
    }
    errors.extend(check_needs(&profiles.checks, &needs_at));
    give_facts_the_services(&mut profiles.checks);
    if errors.is_empty() {
        Ok(profiles)
    } else {
        Err(UserErrors(errors))
    }
}

/// `[check.facts]` with `assert = "services_examined"` judges the facts'
/// services against the loaded profiles: it gets the `service` of every
/// loaded check (all files, whatever `--phase` later selects).
fn give_facts_the_services(checks: &mut [Check]) {
    let mut services: Vec<String> = checks.iter().map(|c| c.service.clone()).collect();
    services.sort();
    services.dedup();
    for check in checks.iter_mut() {
        let Some(ProbeSpec::Facts(spec)) = check.probe.as_any().downcast_ref::<ProbeSpec>() else {
            continue;
        };
        if spec.assert == crate::checks::facts::spec::Assertion::ServicesExamined {
            let mut spec = spec.clone();
            spec.profile_services = services.clone();
            check.probe = std::sync::Arc::new(ProbeSpec::Facts(spec));
        }
    }
}

/// A check and where each of its `needs` entries is written.
type CheckWithNeeds = (Check, Vec<Location>);

fn load_file(
    path: &Path,
    target: &Target,
    options: LoadOptions,
) -> Result<(Vec<CheckWithNeeds>, Source), UserErrors> {
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
    let name = raw.profile.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let mut values = target.values.clone();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(dir) = dir.canonicalize() {
        values.set("profile_dir", dir.display().to_string());
    }
    if let Some(facts) = &raw.profile.facts {
        load_facts(&dir.join(facts), options, &mut values)
            .map_err(|e| e.in_file(path).field("profile.facts"))?;
    }
    if raw.check.is_empty() {
        return Err(UserError::new("profile holds no [[check]]")
            .in_file(path)
            .hint("add a `[[check]]` table with an `id`, a `phase` and one probe table such as `[check.tcp]` (README.md, \"Writing checks\"), or remove the file from --profile and its directory")
            .into());
    }
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    for (index, raw_check) in raw.check.iter().enumerate() {
        match build_check(path, &text, &raw, raw_check, &values, index) {
            Ok((mut check, locations)) => {
                check.stand_in = target.stand_ins.contains_key(&check.service);
                check.logs = target.logs.get(&check.service).cloned();
                checks.push((check, locations))
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(UserErrors(errors));
    }
    let source = Source {
        path: path.to_path_buf(),
        name,
        description: raw.profile.description.clone().unwrap_or_default(),
        sha256: hex::encode(Sha256::digest(&bytes)),
    };
    Ok((checks, source))
}

fn build_check(
    path: &Path,
    text: &str,
    profile: &RawProfile,
    raw: &RawCheck,
    values: &interp::Values,
    index: usize,
) -> Result<CheckWithNeeds, UserError> {
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
    let (kind, table) = match tables.as_slice() {
        [(kind, table)] => (*kind, *table),
        [] => {
            return Err(UserError::new(format!("check `{id}` has no probe table"))
                .at(location)
                .field(field_prefix)
                .hint(format!(
                    "add exactly one probe table such as `[check.tcp]`; kinds: {}",
                    ProbeSpec::KINDS.join(", ")
                )))
        }
        [_, (second, second_table), ..] => return Err(UserError::new(format!(
            "check `{id}` has more than one probe table ({})",
            tables
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .at(Location::from_offset(path, text, second_table.span().start))
        .field(format!("{field_prefix}.{second}"))
        .hint(
            "a check has exactly one probe; split it into two checks and link them with `needs`",
        )),
    };
    let table_location = Location::from_offset(path, text, table.span().start);
    let mut probe_value = table.get_ref().clone();
    interp::interpolate_value(&mut probe_value, values).map_err(|(steps, e)| {
        let field = interp::dotted(&format!("{field_prefix}.{kind}"), &steps);
        // The error points at the reference inside its string, or at
        // the string, or (when the text keeps no position) the table.
        let at = spans::value_span(text, index, kind, &steps)
            .map(|range| {
                let inside = text
                    .get(range.clone())
                    .and_then(|literal| interp::reference_offset(literal, &e))
                    .unwrap_or(0);
                Location::from_offset(path, text, range.start + inside)
            })
            .unwrap_or_else(|| table_location.clone());
        let (what, fix) = match &e {
            interp::InterpError::UnknownVar(v) => (
                format!("check `{id}` refers to `${{{v}}}`, which the target does not define"),
                format!(
                    "add `{v} = \"...\"` under [vars] in the target file (pass it with --target)"
                ),
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
        UserError::new(what).at(at).field(field).hint(fix)
    })?;
    let probe = ProbeSpec::from_value(kind, probe_value).map_err(|e| {
        UserError::new(format!(
            "check `{id}`: invalid [check.{kind}] table: {}",
            e.trim()
        ))
        .at(table_location.clone())
        .field(format!("{field_prefix}.{kind}"))
        .hint(format!(
            "fix the field named above; docs/checks.md lists every field of `{kind}`"
        ))
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
    let needs_at = raw
        .needs
        .iter()
        .map(|n| Location::from_offset(path, text, n.span().start))
        .collect();
    let check = Check {
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
        // Marked by `load_file` from the target's `[stand_ins]`.
        stand_in: false,
        probe: probe.into_probe(),
        location,
        // Set by `load_file` from the target's `[logs]`.
        logs: None,
        when: raw.when.unwrap_or_default(),
        smoke: raw.smoke,
        id,
    };
    Ok((check, needs_at))
}

/// Reads a facts JSON file into `facts.*` vars (and `budget.*` for the
/// selected budget set).
fn load_facts(
    path: &Path,
    options: LoadOptions,
    values: &mut interp::Values,
) -> Result<(), UserError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UserError::new(format!("cannot read facts file {}: {e}", path.display())).hint(
            "`facts` is relative to the profile file; regenerate it with scripts/gen-facts.sh",
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        UserError::new(format!(
            "facts file {} is not valid JSON: {e}",
            path.display()
        ))
        .hint("regenerate it with scripts/gen-facts.sh")
    })?;
    flatten_json(&json, "facts", values);
    let set = if options.safe_mode {
        "safe"
    } else {
        "full_pipe"
    };
    if let Some(serde_json::Value::Object(budgets)) = json.pointer(&format!("/budgets/{set}")) {
        for (name, value) in budgets {
            if let Some(v) = json_to_toml(value) {
                values.set(&format!("budget.{name}"), v);
            }
        }
    }
    Ok(())
}

/// Every value of the facts as a var, tables too (`facts.memory_max_mib`
/// is the whole table, `facts.memory_max_mib.gitlab` one number).
fn flatten_json(value: &serde_json::Value, prefix: &str, values: &mut interp::Values) {
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            flatten_json(v, &format!("{prefix}.{k}"), values);
        }
        if let Some(table) = json_to_toml(value) {
            values.set(prefix, table);
        }
    } else if let Some(v) = json_to_toml(value) {
        values.set(prefix, v);
    }
}

fn json_to_toml(value: &serde_json::Value) -> Option<toml::Value> {
    Some(match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Array(items) => {
            toml::Value::Array(items.iter().filter_map(json_to_toml).collect())
        }
        serde_json::Value::Object(map) => toml::Value::Table(
            map.iter()
                .filter_map(|(k, v)| json_to_toml(v).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

fn retry_policy(raw: &RawRetry) -> Result<RetryPolicy, String> {
    raw.policy()
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

/// Every `needs` entry names an existing check of the same or an earlier
/// phase, and the entries form no cycle. Each error points at the entry at
/// fault (`needs_at`: the location of every entry, by check id).
fn check_needs(checks: &[Check], needs_at: &BTreeMap<String, Vec<Location>>) -> Vec<UserError> {
    let by_id: BTreeMap<&str, &Check> = checks.iter().map(|c| (c.id.as_str(), c)).collect();
    let entry = |check: &Check, index: usize| {
        needs_at
            .get(&check.id)
            .and_then(|locations| locations.get(index))
            .unwrap_or(&check.location)
            .clone()
    };
    let mut errors = Vec::new();
    for check in checks {
        for (index, need) in check.needs.iter().enumerate() {
            let at = entry(check, index);
            match by_id.get(need.as_str()) {
                None => {
                    let suggestion = closest(need, by_id.keys().copied())
                        .map(|s| format!("did you mean `{s}`? "))
                        .unwrap_or_default();
                    errors.push(
                        UserError::new(format!("check `{}` needs unknown check `{need}`", check.id))
                            .at(at)
                            .field("needs")
                            .hint(format!("{suggestion}`needs` must name checks defined in the loaded profiles")),
                    );
                }
                Some(dep) if dep.phase > check.phase => errors.push(
                    UserError::new(format!(
                        "check `{}` (phase {}) needs `{need}` of the later phase {}",
                        check.id, check.phase, dep.phase
                    ))
                    .at(at)
                    .field("needs")
                    .hint("a check may only need checks of its own or an earlier phase; move one of them"),
                ),
                Some(_) if need == &check.id => errors.push(
                    UserError::new(format!("check `{}` needs itself", check.id))
                        .at(at)
                        .field("needs")
                        .hint("remove its own id from `needs`"),
                ),
                Some(_) => {}
            }
        }
    }
    if errors.is_empty() {
        if let Some(cycle) = crate::plan::find_cycle(checks) {
            // The entry of the cycle's first check that names the next one.
            let at = by_id
                .get(cycle[0].as_str())
                .and_then(|first| {
                    let index = first.needs.iter().position(|n| *n == cycle[1])?;
                    Some(entry(first, index))
                })
                .unwrap_or_else(|| by_id[cycle[0].as_str()].location.clone());
            errors.push(crate::plan::cycle_error(&cycle, at));
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
