//! Asks a Prometheus server's HTTP API for its active scrape targets or an
//! instant query's result, and reads the answer into facts. Every call is
//! bounded by the check's deadline.

use std::time::Duration;

use serde_json::Value;

use super::judge::{Facts, Sample, TargetHealth};
use super::spec::{Assertion, Spec};
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::error::error_chain;

/// One API call; no answer is itself a fact (`Facts::Unreachable`).
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let answer = match tokio::time::timeout(ctx.remaining(), fetch(spec, ctx, route)).await {
        Ok(answer) => answer,
        Err(_) => Err("no answer before the check's deadline".to_string()),
    };
    match answer {
        Err(e) => Facts::Unreachable(e),
        Ok((request, status, body)) => read_facts(spec, request, status, &body),
    }
}

/// GETs the API path of the assertion: (request line, status, body).
async fn fetch(
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
) -> Result<(String, u16, String), String> {
    let builder = via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline).await?;
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
