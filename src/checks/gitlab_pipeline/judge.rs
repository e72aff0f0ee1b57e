//! Judges a GitLab pipeline as the probe last saw it: there is one for the
//! ref (and commit), it finished with the expected status, the listed jobs
//! exist with theirs, and their logs hold the expected texts.

use super::spec::{Spec, FINAL};
use crate::check::{all_of, Verdict};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// `BASE/api/v4/projects/:id`, for the evidence.
    pub project_url: String,
    /// How many times the pipelines were listed.
    pub looks: u32,
    /// A request that failed: nothing more could be learnt.
    pub error: Option<RequestError>,
    /// The newest pipeline for the ref (and sha), as last seen.
    pub pipeline: Option<Pipeline>,
    /// Each status the pipeline was seen in, with the seconds since the
    /// probe started.
    pub seen: Vec<(String, f64)>,
    pub jobs: Vec<Job>,
    /// Seconds the probe waited.
    pub waited_s: f64,
    /// Seconds from the pipeline's creation to its end (GitLab's clock).
    pub pipeline_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestError {
    /// What was asked, e.g. `GET .../pipelines?ref=main`.
    pub request: String,
    /// The answer's status, when there was one.
    pub status: Option<u16>,
    /// GitLab's `message`, the body's start, or why there was no answer.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub id: u64,
    pub status: String,
    pub sha: String,
    pub git_ref: String,
    pub web_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: u64,
    pub name: String,
    pub stage: String,
    pub status: String,
    /// The runner's description; `None`: no runner took the job.
    pub runner: Option<String>,
    pub failure_reason: Option<String>,
    /// The log's tail (last lines), or why it could not be read.
    pub trace: Result<String, String>,
    /// The log was longer than its tail.
    pub trace_cut: bool,
}

fn secs(s: f64) -> String {
    format!("{s:.1}s")
}

fn request_error(spec: &Spec, e: &RequestError) -> String {
    let what = match e.status {
        Some(401) => format!(
            "GitLab refused the token ({}): set `token` to a valid access token with the read_api scope",
            e.message
        ),
        Some(403) => format!("the token may not read project {} ({})", spec.project, e.message),
        Some(404) if e.message.contains("Project") => format!(
            "no project {} on GitLab ({}): check `project`",
            spec.project, e.message
        ),
        Some(code) => format!("status {code}: {}", e.message),
        None => e.message.clone(),
    };
    format!("{}: {what}", e.request)
}

/// "job hello failed (script_failure)".
fn job_line(j: &Job) -> String {
    match &j.failure_reason {
        Some(r) if !r.is_empty() => format!("job {} {} ({r})", j.name, j.status),
        _ => format!("job {} {}", j.name, j.status),
    }
}

fn evidence(spec: &Spec, f: &Facts) -> String {
    let mut e = format!(
        "GET {}/pipelines?ref={}{}: {} look(s) in {}\n",
        f.project_url,
        spec.git_ref,
        spec.sha.as_ref().map(|s| format!("&sha={s}")).unwrap_or_default(),
        f.looks,
        secs(f.waited_s)
    );
    if let Some(p) = &f.pipeline {
        let seen = f
            .seen
            .iter()
            .map(|(s, t)| format!("{s} at {}", secs(*t)))
            .collect::<Vec<_>>()
            .join(" -> ");
        e.push_str(&format!(
            "pipeline {} (ref {}, sha {}): {seen}\n",
            p.id, p.git_ref, p.sha
        ));
        if !p.web_url.is_empty() {
            e.push_str(&format!("  {}\n", p.web_url));
        }
    }
    if !f.jobs.is_empty() {
        e.push_str("jobs:\n");
    }
    for j in &f.jobs {
        e.push_str(&format!(
            "  {} (stage {}): {}{}, runner {}\n",
            j.name,
            j.stage,
            j.status,
            j.failure_reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            j.runner
                .as_ref()
                .map(|r| format!("{r:?}"))
                .unwrap_or_else(|| "none".into())
        ));
    }
    // Failed jobs' logs first: they say why.
    let mut ordered: Vec<&Job> = f.jobs.iter().filter(|j| j.status == "failed").collect();
    ordered.extend(f.jobs.iter().filter(|j| j.status != "failed"));
    for j in ordered {
        match &j.trace {
            Ok(t) if t.trim().is_empty() => {}
            Ok(t) => e.push_str(&format!(
                "log of {} ({}):\n{}\n",
                j.name,
                if j.trace_cut { "its tail" } else { "whole" },
                t.trim_end()
            )),
            Err(why) => e.push_str(&format!("log of {}: {why}\n", j.name)),
        }
    }
    if let Some(err) = &f.error {
        e.push_str(&format!("{}\n", request_error(spec, err)));
    }
    e.trim_end().to_string()
}

pub fn judge(spec: &Spec, f: &Facts) -> Verdict {
    let for_what = match &spec.sha {
        Some(sha) => format!("ref {} at {sha}", spec.git_ref),
        None => format!("ref {}", spec.git_ref),
    };
    let expected = format!("a pipeline for {for_what} ends {}", spec.status);
    let done = |v: Verdict| {
        let mut v = v
            .with_evidence(evidence(spec, f))
            .with_metric("waited_seconds", f.waited_s);
        if let Some(s) = f.pipeline_seconds {
            v = v.with_metric("pipeline_seconds", s);
        }
        v
    };
    if let Some(err) = &f.error {
        if f.pipeline.is_none() || f.jobs.is_empty() {
            return done(Verdict::fail(expected, request_error(spec, err)));
        }
    }
    let Some(p) = &f.pipeline else {
        return done(Verdict::fail(
            expected,
            format!("no pipeline for {for_what} after {}", secs(f.waited_s)),
        ));
    };
    if let Some(sha) = &spec.sha {
        if !p.sha.to_ascii_lowercase().starts_with(sha.as_str()) {
            return done(Verdict::fail(
                expected,
                format!("the newest pipeline for ref {} ({}) is for {}, not {sha}", spec.git_ref, p.id, p.sha),
            ));
        }
    }
    if !FINAL.contains(&p.status.as_str()) {
        let mut found = format!(
            "pipeline {} is still {} after {}",
            p.id,
            p.status,
            secs(f.waited_s)
        );
        for j in &f.jobs {
            if j.status == "pending" && j.runner.is_none() {
                found.push_str(&format!(
                    "; job {} is pending: no runner took it (is a runner online?)",
                    j.name
                ));
            } else if !FINAL.contains(&j.status.as_str()) && j.status != "created" {
                found.push_str(&format!(
                    "; job {} is {} (runner {})",
                    j.name,
                    j.status,
                    j.runner.as_deref().unwrap_or("none")
                ));
            }
        }
        return done(Verdict::fail(expected, found));
    }
    let took = f.pipeline_seconds.unwrap_or(f.waited_s);
    let mut parts = Vec::new();
    let e = format!("pipeline for {for_what} {}", spec.status);
    if p.status == spec.status {
        parts.push(Verdict::pass(e, format!("pipeline {} {} in {}", p.id, p.status, secs(took))));
    } else {
        let failed: Vec<String> = f
            .jobs
            .iter()
            .filter(|j| j.status == "failed")
            .map(job_line)
            .collect();
        let why = if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        };
        parts.push(Verdict::fail(
            e,
            format!("pipeline {} {} after {}{why}", p.id, p.status, secs(took)),
        ));
    }
    let names: Vec<&str> = f.jobs.iter().map(|j| j.name.as_str()).collect();
    let judged: Vec<&Job> = if spec.jobs.is_empty() {
        f.jobs.iter().collect()
    } else {
        f.jobs
            .iter()
            .filter(|j| spec.jobs.contains_key(&j.name))
            .collect()
    };
    for (name, want) in &spec.jobs {
        let e = format!("job {name} {want}");
        parts.push(match f.jobs.iter().find(|j| &j.name == name) {
            None => Verdict::fail(
                e,
                format!(
                    "no job {name} in pipeline {} (its jobs: {})",
                    p.id,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            ),
            Some(j) if &j.status == want => Verdict::pass(e, job_line(j)),
            Some(j) => Verdict::fail(e, job_line(j)),
        });
    }
    if spec.jobs.is_empty() && spec.status == "success" {
        if f.jobs.is_empty() {
            parts.push(Verdict::fail("its jobs success", format!("pipeline {} lists no job", p.id)));
        }
        for j in &f.jobs {
            let e = format!("job {} success", j.name);
            parts.push(if j.status == "success" {
                Verdict::pass(e, job_line(j))
            } else {
                Verdict::fail(e, job_line(j))
            });
        }
    }
    for needle in &spec.trace_contains {
        for j in &judged {
            let e = format!("log of {} contains {needle:?}", j.name);
            parts.push(match &j.trace {
                Ok(t) if t.contains(needle.as_str()) => Verdict::pass(e.clone(), e),
                Ok(_) => Verdict::fail(
                    e,
                    format!(
                        "the log of job {} lacks {needle:?}{} (its tail is in the evidence)",
                        j.name,
                        if j.trace_cut { " in its last lines" } else { "" }
                    ),
                ),
                Err(why) => Verdict::fail(e, format!("the log of job {} could not be read: {why}", j.name)),
            });
        }
    }
    if let Some(err) = &f.error {
        parts.push(Verdict::fail("every request answered", request_error(spec, err)));
    }
    let mut v = all_of(parts);
    if v.pass {
        let jobs = judged
            .iter()
            .map(|j| job_line(j))
            .collect::<Vec<_>>()
            .join(", ");
        v.found = format!("pipeline {} {} in {}; {jobs}", p.id, p.status, secs(took));
    }
    done(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!(
            "base_url = \"http://gl\"\ntoken = \"t\"\nproject = \"rave/hello\"\nref = \"hello-world\"\n{extra}"
        ))
        .unwrap()
    }

    fn job(name: &str, status: &str, runner: Option<&str>, trace: &str) -> Job {
        Job {
            id: 7,
            name: name.into(),
            stage: "test".into(),
            status: status.into(),
            runner: runner.map(str::to_string),
            failure_reason: (status == "failed").then(|| "script_failure".to_string()),
            trace: Ok(trace.into()),
            trace_cut: false,
        }
    }

    fn facts(status: &str, jobs: Vec<Job>) -> Facts {
        Facts {
            project_url: "http://gl/api/v4/projects/rave%2Fhello".into(),
            looks: 3,
            pipeline: Some(Pipeline {
                id: 12,
                status: status.into(),
                sha: "abcdef1234".into(),
                git_ref: "hello-world".into(),
                web_url: String::new(),
            }),
            seen: vec![("running".into(), 0.0), (status.into(), 2.0)],
            jobs,
            waited_s: 2.5,
            pipeline_seconds: Some(3.0),
            error: None,
        }
    }

    #[test]
    fn cases() {
        let ok = || facts("success", vec![job("hello", "success", Some("r1"), "Hello, world!\n")]);
        let failed = facts(
            "failed",
            vec![job("hello", "failed", Some("r1"), "$ ./hello\nsh: ./hello: not found\n")],
        );
        let pending = facts("pending", vec![job("hello", "pending", None, "")]);
        let nothing = Facts {
            pipeline: None,
            waited_s: 9.0,
            ..ok()
        };
        let refused = Facts {
            pipeline: None,
            error: Some(RequestError {
                request: "GET http://gl/api/v4/projects/rave%2Fhello/pipelines".into(),
                status: Some(401),
                message: "401 Unauthorized".into(),
            }),
            ..ok()
        };
        let table: Vec<(&str, Facts, bool, &str)> = vec![
            ("", ok(), true, "pipeline 12 success in 3.0s; job hello success"),
            ("jobs = [\"hello\"]\ntrace_contains = [\"Hello, world\"]", ok(), true, "job hello success"),
            ("trace_contains = [\"Bye\"]", ok(), false, "the log of job hello lacks \"Bye\""),
            ("jobs = [\"deploy\"]", ok(), false, "no job deploy in pipeline 12 (its jobs: hello)"),
            ("", failed.clone(), false, "pipeline 12 failed after 3.0s: job hello failed (script_failure)"),
            ("status = \"failed\"\njobs = { hello = \"failed\" }", failed, true, "pipeline 12 failed"),
            ("", pending, false, "pipeline 12 is still pending after 2.5s; job hello is pending: no runner took it (is a runner online?)"),
            ("", nothing, false, "no pipeline for ref hello-world after 9.0s"),
            ("sha = \"0123456\"", ok(), false, "is for abcdef1234, not 0123456"),
            ("", refused, false, "GitLab refused the token"),
        ];
        for (extra, f, pass, found) in table {
            let v = judge(&spec(extra), &f);
            assert_eq!(v.pass, pass, "{extra}: {v:?}");
            assert!(v.found.contains(found), "{extra}: {:?}", v.found);
        }
    }

    #[test]
    fn a_failed_jobs_log_tail_is_evidence_and_metrics_are_kept() {
        let f = facts(
            "failed",
            vec![
                job("build", "success", Some("r1"), "built\n"),
                job("hello", "failed", Some("r1"), "sh: ./hello: not found\n"),
                job("deploy", "canceled", None, ""),
            ],
        );
        let v = judge(&spec(""), &f);
        assert!(!v.pass);
        let at = v.evidence.find("log of hello").expect("the failed job's log");
        assert!(at < v.evidence.find("log of build").unwrap(), "{}", v.evidence);
        assert!(v.evidence.contains("sh: ./hello: not found"), "{}", v.evidence);
        assert!(v.evidence.contains("deploy (stage test): canceled, runner none"), "{}", v.evidence);
        assert_eq!(v.metrics["pipeline_seconds"], 3.0);
        assert_eq!(v.metrics["waited_seconds"], 2.5);
    }
}
