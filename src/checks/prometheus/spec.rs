//! The `[check.prometheus]` table: the server's base URL and the assertion,
//! `targets_up` (every active scrape target is up) or `query` (an instant
//! query returns samples, optionally at least `min_value`).

use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;

/// The table as written in a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// The server's base URL, e.g. `http://127.0.0.1:9090`.
    base_url: String,
    /// What to assert: `targets_up` or `query`.
    #[serde(rename = "assert")]
    assertion: AssertKind,
    /// `targets_up`: scrape jobs that must be among the active targets.
    #[serde(default)]
    jobs: Option<Vec<String>>,
    /// `query`: a PromQL instant query that must return at least one sample.
    #[serde(default)]
    query: Option<String>,
    /// `query`: every returned sample must be at least this value.
    #[serde(default)]
    min_value: Option<f64>,
    /// A PEM file of CA certificates to trust for an https `base_url`.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// `"direct"` or `"host"` (through the host's tunnel); default: the host's.
    #[serde(default)]
    via: Option<Via>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AssertKind {
    TargetsUp,
    Query,
}

/// A checked `[check.prometheus]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// Without a trailing slash.
    pub base_url: String,
    pub ca_file: Option<PathBuf>,
    pub assertion: Assertion,
    /// The route (`None`: the host's default).
    pub via: Option<Via>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Assertion {
    /// Every active target's health is "up"; `jobs` are among them.
    TargetsUp { jobs: Vec<String> },
    /// The query returns at least one sample, each >= `min_value` if set.
    Query {
        query: String,
        min_value: Option<f64>,
    },
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let base_url = crate::checks::http_base_url(&raw.base_url, "http://127.0.0.1:9090")?;
        let assertion = match raw.assertion {
            AssertKind::TargetsUp => {
                if raw.query.is_some() || raw.min_value.is_some() {
                    return Err(
                        "`query`/`min_value` do not apply to `assert = \"targets_up\"`; remove them"
                            .into(),
                    );
                }
                Assertion::TargetsUp {
                    jobs: raw.jobs.unwrap_or_default(),
                }
            }
            AssertKind::Query => {
                if raw.jobs.is_some() {
                    return Err("`jobs` does not apply to `assert = \"query\"`; remove it".into());
                }
                let query = raw.query.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
                    "`assert = \"query\"` needs `query`, e.g. `query = \"up{job=\\\"synapse\\\"}\"`"
                        .to_string()
                })?;
                Assertion::Query {
                    query,
                    min_value: raw.min_value,
                }
            }
        };
        Ok(Spec {
            base_url,
            ca_file: raw.ca_file,
            assertion,
            via: raw.via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(&format!("base_url = \"http://p:9090/\"\n{body}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_and_rejects() {
        let s = parse("assert = \"targets_up\"").unwrap();
        assert_eq!(s.base_url, "http://p:9090");
        assert_eq!(s.assertion, Assertion::TargetsUp { jobs: vec![] });
        let s = parse("assert = \"query\"\nquery = \"up\"\nmin_value = 1").unwrap();
        assert_eq!(
            s.assertion,
            Assertion::Query {
                query: "up".into(),
                min_value: Some(1.0)
            }
        );
        for (body, expect) in [
            ("assert = \"query\"", "needs `query`"),
            ("assert = \"targets_up\"\nquery = \"up\"", "do not apply"),
            (
                "assert = \"query\"\nquery = \"up\"\njobs = [\"x\"]",
                "`jobs` does not apply",
            ),
            ("assert = \"ready\"", "unknown variant"),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(expect), "{body}: {err}");
        }
    }
}
