//! Watches a project's newest pipeline for the ref through GitLab's REST
//! API until it finishes or the wait ends (a tenth of the time left, 0.2 to
//! 2 s, before the check's deadline, kept to read the jobs and their
//! logs), then reads its jobs and the tail of each job's log. Every
//! request is bounded by the check's deadline; the token goes only in the
//! `PRIVATE-TOKEN` header.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::judge::{Facts, Job, Pipeline, RequestError};
use super::spec::{Spec, FINAL};
use crate::check::{excerpt, ProbeContext};
use crate::checks::via::{self, Route};
use crate::error::error_chain;

/// A log keeps at most this many of its last lines...
pub const TRACE_LINES: usize = 40;
/// ...and at most this many of its last bytes.
pub const TRACE_BYTES: usize = 8 * 1024;
/// Logs are read for at most this many jobs.
const MAX_TRACES: usize = 20;

/// The margin kept before the check's deadline to read jobs and logs.
fn margin(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// The last `TRACE_LINES` lines, at most `TRACE_BYTES`, of a log, and
/// whether that is less than the whole.
pub fn log_tail(text: &str) -> (String, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TRACE_LINES);
    let mut tail = lines[from..].join("\n");
    let mut cut = from > 0;
    if tail.len() > TRACE_BYTES {
        let mut start = tail.len() - TRACE_BYTES;
        while !tail.is_char_boundary(start) {
            start += 1;
        }
        tail = tail[start..].to_string();
        cut = true;
    }
    (tail, cut)
}

struct Api<'a> {
    client: reqwest::Client,
    spec: &'a Spec,
    ctx: &'a ProbeContext,
    project_url: String,
}

impl Api<'_> {
    /// GETs `path` (under the project) and returns the body of a 200.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<String, RequestError> {
        let url = format!("{}{path}", self.project_url);
        let shown = if query.is_empty() {
            format!("GET {url}")
        } else {
            let q = query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&");
            format!("GET {url}?{q}")
        };
        let fail = |status: Option<u16>, message: String| RequestError {
            request: shown.clone(),
            status,
            message,
        };
        let mut request = self
            .client
            .get(&url)
            .query(query)
            .header("PRIVATE-TOKEN", &self.spec.token.0)
            .timeout(self.ctx.remaining());
        for (k, v) in &self.spec.headers {
            request = request.header(k, v);
        }
        let work = async {
            let response = request.send().await.map_err(|e| fail(None, error_chain(&e)))?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|e| fail(Some(status), error_chain(&e)))?;
            Ok::<_, RequestError>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.ctx.remaining(), work).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(fail(None, "no answer before the check's deadline".into()))
            }
        };
        if status == 200 {
            return Ok(body);
        }
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").or_else(|| v.get("error")).cloned())
            .map(|m| match m {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .unwrap_or_else(|| excerpt(body.trim(), 200));
        Err(fail(Some(status), message))
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, RequestError> {
        let body = self.get(path, query).await?;
        serde_json::from_str(&body).map_err(|e| RequestError {
            request: format!("GET {}{path}", self.project_url),
            status: Some(200),
            message: format!("not JSON ({e}): {}", excerpt(body.trim(), 200)),
        })
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn pipeline_of(v: &Value) -> Option<Pipeline> {
    Some(Pipeline {
        id: v.get("id")?.as_u64()?,
        status: text(v, "status"),
        sha: text(v, "sha"),
        git_ref: text(v, "ref"),
        web_url: text(v, "web_url"),
    })
}

/// Seconds from `created_at` to `finished_at` (else `updated_at`) of a
/// pipeline's JSON, by GitLab's clock.
fn pipeline_seconds(v: &Value) -> Option<f64> {
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(v.get(k)?.as_str()?).ok();
    let start = at("created_at")?;
    let end = at("finished_at").or_else(|| at("updated_at"))?;
    Some((end - start).num_milliseconds().max(0) as f64 / 1000.0)
}

fn job_of(v: &Value) -> Option<Job> {
    let runner = match v.get("runner") {
        Some(r) if r.is_object() => Some({
            let d = text(r, "description");
            if d.is_empty() {
                format!("#{}", text(r, "id"))
            } else {
                d
            }
        }),
        _ => None,
    };
    let reason = text(v, "failure_reason");
    Some(Job {
        id: v.get("id")?.as_u64()?,
        name: text(v, "name"),
        stage: text(v, "stage"),
        status: text(v, "status"),
        runner,
        failure_reason: (!reason.is_empty()).then_some(reason),
        trace: Ok(String::new()),
        trace_cut: false,
    })
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let started = Instant::now();
    let mut facts = Facts {
        project_url: spec.project_url(),
        ..Facts::default()
    };
    let client = match via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline)
        .await
        .and_then(|b| {
            b.connect_timeout(ctx.remaining())
                .user_agent(crate::web::USER_AGENT)
                .build()
                .map_err(|e| error_chain(&e))
        }) {
        Ok(c) => c,
        Err(message) => {
            facts.error = Some(RequestError {
                request: format!("GET {}", facts.project_url),
                status: None,
                message,
            });
            return facts;
        }
    };
    let api = Api {
        client,
        spec,
        ctx,
        project_url: facts.project_url.clone(),
    };
    if let Err(e) = watch(&api, &mut facts, started).await {
        facts.error = Some(e);
    }
    facts.waited_s = started.elapsed().as_secs_f64();
    facts
}

async fn watch(api: &Api<'_>, facts: &mut Facts, started: Instant) -> Result<(), RequestError> {
    let spec = api.spec;
    let wait_end = api
        .ctx
        .deadline
        .checked_sub(margin(api.ctx.remaining()))
        .unwrap_or(api.ctx.deadline);
    let mut query = vec![("ref", spec.git_ref.as_str()), ("per_page", "20")];
    if let Some(sha) = &spec.sha {
        query.push(("sha", sha.as_str()));
    }
    let mut newest_json = Value::Null;
    loop {
        facts.looks += 1;
        let list = api.get_json("/pipelines", &query).await?;
        let newest = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| pipeline_of(v).map(|p| (p, v)))
            .max_by_key(|(p, _)| p.id);
        if let Some((p, v)) = newest {
            let t = started.elapsed().as_secs_f64();
            if facts.seen.last().map(|(s, _)| s != &p.status).unwrap_or(true)
                || facts.pipeline.as_ref().map(|old| old.id) != Some(p.id)
            {
                facts.seen.push((p.status.clone(), t));
            }
            newest_json = v.clone();
            let done = FINAL.contains(&p.status.as_str());
            facts.pipeline = Some(p);
            if done {
                break;
            }
        }
        let now = Instant::now();
        if now >= wait_end {
            break;
        }
        // The last look falls at the wait's end: a pipeline may just finish.
        tokio::time::sleep(spec.poll.min(wait_end - now)).await;
    }
    let Some(p) = facts.pipeline.clone() else {
        return Ok(());
    };
    if FINAL.contains(&p.status.as_str()) {
        facts.pipeline_seconds = pipeline_seconds(&newest_json);
    }
    let jobs = api
        .get_json(&format!("/pipelines/{}/jobs", p.id), &[("per_page", "100")])
        .await?;
    facts.jobs = jobs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(job_of)
        .collect();
    facts.jobs.sort_by_key(|j| j.id);
    for job in facts.jobs.iter_mut().take(MAX_TRACES) {
        if matches!(job.status.as_str(), "created" | "pending" | "manual" | "skipped") {
            continue;
        }
        job.trace = match api.get(&format!("/jobs/{}/trace", job.id), &[]).await {
            Ok(log) => {
                let (tail, cut) = log_tail(&log);
                job.trace_cut = cut;
                Ok(tail)
            }
            Err(e) => Err(match e.status {
                Some(s) => format!("status {s}: {}", e.message),
                None => e.message,
            }),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_its_last_forty_lines_and_eight_kib() {
        let log: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let (tail, cut) = log_tail(&log);
        assert!(cut && tail.starts_with("line 61\n") && tail.ends_with("line 100"), "{tail}");
        let (tail, cut) = log_tail("short\n");
        assert_eq!((tail.as_str(), cut), ("short", false));
        let long = "x".repeat(20_000);
        let (tail, cut) = log_tail(&long);
        assert!(cut && tail.len() == TRACE_BYTES);
    }

    #[test]
    fn pipeline_seconds_by_gitlabs_clock() {
        let v: Value = serde_json::from_str(
            r#"{"created_at":"2024-05-01T10:00:00.000Z","finished_at":"2024-05-01T10:00:12.500Z"}"#,
        )
        .unwrap();
        assert_eq!(pipeline_seconds(&v), Some(12.5));
        assert_eq!(pipeline_seconds(&Value::Null), None);
    }
}
