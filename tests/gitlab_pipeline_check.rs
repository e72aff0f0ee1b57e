//! The `gitlab_pipeline` check against a small local HTTP server that
//! answers GitLab's pipeline, job and trace routes from a script: a
//! pipeline that runs, then succeeds (pass, the job's log checked); one
//! that fails (FAIL naming the job, its failure reason and its log's tail);
//! one whose job stays pending with no runner (FAIL at the deadline with
//! that reason, before the check's end); none at all; a refused token.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spinup_smoke::check::{ProbeContext, Verdict};
use spinup_smoke::checks::gitlab_pipeline::{run, Spec};
use spinup_smoke::checks::testutil;

const TOKEN: &str = "glpat-test-token";
const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const PROJECT: &str = "/api/v4/projects/rave%2Fhello-world-x";

/// A job's status, runner description and failure reason.
type JobState = (&'static str, Option<&'static str>, Option<&'static str>);

/// What the server answers.
#[derive(Clone)]
struct Script {
    /// The pipeline's status at each look (`None`: no pipeline yet); the
    /// last one repeats.
    looks: Vec<Option<&'static str>>,
    /// The job `hello` for a pipeline status: status, runner, failure reason.
    job: fn(&str) -> JobState,
    trace: &'static str,
}

#[derive(Default)]
struct Seen {
    looks: usize,
    requests: Vec<String>,
}

fn pipeline(status: &str) -> String {
    let finished = if ["success", "failed", "canceled"].contains(&status) {
        "\"2024-05-01T10:00:04.500Z\""
    } else {
        "null"
    };
    format!(
        r#"{{"id":12,"iid":1,"project_id":3,"sha":"{SHA}","ref":"hello-world","status":"{status}","source":"push","created_at":"2024-05-01T10:00:00.000Z","updated_at":"2024-05-01T10:00:04.500Z","started_at":"2024-05-01T10:00:01.000Z","finished_at":{finished},"web_url":"http://gitlab.local/rave/hello-world-x/-/pipelines/12"}}"#
    )
}

fn job(script: &Script, pipeline_status: &str) -> String {
    let (status, runner, reason) = (script.job)(pipeline_status);
    let runner = runner
        .map(|d| format!(r#"{{"id":1,"description":"{d}"}}"#))
        .unwrap_or_else(|| "null".into());
    let reason = reason
        .map(|r| format!(r#","failure_reason":"{r}""#))
        .unwrap_or_default();
    format!(
        r#"[{{"id":7,"name":"hello","stage":"test","status":"{status}","ref":"hello-world","created_at":"2024-05-01T10:00:00.000Z","started_at":null,"finished_at":null,"duration":null{reason},"pipeline":{{"id":12,"project_id":3,"ref":"hello-world","sha":"{SHA}","status":"{pipeline_status}"}},"runner":{runner}}}]"#
    )
}

fn respond(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The answer to one request head.
fn answer(script: &Script, seen: &Mutex<Seen>, head: &str) -> String {
    let line = head.lines().next().unwrap_or("").to_string();
    let token_ok = head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.eq_ignore_ascii_case("private-token") && v.trim() == TOKEN)
    });
    let mut seen = seen.lock().unwrap();
    seen.requests.push(line.clone());
    if !token_ok {
        return respond(
            "401 Unauthorized",
            "application/json",
            r#"{"message":"401 Unauthorized"}"#,
        );
    }
    let path = line.split(' ').nth(1).unwrap_or("");
    let current = |looks: usize| script.looks[looks.min(script.looks.len()).saturating_sub(1)];
    if path.starts_with(&format!("{PROJECT}/pipelines?")) {
        seen.looks += 1;
        let body = match current(seen.looks) {
            Some(status) => format!("[{}]", pipeline(status)),
            None => "[]".into(),
        };
        return respond("200 OK", "application/json", &body);
    }
    let status = current(seen.looks).unwrap_or("created");
    if path.starts_with(&format!("{PROJECT}/pipelines/12/jobs")) {
        return respond("200 OK", "application/json", &job(script, status));
    }
    if path == format!("{PROJECT}/jobs/7/trace") {
        return respond("200 OK", "text/plain", script.trace);
    }
    respond(
        "404 Not Found",
        "application/json",
        r#"{"message":"404 Project Not Found"}"#,
    )
}

/// Serves `script` on a local port; returns its base URL and what it saw.
async fn gitlab(script: Script) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    let addr = testutil::serve_fn(move |head| answer(&script, &state, head)).await;
    (format!("http://{addr}"), seen)
}

fn spec(base: &str, token: &str, extra: &str) -> Spec {
    let text = format!(
        "base_url = \"{base}\"\ntoken = \"{token}\"\nproject = \"rave/hello-world-x\"\nref = \"hello-world\"\npoll = \"100ms\"\n{extra}"
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn assert_fails_with(v: &Verdict, reason: &str) {
    assert!(!v.pass, "passed: {v:?}");
    assert!(v.found.contains(reason), "not for `{reason}`: {v:?}");
}

fn hello_follows(pipeline: &str) -> JobState {
    match pipeline {
        "success" => ("success", Some("demo-runner"), None),
        "failed" => ("failed", Some("demo-runner"), Some("script_failure")),
        "running" => ("running", Some("demo-runner"), None),
        _ => ("pending", None, None),
    }
}

#[tokio::test]
async fn a_running_pipeline_that_succeeds_passes_with_its_log() {
    let (base, seen) = gitlab(Script {
        looks: vec![None, Some("pending"), Some("running"), Some("success")],
        job: hello_follows,
        trace: "Running with gitlab-runner\n$ echo Hello, world!\nHello, world!\nJob succeeded\n",
    })
    .await;
    let ctx = ProbeContext::for_tests(20);
    let extra =
        format!("sha = \"{SHA}\"\njobs = [\"hello\"]\ntrace_contains = [\"Hello, world!\"]");
    let v = run(&spec(&base, TOKEN, &extra), &ctx).await;
    assert!(v.pass, "{v:?}");
    assert!(
        v.found
            .contains("pipeline 12 success in 4.5s; job hello success"),
        "{v:?}"
    );
    assert_eq!(v.metrics["pipeline_seconds"], 4.5);
    assert!(
        v.evidence.contains("pending at") && v.evidence.contains("-> success at"),
        "{v:?}"
    );
    assert!(
        v.evidence
            .contains("hello (stage test): success, runner \"demo-runner\""),
        "{v:?}"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.looks, 4, "{:?}", seen.requests);
        assert!(
            seen.requests[0].starts_with(&format!(
                "GET {PROJECT}/pipelines?ref=hello-world&per_page=20&sha={SHA} "
            )),
            "{:?}",
            seen.requests
        );
    }

    let v = run(&spec(&base, TOKEN, "trace_contains = [\"Goodbye\"]"), &ctx).await;
    assert_fails_with(&v, "the log of job hello lacks \"Goodbye\"");
    assert!(
        v.evidence
            .contains("log of hello (whole):\nRunning with gitlab-runner"),
        "{v:?}"
    );
}

#[tokio::test]
async fn a_failed_pipeline_names_the_job_its_reason_and_shows_its_log() {
    let (base, _) = gitlab(Script {
        looks: vec![Some("running"), Some("failed")],
        job: hello_follows,
        trace: "$ ./hello\nsh: ./hello: not found\nERROR: Job failed: exit code 127\n",
    })
    .await;
    let ctx = ProbeContext::for_tests(20);
    let v = run(&spec(&base, TOKEN, "jobs = [\"hello\"]"), &ctx).await;
    assert_fails_with(
        &v,
        "pipeline 12 failed after 4.5s: job hello failed (script_failure)",
    );
    assert!(
        v.evidence
            .contains("sh: ./hello: not found\nERROR: Job failed: exit code 127"),
        "{v:?}"
    );

    let v = run(&spec(&base, TOKEN, "jobs = [\"deploy\"]"), &ctx).await;
    assert_fails_with(&v, "no job deploy in pipeline 12 (its jobs: hello)");

    let v = run(
        &spec(
            &base,
            TOKEN,
            "status = \"failed\"\njobs = { hello = \"failed\" }",
        ),
        &ctx,
    )
    .await;
    assert!(v.pass, "an expected failure: {v:?}");
}

#[tokio::test]
async fn a_job_no_runner_takes_fails_at_the_deadline_with_that_reason() {
    let (base, _) = gitlab(Script {
        looks: vec![Some("created"), Some("pending")],
        job: hello_follows,
        trace: "",
    })
    .await;
    let mut ctx = ProbeContext::for_tests(10);
    ctx.deadline = Instant::now() + Duration::from_secs(2);
    let started = Instant::now();
    let v = run(&spec(&base, TOKEN, ""), &ctx).await;
    assert_fails_with(&v, "pipeline 12 is still pending after");
    assert_fails_with(
        &v,
        "job hello is pending: no runner took it (is a runner online?)",
    );
    assert!(
        Instant::now() < ctx.deadline,
        "answered after the deadline: {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "gave up early: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn no_pipeline_and_a_refused_token_fail_for_their_reasons() {
    let (base, _) = gitlab(Script {
        looks: vec![None],
        job: hello_follows,
        trace: "",
    })
    .await;
    let mut ctx = ProbeContext::for_tests(10);
    ctx.deadline = Instant::now() + Duration::from_millis(1200);
    let v = run(&spec(&base, TOKEN, ""), &ctx).await;
    assert_fails_with(&v, "no pipeline for ref hello-world after");

    let ctx = ProbeContext::for_tests(10);
    let v = run(&spec(&base, "wrong", ""), &ctx).await;
    assert_fails_with(&v, "GitLab refused the token (401 Unauthorized)");
    assert!(!format!("{v:?}").contains("wrong\""), "{v:?}");

    let mut other = spec(&base, TOKEN, "");
    other.project = "rave/other".into();
    let v = run(&other, &ctx).await;
    assert_fails_with(
        &v,
        "no project rave/other on GitLab (404 Project Not Found)",
    );
}
