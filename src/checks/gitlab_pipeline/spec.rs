//! The `[check.gitlab_pipeline]` table: which project's pipeline (ref,
//! optionally commit), the status it must end with, the jobs and what
//! their logs must hold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::check::HumanDuration;
use crate::checks::via::Via;
use crate::checks::Password;

/// The statuses a pipeline or job ends with.
pub const FINAL: &[&str] = &["success", "failed", "canceled", "skipped"];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    base_url: String,
    token: Password,
    project: toml::Value,
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    jobs: Option<Jobs>,
    #[serde(default)]
    trace_contains: Vec<String>,
    #[serde(default)]
    poll: Option<HumanDuration>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    via: Option<Via>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// `jobs = ["hello"]` (each must end with `status`) or
/// `jobs = { hello = "success", lint = "failed" }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum Jobs {
    Names(Vec<String>),
    Statuses(BTreeMap<String, String>),
}

/// A pipeline check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// GitLab's URL, without `/api/v4`.
    pub base_url: String,
    /// Sent as `PRIVATE-TOKEN`.
    pub token: Password,
    /// A numeric id or the `namespace/name` path.
    pub project: String,
    pub git_ref: String,
    pub sha: Option<String>,
    /// The status the pipeline must end with (default `success`).
    pub status: String,
    /// Job name -> the status it must end with; empty: every job must end
    /// with `status`.
    pub jobs: BTreeMap<String, String>,
    /// Substrings the log of each job in `jobs` (else of every job) must contain.
    pub trace_contains: Vec<String>,
    /// How long to wait between looks (default 1 s).
    pub poll: std::time::Duration,
    pub ca_file: Option<PathBuf>,
    pub via: Option<Via>,
    /// More request headers.
    pub headers: BTreeMap<String, String>,
}

fn status(field: &str, value: &str) -> Result<String, String> {
    let v = value.trim().to_ascii_lowercase();
    if FINAL.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(format!(
            "`{field} = \"{value}\"` is not a final status: write one of {}",
            FINAL.join(", ")
        ))
    }
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;
    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let base_url = crate::checks::http_base_url(&raw.base_url, "${gitlab.url}")?;
        let base_url = base_url
            .strip_suffix("/api/v4")
            .map(str::to_string)
            .unwrap_or(base_url);
        let project = match &raw.project {
            toml::Value::Integer(n) if *n > 0 => n.to_string(),
            toml::Value::String(s) if !s.trim().trim_matches('/').is_empty() => {
                s.trim().trim_matches('/').to_string()
            }
            other => {
                return Err(format!(
                    "`project = {other}` is neither a project id nor a path: write e.g. `project = \"rave/hello-world\"` or `project = 42`"
                ))
            }
        };
        let git_ref = raw.git_ref.trim().to_string();
        if git_ref.is_empty() {
            return Err("`ref` is empty: name the branch, e.g. `ref = \"main\"`".into());
        }
        if let Some(sha) = &raw.sha {
            if !(7..=40).contains(&sha.len()) || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "`sha = \"{sha}\"` is not a commit id: write its 40 hex digits (at least 7)"
                ));
            }
        }
        let status_wanted = status("status", raw.status.as_deref().unwrap_or("success"))?;
        let jobs = match raw.jobs {
            None => BTreeMap::new(),
            Some(Jobs::Names(names)) => {
                if names.is_empty() {
                    return Err("`jobs = []` names no job: list them, e.g. `jobs = [\"hello\"]`, or remove the field".into());
                }
                names
                    .into_iter()
                    .map(|n| (n, status_wanted.clone()))
                    .collect()
            }
            Some(Jobs::Statuses(map)) => {
                let mut out = BTreeMap::new();
                for (name, s) in map {
                    let s = status(&format!("jobs.{name}"), &s)?;
                    out.insert(name, s);
                }
                out
            }
        };
        let poll = raw
            .poll
            .map(|p| p.0)
            .unwrap_or(std::time::Duration::from_secs(1));
        if poll < std::time::Duration::from_millis(100) {
            return Err("`poll` is below 100ms: GitLab would be asked too often; write e.g. `poll = \"1s\"`".into());
        }
        Ok(Spec {
            base_url,
            token: raw.token,
            project,
            git_ref,
            sha: raw.sha.map(|s| s.to_ascii_lowercase()),
            status: status_wanted,
            jobs,
            trace_contains: raw.trace_contains,
            poll,
            ca_file: raw.ca_file,
            via: raw.via,
            headers: raw.headers,
        })
    }
}

/// `rave/hello-world` -> `rave%2Fhello-world`: every byte but the unreserved
/// ones percent-encoded, as GitLab's `:id` wants a path.
pub fn encode_path_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Spec {
    /// The API URL of the project: `BASE/api/v4/projects/:id`.
    pub fn project_url(&self) -> String {
        format!(
            "{}/api/v4/projects/{}",
            self.base_url,
            encode_path_segment(&self.project)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(&format!(
            "base_url = \"http://gitlab.local/\"\ntoken = \"t\"\nref = \"hello-world\"\n{extra}"
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn fields_and_defaults() {
        let s = spec("project = \"rave/hello-world-x\"").unwrap();
        assert_eq!(s.project_url(), "http://gitlab.local/api/v4/projects/rave%2Fhello-world-x");
        assert_eq!(s.status, "success");
        assert!(s.jobs.is_empty());
        assert_eq!(s.poll, std::time::Duration::from_secs(1));
        let s = spec("project = 42\njobs = [\"hello\"]\nstatus = \"failed\"").unwrap();
        assert_eq!(s.project_url(), "http://gitlab.local/api/v4/projects/42");
        assert_eq!(s.jobs["hello"], "failed");
        let s = spec("project = 42\njobs = { hello = \"success\", lint = \"Failed\" }").unwrap();
        assert_eq!(s.jobs["lint"], "failed");
        let s = spec("project = 1\nbase_url = \"https://gl.local/api/v4\"").unwrap_err();
        assert!(s.contains("duplicate"), "{s}");
        let s: Spec = toml::from_str("base_url = \"https://gl.local/api/v4/\"\ntoken = \"t\"\nref = \"r\"\nproject = 1").unwrap();
        assert_eq!(s.base_url, "https://gl.local");
    }

    #[test]
    fn wrong_values_name_the_fix() {
        for (extra, needle) in [
            ("project = 1\nstatus = \"running\"", "not a final status"),
            ("project = 1\njobs = { a = \"ok\" }", "`jobs.a = \"ok\"`"),
            ("project = 1\njobs = []", "names no job"),
            ("project = \"\"", "neither a project id nor a path"),
            ("project = 1\nsha = \"xyz\"", "not a commit id"),
            ("project = 1\npoll = \"10ms\"", "below 100ms"),
            ("project = 1\nbogus = 1", "unknown field"),
        ] {
            let e = spec(extra).unwrap_err();
            assert!(e.contains(needle), "{extra}: {e}");
        }
    }
}
