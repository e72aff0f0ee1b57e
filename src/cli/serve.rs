//! `spinup-smoke serve`: the selection's health over HTTP, like `goss serve`.
//! An HTTP/1 server (hyper) on the shared runtime answers:
//!
//! - `GET /healthz`: 200 when the latest result, no older than `--max-age`,
//!   is SUCCESS or WARNING, else 503; a JSON body says why. A stale result
//!   starts a run and the request waits for it (up to `--request-timeout`).
//! - `GET /metrics`: the Prometheus text exposition (`report::metrics`); a
//!   stale result starts a run in the background, the answer does not wait.
//! - `GET /transcript`, `GET /transcript.intoto.json`: the latest signed
//!   transcript and its DSSE envelope, as written.
//!
//! Never more than one run at a time: requests that find the result stale
//! while a run is in flight wait for that run (single-flight). Each run
//! writes its signed artifacts into `OUT/runs/NNNN/` through `run_until`;
//! the newest `--keep` run directories are kept. SIGINT or SIGTERM stops
//! the server: the run in flight is aborted (its transcript says ABORTED)
//! and the server exits 0.
//!
//! The decisions (`decide`, `health`, `route`, `to_prune`) are plain
//! functions; the rest is I/O around them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::check::HumanDuration;
use crate::error::{UserError, UserErrors};
use crate::exit;
use crate::report::metrics::{self, LastRun, Snapshot};

use super::run::{run_until, termination_signal, RunInputs};
use super::shared::{report_user_errors, EnvSettings};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long a client may take to send its request line and headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to read the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 512;
/// How long the run in flight may take to end once aborted at shutdown.
const ABORT_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The runs' inputs, as for `run`.
    #[command(flatten)]
    pub inputs: RunInputs,
    /// The address to listen on (IP:PORT; port 0 picks a free one). A
    /// non-loopback address exposes the results to the network: the server
    /// says so when it starts.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// How old the latest result may be and still answer a request; an
    /// older one makes the request start a run.
    #[arg(long = "max-age", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub max_age: Duration,
    /// Where each run's signed artifacts go: OUT/runs/NNNN/.
    #[arg(long, value_name = "DIR", default_value = "artifacts/serve")]
    pub out: PathBuf,
    /// How many run directories to keep (the newest; older ones are removed).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
    /// How long a /healthz request waits for the run it needs before it
    /// answers 503 (the run goes on).
    #[arg(long = "request-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match HumanDuration::parse(text) {
        Ok(d) if d.0 > Duration::ZERO => Ok(d.0),
        Ok(_) => Err("must be more than zero".into()),
        Err(e) => Err(e),
    }
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not IP:PORT; write e.g. 127.0.0.1:8080 (or [::1]:8080)"))
}

/// What a request does about the cached result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is fresh: answer from it.
    Cached,
    /// It is stale and a run is in flight: wait for that run.
    Join,
    /// It is stale and nothing runs: start a run.
    Start,
}

/// Pure: the result of `age` (None: there is none) against `max_age`.
pub fn decide(age: Option<Duration>, max_age: Duration, in_flight: bool) -> Decision {
    match age {
        Some(age) if age <= max_age => Decision::Cached,
        _ if in_flight => Decision::Join,
        _ => Decision::Start,
    }
}

/// The result of one finished run.
#[derive(Debug, Clone)]
pub struct Latest {
    pub number: u32,
    pub finished: Instant,
    pub exit_code: i32,
    /// What its transcript says; None when none was written.
    pub run: Option<LastRun>,
}

/// Pure: the status code and body of /healthz.
pub fn health(
    latest: Option<&Latest>,
    now: Instant,
    max_age: Duration,
    in_flight: bool,
) -> (StatusCode, Value) {
    let Some(latest) = latest else {
        let reason = if in_flight {
            "no run has finished yet (one is in flight)"
        } else {
            "no run has finished yet"
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"healthy": false, "status": "NONE", "reason": reason, "in_flight": in_flight}),
        );
    };
    let age = now.saturating_duration_since(latest.finished);
    let mut body = json!({
        "run": latest.number,
        "age_seconds": (age.as_millis() as f64) / 1000.0,
        "max_age_seconds": (max_age.as_millis() as f64) / 1000.0,
        "in_flight": in_flight,
    });
    let (healthy, status, reason) = match &latest.run {
        _ if age > max_age => (
            false,
            "STALE".to_string(),
            format!(
                "the latest result is {} old, older than the maximum age {}{}",
                HumanDuration(Duration::from_millis(age.as_millis() as u64)),
                HumanDuration(max_age),
                if in_flight {
                    "; a run is in flight"
                } else {
                    ""
                }
            ),
        ),
        None => (
            false,
            "ERROR".to_string(),
            format!(
                "run {} wrote no transcript (exit {}); the server's console says why",
                latest.number, latest.exit_code
            ),
        ),
        Some(run) if run.healthy() => (true, run.overall.clone(), String::new()),
        Some(run) => {
            let failing = run.failing();
            let reason = if failing.is_empty() {
                format!("the run's overall status is {}", run.overall)
            } else {
                format!(
                    "{} check(s) neither passed nor warned: {}",
                    failing.len(),
                    failing.join(", ")
                )
            };
            (false, run.overall.clone(), reason)
        }
    };
    body["healthy"] = json!(healthy);
    body["status"] = json!(status);
    if !reason.is_empty() {
        body["reason"] = json!(reason);
    }
    if let Some(run) = &latest.run {
        body["completed_at"] = json!(run.completion_time);
        body["counts"] = json!(run.counts());
        body["failing"] = json!(run.failing());
    }
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Metrics,
    Transcript,
    Envelope,
    NotFound,
    MethodNotAllowed,
}

/// Pure: the route of a method and path (the query is not part of `path`).
pub fn route(method: &Method, path: &str) -> Route {
    let known = match path {
        "/healthz" => Route::Healthz,
        "/metrics" => Route::Metrics,
        "/transcript" | "/transcript.json" => Route::Transcript,
        "/transcript.intoto.json" => Route::Envelope,
        _ => return Route::NotFound,
    };
    if method == Method::GET || method == Method::HEAD {
        known
    } else {
        Route::MethodNotAllowed
    }
}

/// Pure: the run numbers to remove so that `keep` remain, oldest first,
/// never `protect` (the run whose transcript is served).
pub fn to_prune(numbers: &[u32], keep: u32, protect: Option<u32>) -> Vec<u32> {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    let excess = sorted.len().saturating_sub(keep as usize);
    sorted
        .into_iter()
        .take(excess)
        .filter(|n| Some(*n) != protect)
        .collect()
}

/// What the server knows, behind one lock.
#[derive(Default)]
struct State {
    latest: Option<Latest>,
    /// The run and files of the newest transcript written.
    transcript: Option<(u32, crate::report::Written)>,
    in_flight: bool,
    stopping: bool,
    next_number: u32,
    outcomes: BTreeMap<String, u64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Server {
    args: ServeArgs,
    settings: EnvSettings,
    state: Mutex<State>,
    /// How many runs have finished.
    finished: tokio::sync::watch::Sender<u64>,
    /// The signal that stops the server, once it came.
    stop: tokio::sync::watch::Receiver<Option<String>>,
}

impl Server {
    fn runs_dir(&self) -> PathBuf {
        self.args.out.join("runs")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure a fresh result is there or coming: starts a run when the
    /// result is stale and none is in flight. The receiver, when a result
    /// is coming, changes once it is there.
    fn ensure_fresh(
        self: &Arc<Self>,
        now: Instant,
    ) -> Option<(u64, tokio::sync::watch::Receiver<u64>)> {
        let mut state = self.lock();
        if state.stopping {
            return None;
        }
        let age = state
            .latest
            .as_ref()
            .map(|l| now.saturating_duration_since(l.finished));
        match decide(age, self.args.max_age, state.in_flight) {
            Decision::Cached => return None,
            Decision::Join => {}
            Decision::Start => self.start(&mut state),
        }
        let rx = self.finished.subscribe();
        let seen = *rx.borrow();
        Some((seen, rx))
    }

    fn start(self: &Arc<Self>, state: &mut State) {
        state.in_flight = true;
        state.next_number += 1;
        let number = state.next_number;
        let server = self.clone();
        state.task = Some(tokio::spawn(async move {
            let inner = server.clone();
            let outcome = tokio::spawn(async move { inner.execute(number).await }).await;
            let (exit_code, written) = outcome.unwrap_or_else(|e| {
                eprintln!("serve: run {number} stopped: {e}");
                (exit::ARTIFACTS_NOT_WRITTEN, None)
            });
            server.finish(number, exit_code, written);
        }));
    }

    async fn execute(&self, number: u32) -> (i32, Option<crate::report::Written>) {
        let out = self.runs_dir().join(format!("{number:04}"));
        let run_args = self.args.inputs.run_args(out);
        println!(
            "\n== serve run {number} at {}",
            chrono::Utc::now().format("%H:%M:%S")
        );
        let mut stop = self.stop.clone();
        let abort = async move {
            let name = match stop.wait_for(Option::is_some).await {
                Ok(name) => name.clone(),
                Err(_) => None,
            };
            match name {
                Some(name) => format!("{name}: the server stopped"),
                None => std::future::pending().await,
            }
        };
        run_until(run_args, self.settings, abort).await
    }

    fn finish(&self, number: u32, exit_code: i32, written: Option<crate::report::Written>) {
        let run = written.as_ref().and_then(|w| {
            std::fs::read_to_string(&w.transcript)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
                .and_then(|doc| LastRun::from_transcript(&doc))
                .map_err(|e| eprintln!("serve: cannot read back {}: {e}", w.transcript.display()))
                .ok()
        });
        let outcome = run
            .as_ref()
            .map(|r| r.overall.to_ascii_lowercase())
            .filter(|o| metrics::RUN_OUTCOMES.contains(&o.as_str()))
            .unwrap_or_else(|| "error".to_string());
        let protect = {
            let mut state = self.lock();
            *state.outcomes.entry(outcome).or_default() += 1;
            if let Some(w) = written {
                state.transcript = Some((number, w));
            }
            state.latest = Some(Latest {
                number,
                finished: Instant::now(),
                exit_code,
                run,
            });
            state.in_flight = false;
            state.transcript.as_ref().map(|(n, _)| *n)
        };
        self.prune(protect);
        self.finished.send_modify(|n| *n += 1);
    }

    /// Removes the oldest run directories beyond `--keep`.
    fn prune(&self, protect: Option<u32>) {
        let numbers = run_numbers(&self.runs_dir());
        for n in to_prune(&numbers, self.args.keep, protect) {
            let dir = self.runs_dir().join(format!("{n:04}"));
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!("serve: cannot remove {}: {e}", dir.display());
            }
        }
    }

    fn snapshot(&self, now: Instant) -> Snapshot {
        let state = self.lock();
        Snapshot {
            last: state.latest.as_ref().and_then(|l| l.run.clone()),
            runs: state.outcomes.clone(),
            in_flight: state.in_flight,
            fresh: state
                .latest
                .as_ref()
                .is_some_and(|l| now.saturating_duration_since(l.finished) <= self.args.max_age),
        }
    }

    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let asked = route(req.method(), req.uri().path());
        match asked {
            Route::Healthz => {
                if let Some((seen, mut rx)) = self.ensure_fresh(Instant::now()) {
                    let _ = tokio::time::timeout(
                        self.args.request_timeout,
                        rx.wait_for(|n| *n > seen),
                    )
                    .await;
                }
                let (code, body) = {
                    let state = self.lock();
                    health(
                        state.latest.as_ref(),
                        Instant::now(),
                        self.args.max_age,
                        state.in_flight,
                    )
                };
                let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
                text.push('\n');
                respond(code, "application/json", text.into_bytes())
            }
            Route::Metrics => {
                // A scrape never waits for a run; a stale one starts one.
                let _ = self.ensure_fresh(Instant::now());
                let text = metrics::render(&self.snapshot(Instant::now()));
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text.into_bytes(),
                )
            }
            Route::Transcript | Route::Envelope => {
                let path = self.lock().transcript.as_ref().map(|(_, w)| {
                    if asked == Route::Envelope {
                        w.attestation.clone()
                    } else {
                        w.transcript.clone()
                    }
                });
                match path {
                    None => respond(
                        StatusCode::NOT_FOUND,
                        "text/plain; charset=utf-8",
                        b"no transcript yet: GET /healthz starts a run\n".to_vec(),
                    ),
                    Some(path) => match tokio::fs::read(&path).await {
                        Ok(bytes) => respond(StatusCode::OK, "application/json", bytes),
                        Err(e) => respond(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "text/plain; charset=utf-8",
                            format!("cannot read {}: {e}\n", path.display()).into_bytes(),
                        ),
                    },
                }
            }
            Route::NotFound => respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                format!(
                    "not found: {}; this server answers /healthz, /metrics, /transcript and /transcript.intoto.json\n",
                    req.uri().path()
                )
                .into_bytes(),
            ),
            Route::MethodNotAllowed => {
                let mut r = respond(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "text/plain; charset=utf-8",
                    format!("method {} not allowed: use GET or HEAD\n", req.method()).into_bytes(),
                );
                r.headers_mut().insert(
                    hyper::header::ALLOW,
                    hyper::header::HeaderValue::from_static("GET, HEAD"),
                );
                r
            }
        }
    }
}

fn respond(code: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    let headers = r.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The numbers of the run directories (`NNNN`) in `dir`.
fn run_numbers(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Everything wrong with the input, found before the server listens.
fn check_input(args: &ServeArgs, settings: &EnvSettings) -> Result<(), UserErrors> {
    let mut errors = Vec::new();
    if let Err(e) = args.inputs.check(settings) {
        errors.extend(e.0);
    }
    let runs = args.out.join("runs");
    if let Err(e) = std::fs::create_dir_all(&runs) {
        errors.push(
            UserError::new(format!("cannot create {}: {e}", runs.display()))
                .field("--out")
                .hint("pass --out with a writable directory"),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(UserErrors(errors))
    }
}

/// Entry point: checks the input, listens, serves until SIGINT or SIGTERM.
pub fn serve(args: ServeArgs, settings: EnvSettings) -> i32 {
    if let Err(e) = check_input(&args, &settings) {
        return report_user_errors(&e);
    }
    let runtime = match super::shared::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = runtime.block_on(listen_and_serve(args, settings));
    runtime.shutdown_background();
    code
}

async fn listen_and_serve(args: ServeArgs, settings: EnvSettings) -> i32 {
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => return report_user_errors(
            &UserError::new(format!("cannot listen on {}: {e}", args.listen))
                .field("--listen")
                .hint(
                    "pass --listen with a free port (port 0 picks one), or stop what listens there",
                )
                .into(),
        ),
    };
    let local = listener.local_addr().unwrap_or(args.listen);
    if !local.ip().is_loopback() {
        eprintln!(
            "warning: listening on {local}, which is not a loopback address: anyone who reaches it can read the results and start runs"
        );
    }
    println!(
        "serve: listening on http://{local} (/healthz, /metrics, /transcript); results cached for {}, runs in {}",
        HumanDuration(args.max_age),
        args.out.join("runs").display()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None::<String>);
    let (finished, _) = tokio::sync::watch::channel(0u64);
    let next_number = run_numbers(&args.out.join("runs"))
        .into_iter()
        .max()
        .unwrap_or(0);
    let server = Arc::new(Server {
        args,
        settings,
        state: Mutex::new(State {
            next_number,
            ..State::default()
        }),
        finished,
        stop: stop_rx,
    });
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    let signal = termination_signal();
    tokio::pin!(signal);
    let name = loop {
        tokio::select! {
            name = &mut signal => break name,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(connection(server.clone(), stream, permit));
                    }
                    Err(_) => drop(stream),
                },
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    eprintln!("serve: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    println!("serve: {name}: stopping");
    let task = {
        let mut state = server.lock();
        state.stopping = true;
        state.task.take().filter(|_| state.in_flight)
    };
    let _ = stop_tx.send(Some(name));
    if let Some(task) = task {
        match tokio::time::timeout(ABORT_GRACE, task).await {
            Ok(_) => println!("serve: the run in flight was aborted; its artifacts are written"),
            Err(_) => eprintln!(
                "serve: the run in flight did not end within {} of its abort",
                HumanDuration(ABORT_GRACE)
            ),
        }
    }
    // The requests that waited for that run get their answer.
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    exit::SUCCESS
}

/// One client: one request (no keep-alive), bounded in time as a whole.
async fn connection(
    server: Arc<Server>,
    stream: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let deadline = HEADER_TIMEOUT + server.args.request_timeout + WRITE_TIMEOUT;
    let service = {
        let server = server.clone();
        hyper::service::service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(req).await) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let _ = tokio::time::timeout(deadline, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_fresh_result_answers_a_stale_one_starts_or_joins_a_run() {
        // (age, max age, in flight) -> decision
        for (age, max_age, in_flight, want) in [
            (Some(S(0)), S(30), false, Decision::Cached),
            (Some(S(30)), S(30), false, Decision::Cached),
            (Some(S(30)), S(30), true, Decision::Cached),
            (Some(S(31)), S(30), false, Decision::Start),
            (Some(S(31)), S(30), true, Decision::Join),
            (None, S(30), false, Decision::Start),
            (None, S(30), true, Decision::Join),
        ] {
            assert_eq!(
                decide(age, max_age, in_flight),
                want,
                "age {age:?}, max age {max_age:?}, in flight {in_flight}"
            );
        }
    }

    fn run(overall: &str, statuses: &[(&str, &str)]) -> LastRun {
        LastRun {
            overall: overall.into(),
            completion_time: "2026-01-02T03:04:05Z".into(),
            completed_unix: 0.0,
            duration_seconds: 0.1,
            checks: statuses
                .iter()
                .map(|(id, status)| metrics::CheckSample {
                    id: id.to_string(),
                    phase: "services".into(),
                    status: status.to_string(),
                    duration_ms: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn healthz_is_200_only_for_a_fresh_success_or_warning() {
        let now = Instant::now() + S(3600);
        let latest = |age: u64, exit_code: i32, run: Option<LastRun>| Latest {
            number: 7,
            finished: now - S(age),
            exit_code,
            run,
        };
        let ok = || Some(run("SUCCESS", &[("a", "PASS")]));
        let warned = || Some(run("WARNING", &[("a", "WARN")]));
        let failed = || {
            Some(run(
                "FAILURE",
                &[("a", "PASS"), ("b", "FAIL"), ("c", "SKIP")],
            ))
        };
        let aborted = || Some(run("ABORTED", &[("a", "ABORTED")]));
        // (latest, in flight) -> (code, status, a word of the reason)
        for (latest, in_flight, code, status, reason) in [
            (None, false, 503, "NONE", "no run has finished yet"),
            (None, true, 503, "NONE", "one is in flight"),
            (Some(latest(1, 0, ok())), false, 200, "SUCCESS", ""),
            (Some(latest(30, 0, warned())), false, 200, "WARNING", ""),
            (
                Some(latest(31, 0, ok())),
                false,
                503,
                "STALE",
                "older than the maximum age 30s",
            ),
            (
                Some(latest(31, 0, ok())),
                true,
                503,
                "STALE",
                "a run is in flight",
            ),
            (
                Some(latest(1, 1, failed())),
                false,
                503,
                "FAILURE",
                "2 check(s) neither passed nor warned: b, c",
            ),
            (Some(latest(1, 3, aborted())), false, 503, "ABORTED", "a"),
            (
                Some(latest(1, 2, None)),
                false,
                503,
                "ERROR",
                "run 7 wrote no transcript (exit 2)",
            ),
        ] {
            let (got, body) = health(latest.as_ref(), now, S(30), in_flight);
            assert_eq!(got.as_u16(), code, "{body}");
            assert_eq!(body["status"], status, "{body}");
            assert_eq!(body["healthy"], code == 200, "{body}");
            assert_eq!(body["in_flight"], in_flight, "{body}");
            let said = body["reason"].as_str().unwrap_or_default();
            assert!(said.contains(reason), "{body}");
            if code == 200 {
                assert!(body.get("reason").is_none(), "{body}");
            }
        }
        let (_, body) = health(Some(&latest(2, 1, failed())), now, S(30), false);
        assert_eq!(body["run"], 7);
        assert_eq!(body["age_seconds"], 2.0);
        assert_eq!(body["max_age_seconds"], 30.0);
        assert_eq!(body["failing"], json!(["b", "c"]));
        assert_eq!(body["counts"]["PASS"], 1);
        assert_eq!(body["counts"]["FAIL"], 1);
        assert_eq!(body["counts"]["SKIP"], 1);
        assert_eq!(body["completed_at"], "2026-01-02T03:04:05Z");
    }

    #[test]
    fn known_paths_take_get_and_head_only() {
        for (method, path, want) in [
            (Method::GET, "/healthz", Route::Healthz),
            (Method::HEAD, "/healthz", Route::Healthz),
            (Method::GET, "/metrics", Route::Metrics),
            (Method::GET, "/transcript", Route::Transcript),
            (Method::GET, "/transcript.json", Route::Transcript),
            (Method::GET, "/transcript.intoto.json", Route::Envelope),
            (Method::POST, "/healthz", Route::MethodNotAllowed),
            (Method::DELETE, "/transcript", Route::MethodNotAllowed),
            (Method::PUT, "/metrics", Route::MethodNotAllowed),
            (Method::GET, "/", Route::NotFound),
            (Method::GET, "/healthz/", Route::NotFound),
            (Method::POST, "/nothing", Route::NotFound),
            (Method::GET, "/../healthz", Route::NotFound),
        ] {
            assert_eq!(route(&method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn the_newest_runs_are_kept_and_the_served_one_never_removed() {
        for (numbers, keep, protect, want) in [
            (&[][..], 3, None, &[][..]),
            (&[1, 2, 3][..], 3, None, &[][..]),
            (&[4, 1, 3, 2][..], 3, None, &[1][..]),
            (&[1, 2, 3, 4, 5][..], 2, None, &[1, 2, 3][..]),
            (&[1, 2, 3, 4, 5][..], 2, Some(2), &[1, 3][..]),
            (&[1, 2, 3, 4, 5][..], 1, Some(5), &[1, 2, 3, 4][..]),
        ] {
            assert_eq!(
                to_prune(numbers, keep, protect),
                want,
                "{numbers:?} keep {keep} protect {protect:?}"
            );
        }
    }

    #[test]
    fn arguments_are_checked() {
        assert_eq!(
            parse_listen("127.0.0.1:8080"),
            Ok("127.0.0.1:8080".parse().unwrap())
        );
        assert!(parse_listen("[::1]:0").is_ok());
        let e = parse_listen("localhost").unwrap_err();
        assert!(e.contains("not IP:PORT"), "{e}");
        assert!(parse_listen("127.0.0.1").is_err());
        assert_eq!(parse_duration("90s"), Ok(S(90)));
        assert!(parse_duration("0s").unwrap_err().contains("more than zero"));
        assert!(parse_duration("5").is_err());
        let default: SocketAddr = DEFAULT_LISTEN.parse().unwrap();
        assert!(default.ip().is_loopback());
    }
}
