//! `[check.prometheus]`: asks a Prometheus server whether every active
//! scrape target is up (`targets_up`), or whether an instant query returns
//! samples (`query`), optionally at least `min_value`.
//!
//! Both are HTTP API calls bounded by the check's deadline.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::judge;
use super::judge::{Facts, Sample, TargetHealth};
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::error::error_chain;

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
        let base_url = raw.base_url.trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "`base_url = \"{}\"` is not an http(s) URL; write e.g. `base_url = \"http://127.0.0.1:9090\"`",
                raw.base_url
            ));
        }
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
        })
    }
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let answer = match tokio::time::timeout(ctx.remaining(), fetch(spec, ctx)).await {
        Ok(answer) => answer,
        Err(_) => Err("no answer before the check's deadline".to_string()),
    };
    let facts = match answer {
        Err(e) => Facts::Unreachable(e),
        Ok((request, status, body)) => read_facts(spec, request, status, &body),
    };
    judge::judge(spec, &facts)
}

/// GETs the API path of the assertion: (request line, status, body).
async fn fetch(spec: &Spec, ctx: &ProbeContext) -> Result<(String, u16, String), String> {
    let builder = crate::web::trust_ca_file(
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()),
        spec.ca_file.as_deref(),
    )?;
    let client = builder.build().map_err(|e| e.to_string())?;
    let (path, query): (&str, Vec<(&str, &str)>) = match &spec.assertion {
        Assertion::TargetsUp { .. } => ("/api/v1/targets", vec![("state", "active")]),
        Assertion::Query { query, .. } => ("/api/v1/query", vec![("query", query.as_str())]),
    };
    let request = format!("GET {path}");
    let response = client
        .get(format!("{}{path}", spec.base_url))
        .query(&query)
        .timeout(ctx.remaining().max(Duration::from_millis(1)))
        .send()
        .await
        .map_err(|e| format!("{request}: {}", error_chain(&e)))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{request}: status {status}, then {}", error_chain(&e)))?;
    Ok((request, status, body))
}

fn read_facts(spec: &Spec, request: String, status: u16, body: &str) -> Facts {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let success = status == 200
        && json
            .as_ref()
            .and_then(|j| j.get("status"))
            .and_then(Value::as_str)
            == Some("success");
    if !success {
        return Facts::ApiError {
            request,
            status,
            body: crate::check::excerpt(body, 1000),
        };
    }
    let data = json.as_ref().and_then(|j| j.get("data"));
    match &spec.assertion {
        Assertion::TargetsUp { .. } => {
            let targets = data
                .and_then(|d| d.get("activeTargets"))
                .and_then(Value::as_array)
                .map(|items| items.iter().map(target_health).collect())
                .unwrap_or_default();
            Facts::Targets(targets)
        }
        Assertion::Query { .. } => {
            let result_type = data
                .and_then(|d| d.get("resultType"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let samples = match data.and_then(|d| d.get("result")) {
                // A scalar: [time, "value"].
                Some(scalar) if result_type == "scalar" => {
                    sample(&serde_json::json!({ "value": scalar }))
                        .into_iter()
                        .collect()
                }
                Some(Value::Array(items)) => items.iter().filter_map(sample).collect(),
                _ => Vec::new(),
            };
            Facts::Samples {
                result_type,
                samples,
            }
        }
    }
}

fn target_health(target: &Value) -> TargetHealth {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let labels = target.get("labels");
    TargetHealth {
        job: text(
            labels
                .and_then(|l| l.get("job"))
                .or(target.get("scrapePool")),
        ),
        instance: text(labels.and_then(|l| l.get("instance"))),
        scrape_url: text(target.get("scrapeUrl")),
        health: text(target.get("health")),
        last_error: text(target.get("lastError")),
    }
}

fn sample(item: &Value) -> Option<Sample> {
    let value = item.get("value")?.as_array()?.get(1)?.as_str()?;
    let labels = item
        .get("metric")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    Some(Sample {
        labels: format!("{{{labels}}}"),
        value: value.parse().unwrap_or(f64::NAN),
    })
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

    #[test]
    fn reads_api_answers() {
        let spec = parse("assert = \"targets_up\"").unwrap();
        let body = r#"{"status":"success","data":{"activeTargets":[{"labels":{"job":"synapse","instance":"127.0.0.1:9000"},"scrapePool":"synapse","scrapeUrl":"http://127.0.0.1:9000/_synapse/metrics","health":"down","lastError":"connection refused"}]}}"#;
        match read_facts(&spec, "GET /api/v1/targets".into(), 200, body) {
            Facts::Targets(t) => {
                assert_eq!(t[0].job, "synapse");
                assert_eq!(t[0].health, "down");
                assert_eq!(t[0].last_error, "connection refused");
            }
            other => panic!("{other:?}"),
        }
        let spec = parse("assert = \"query\"\nquery = \"up\"").unwrap();
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"p"},"value":[1,"1"]}]}}"#;
        match read_facts(&spec, "GET /api/v1/query".into(), 200, body) {
            Facts::Samples { samples, .. } => {
                assert_eq!(samples[0].labels, "{job=\"p\"}");
                assert_eq!(samples[0].value, 1.0);
            }
            other => panic!("{other:?}"),
        }
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(matches!(
            read_facts(&spec, "GET /api/v1/query".into(), 400, body),
            Facts::ApiError { status: 400, .. }
        ));
    }
}
