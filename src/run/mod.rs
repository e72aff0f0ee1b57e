//! The runner: executes a plan phase by phase; within a phase, independent
//! checks run concurrently (bounded by `jobs`). Every check has a deadline
//! and a retry policy; every attempt is recorded; a check whose dependency
//! did not pass is skipped with the reason. It emits events for the live
//! console and returns a `RunReport` for the other reporters, with the
//! run's coverage and verdict (`check::Coverage`). The run owns the VMs its
//! checks boot and tears them all down before it returns.
//!
//! **Architecture invariant:** the runner owns the only retry loop and the
//! only clock; it never renders output and never chooses an exit code.

pub mod events;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::check::excerpt;
use crate::check::sessions::Sessions;
use crate::check::Check;
use crate::check::ProbeContext;
use crate::check::RunSoFar;
use crate::check::Verdict;
use crate::check::{Attempt, CheckResult, Coverage, Outcome, Severity};
use crate::check::{LogSource, When};
use crate::host::Hosts;
use crate::plan::Plan;
use crate::vm::registry::Registry;
pub use events::{Event, EventSink, NoEvents};
pub use report::RunReport;

/// Evidence kept per check (after redaction); the digest covers the full text.
pub const MAX_EVIDENCE_BYTES: usize = 8 * 1024;
/// Expected/found texts are short by nature; cap them too.
pub const MAX_TEXT_BYTES: usize = 2 * 1024;
/// Attempts kept in a result: the first few and the most recent ones (a
/// check polling for minutes makes thousands); `attempt_count` counts all.
pub const KEEP_FIRST_ATTEMPTS: usize = 5;
pub const KEEP_LAST_ATTEMPTS: usize = 20;

/// Records `attempt`, dropping the oldest of the middle ones past the bound.
fn record_attempt(attempts: &mut Vec<Attempt>, attempt: Attempt) {
    attempts.push(attempt);
    if attempts.len() > KEEP_FIRST_ATTEMPTS + KEEP_LAST_ATTEMPTS {
        attempts.remove(KEEP_FIRST_ATTEMPTS);
    }
}

/// Masks secrets in every text the runner records.
pub type RedactFn = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Checks of one phase running at once (at least 1).
    pub jobs: usize,
    /// Bound of the whole run (`VALIDATION_TIMEOUT`).
    pub global_timeout: Duration,
    pub artifacts_dir: PathBuf,
    /// Where each check runs (by its profile); closed when the run ends.
    pub hosts: Arc<Hosts>,
    pub redact: RedactFn,
    pub safe_mode: bool,
    /// Shared with probes: phase times and metrics recorded so far.
    pub so_far: Arc<RunSoFar>,
}

/// Runs `plan` to completion, or until `abort` resolves (with a reason such
/// as "SIGINT") or the global timeout passes: then running checks are
/// cancelled (their child processes killed), the rest recorded as aborted,
/// and the report is still returned. Whatever the outcome, every VM a check
/// booted is torn down and every host connection closed before this returns.
pub async fn run(
    plan: &Plan,
    options: &RunOptions,
    sink: Arc<dyn EventSink>,
    abort: impl Future<Output = String>,
) -> RunReport {
    let started_at = chrono::Utc::now();
    let session_id = format!("spinup-{}", started_at.format("%Y%m%d-%H%M%S"));
    let run_start = Instant::now();
    let global_deadline = run_start + options.global_timeout;
    let timeout_reason = format!(
        "VALIDATION_TIMEOUT ({}s) reached",
        options.global_timeout.as_secs()
    );
    let abort = async move {
        tokio::select! {
            reason = abort => reason,
            _ = tokio::time::sleep_until(global_deadline.into()) => timeout_reason,
        }
    };
    tokio::pin!(abort);
    let vms = Arc::new(Registry::new());
    let sessions = Arc::new(Sessions::default());

    sink.event(&Event::RunStarted {
        session_id: &session_id,
        total: plan.checks.len(),
    });
    let mut results: HashMap<String, CheckResult> = HashMap::new();
    let mut phase_durations_ms = BTreeMap::new();
    let mut abort_reason: Option<String> = None;

    // The longest chains of `needs` start first (ties keep the plan's order).
    let chain_lengths = plan.chain_lengths();
    for phase in plan.phases() {
        let mut phase_checks: Vec<&Check> = plan.in_phase(phase).collect();
        phase_checks.sort_by_key(|c| {
            std::cmp::Reverse(chain_lengths.get(c.id.as_str()).copied().unwrap_or(1))
        });
        if let Some(reason) = &abort_reason {
            for check in phase_checks {
                let result = not_run(
                    check,
                    host_of(options, check),
                    Outcome::Aborted,
                    format!("not started: run aborted ({reason})"),
                );
                sink.event(&Event::CheckFinished { result: &result });
                results.insert(check.id.clone(), result);
            }
            continue;
        }
        sink.event(&Event::PhaseStarted {
            phase,
            checks: phase_checks.len(),
        });
        let phase_start = Instant::now();
        let mut pending: Vec<&Check> = phase_checks;
        let mut running: JoinSet<CheckResult> = JoinSet::new();
        let mut running_ids: HashMap<
            tokio::task::Id,
            (String, Instant, chrono::DateTime<chrono::Utc>),
        > = HashMap::new();
        loop {
            // Start or skip every check whose dependencies have finished.
            let mut i = 0;
            while i < pending.len() {
                let check = pending[i];
                match dependency_state(check, &results) {
                    DependencyState::Waiting => i += 1,
                    DependencyState::Blocked(reason) => {
                        pending.remove(i);
                        let result = not_run(check, host_of(options, check), Outcome::Skip, reason);
                        sink.event(&Event::CheckFinished { result: &result });
                        results.insert(check.id.clone(), result);
                    }
                    DependencyState::Ready if running.len() < options.jobs.max(1) => {
                        pending.remove(i);
                        sink.event(&Event::CheckStarted {
                            id: &check.id,
                            phase,
                        });
                        let owned = check.clone();
                        let opts = options.clone();
                        let task_sink = sink.clone();
                        let task_vms = vms.clone();
                        let task_sessions = sessions.clone();
                        let handle = running.spawn(async move {
                            execute(&owned, &opts, &task_vms, &task_sessions, task_sink.as_ref())
                                .await
                        });
                        running_ids.insert(
                            handle.id(),
                            (check.id.clone(), Instant::now(), chrono::Utc::now()),
                        );
                    }
                    DependencyState::Ready => i += 1,
                }
            }
            if running.is_empty() {
                if pending.is_empty() {
                    break;
                }
                // Unreachable with a valid plan (dependencies are ordered);
                // never spin: skip what cannot start.
                for check in pending.drain(..) {
                    let result = not_run(
                        check,
                        host_of(options, check),
                        Outcome::Skip,
                        "dependencies never finished".into(),
                    );
                    results.insert(check.id.clone(), result);
                }
                break;
            }
            tokio::select! {
                joined = running.join_next_with_id() => {
                    let Some(joined) = joined else { continue };
                    let result = match joined {
                        Ok((task, result)) => {
                            running_ids.remove(&task);
                            result
                        }
                        Err(err) => {
                            let Some((id, started, at)) = running_ids.remove(&err.id()) else { continue };
                            let Some(check) = plan.checks.iter().find(|c| c.id == id) else { continue };
                            internal_failure(check, host_of(options, check), started, at, &err.to_string())
                        }
                    };
                    let result = seal(result, &options.redact);
                    options.so_far.record_metrics(&result.id, &result.metrics);
                    sink.event(&Event::CheckFinished { result: &result });
                    results.insert(result.id.clone(), result);
                }
                reason = &mut abort => {
                    running.abort_all();
                    // Dropping the tasks kills their child processes.
                    while running.join_next().await.is_some() {}
                    for (_, (id, started, at)) in running_ids.drain() {
                        if let Some(check) = plan.checks.iter().find(|c| c.id == id) {
                            let mut result = not_run(check, host_of(options, check), Outcome::Aborted, format!("cancelled: run aborted ({reason})"));
                            result.started_at = Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                            result.duration_ms = started.elapsed().as_millis() as u64;
                            result.found = format!("cancelled after {:.1}s: {reason}", started.elapsed().as_secs_f64());
                            result.skip_reason = None;
                            sink.event(&Event::CheckFinished { result: &result });
                            results.insert(id, result);
                        }
                    }
                    for check in pending.drain(..) {
                        let result = not_run(check, host_of(options, check), Outcome::Aborted, format!("not started: run aborted ({reason})"));
                        sink.event(&Event::CheckFinished { result: &result });
                        results.insert(check.id.clone(), result);
                    }
                    abort_reason = Some(reason);
                    break;
                }
            }
        }
        let elapsed = phase_start.elapsed();
        phase_durations_ms.insert(phase, elapsed.as_millis() as u64);
        options
            .so_far
            .record_phase(phase, elapsed.as_millis() as u64);
        sink.event(&Event::PhaseFinished {
            phase,
            duration: elapsed,
        });
    }

    let ordered: Vec<CheckResult> = plan
        .checks
        .iter()
        .filter_map(|c| results.remove(&c.id))
        .collect();
    let coverage = Coverage::assess(
        ordered.iter().map(|r| (r.phase, r.status)),
        &plan.selected,
        &plan.required,
        abort_reason.is_some(),
    );
    let report = RunReport {
        session_id,
        started_at,
        completed_at: chrono::Utc::now(),
        status: coverage.status,
        coverage,
        abort_reason,
        results: ordered,
        phase_durations_ms,
        safe_mode: options.safe_mode,
    };
    sink.event(&Event::RunFinished { report: &report });
    // Sessions first: a logout may travel through a host's tunnel.
    for (key, why) in sessions.close_all(SESSION_CLOSE_WITHIN).await {
        eprintln!("warning: the shared session {key} was not closed: {why}");
    }
    tear_down_vms(&vms).await;
    options.hosts.close_all().await;
    report
}

/// How long the run waits for its shared sessions to close (logouts).
const SESSION_CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// Tears down every VM of the run; a teardown that leaves something behind
/// is a warning on stderr (the report is already final).
async fn tear_down_vms(vms: &Registry) {
    for (name, teardown) in vms.teardown_all().await {
        if !teardown.clean() {
            eprintln!("warning: VM `{name}` was not torn down cleanly: {teardown:?}");
        }
    }
}

/// Where `check` runs, for its result.
fn host_of(options: &RunOptions, check: &Check) -> String {
    options
        .hosts
        .for_profile_file(&check.location.file)
        .describe()
}

enum DependencyState {
    Ready,
    Waiting,
    Blocked(String),
}

/// Pure: may `check` start, given the results so far?
fn dependency_state(check: &Check, results: &HashMap<String, CheckResult>) -> DependencyState {
    let mut waiting = false;
    for need in &check.needs {
        match results.get(need) {
            None => waiting = true,
            Some(r) if r.status.satisfies_dependents() => {}
            // A run cut short runs nothing more, `always` or not.
            Some(r) if check.when == When::Always && r.status != Outcome::Aborted => {}
            Some(r) => {
                let what = match r.status {
                    Outcome::Fail => "failed",
                    Outcome::Skip => "was skipped",
                    Outcome::Aborted => "was aborted",
                    Outcome::Pass | Outcome::Warn => "passed",
                };
                return DependencyState::Blocked(format!("needs `{need}`, which {what}"));
            }
        }
    }
    if waiting {
        DependencyState::Waiting
    } else {
        DependencyState::Ready
    }
}

/// Runs one check: attempts until it passes, the retry policy gives up, or
/// its deadline (bounded by the run's) passes.
async fn execute(
    check: &Check,
    options: &RunOptions,
    vms: &Arc<Registry>,
    sessions: &Arc<Sessions>,
    sink: &dyn EventSink,
) -> CheckResult {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    // The run's deadline is enforced by cancelling the task (so the check is
    // recorded as aborted, not failed); the check's own deadline bounds it here.
    let deadline = started + check.timeout;
    let mut attempts = Vec::new();
    let mut count = 0u32;
    let mut last: Verdict;
    let host = options.hosts.for_profile_file(&check.location.file);
    loop {
        let number = count + 1;
        let attempt_start = Instant::now();
        let ctx = ProbeContext {
            executor: host.executor(),
            tunnel: host.tunnel(),
            via_host: host.via_host(),
            deadline,
            artifacts_dir: options.artifacts_dir.clone(),
            so_far: options.so_far.clone(),
            vms: vms.clone(),
            sessions: sessions.clone(),
        };
        last = match tokio::time::timeout_at(deadline.into(), check.probe.run(&ctx)).await {
            Ok(verdict) => verdict,
            Err(_) => Verdict::fail(
                describe_expectation(check),
                format!(
                    "no answer before the deadline ({}s timeout)",
                    check.timeout.as_secs_f64()
                ),
            ),
        };
        count = number;
        record_attempt(
            &mut attempts,
            Attempt {
                number,
                duration_ms: attempt_start.elapsed().as_millis() as u64,
                passed: last.pass,
                error: (!last.pass)
                    .then(|| (options.redact)(&excerpt(&last.found, MAX_TEXT_BYTES))),
            },
        );
        if last.pass {
            break;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let jitter: f64 = rand::thread_rng().gen();
        match check.retry.next_delay(number, remaining, jitter) {
            Some(delay) => {
                let found = (options.redact)(&excerpt(&last.found, MAX_TEXT_BYTES));
                sink.event(&Event::AttemptFailed {
                    id: &check.id,
                    attempt: number,
                    found: &found,
                    retry_in: delay,
                });
                tokio::time::sleep(delay).await
            }
            None => break,
        }
    }
    let status = match (last.pass, check.severity) {
        (true, _) => Outcome::Pass,
        (false, Severity::Warn) => Outcome::Warn,
        (false, Severity::Fail) => Outcome::Fail,
    };
    if let (false, Some(logs)) = (last.pass, &check.logs) {
        let tail = log_tail(logs, host.executor().as_ref()).await;
        last.evidence = if last.evidence.is_empty() {
            tail
        } else {
            format!("{}\n{tail}", last.evidence)
        };
    }
    finish(
        check,
        host.describe(),
        status,
        last,
        (count, attempts),
        started,
        started_at,
    )
}

/// How long reading a failed check's log may take.
const LOG_TAIL_WITHIN: Duration = Duration::from_secs(3);

/// The last lines of a failed check's service log, read on the check's
/// host, as evidence (redacted with the rest by `seal`); or why not.
async fn log_tail(logs: &LogSource, executor: &dyn crate::os::CommandExecutor) -> String {
    let command = logs.command(LogSource::LINES);
    let header = format!(
        "--- the last {} lines of {} (the service's log) ---",
        LogSource::LINES,
        logs.describe()
    );
    match executor
        .run(&command, Instant::now() + LOG_TAIL_WITHIN)
        .await
    {
        Ok(out) if out.exit_code == Some(0) => {
            let text = out.stdout_text();
            let lines: Vec<String> = text.lines().map(|l| excerpt(l, 300)).collect();
            format!("{header}\n{}", lines.join("\n"))
        }
        Ok(out) => format!(
            "{header}\n(`{}` on {} failed: {})",
            command.display(),
            executor.describe(),
            excerpt(out.stderr_text().trim(), 300)
        ),
        Err(e) => format!(
            "{header}\n(`{}` on {}: {e})",
            command.display(),
            executor.describe()
        ),
    }
}

fn describe_expectation(check: &Check) -> String {
    if check.description.is_empty() {
        format!("{} probe succeeds", check.probe.kind())
    } else {
        check.description.clone()
    }
}

fn finish(
    check: &Check,
    host: String,
    status: Outcome,
    verdict: Verdict,
    (attempt_count, attempts): (u32, Vec<Attempt>),
    started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
) -> CheckResult {
    CheckResult {
        id: check.id.clone(),
        phase: check.phase,
        service: check.service.clone(),
        stand_in: check.stand_in,
        severity: check.severity,
        status,
        description: check.description.clone(),
        expected: verdict.expected,
        found: verdict.found,
        evidence_sha256: String::new(),
        evidence: verdict.evidence,
        hint: check.hint.clone(),
        skip_reason: None,
        started_at: Some(started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        duration_ms: started.elapsed().as_millis() as u64,
        attempt_count,
        attempts,
        metrics: verdict.metrics,
        profile: check.location.file.display().to_string(),
        host,
    }
}

/// Bounds and redacts every text field; fills the evidence digest.
pub fn seal(mut result: CheckResult, redact: &RedactFn) -> CheckResult {
    let evidence = redact(&result.evidence);
    result.evidence_sha256 = if evidence.is_empty() {
        String::new()
    } else {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(evidence.as_bytes()))
        )
    };
    result.evidence = excerpt(&evidence, MAX_EVIDENCE_BYTES);
    result.expected = excerpt(&redact(&result.expected), MAX_TEXT_BYTES);
    result.found = excerpt(&redact(&result.found), MAX_TEXT_BYTES);
    result
}

/// A check that did not run (skipped or aborted); nothing in it is secret.
fn not_run(check: &Check, host: String, status: Outcome, reason: String) -> CheckResult {
    let mut result = finish(
        check,
        host,
        status,
        Verdict::fail(describe_expectation(check), reason.clone()),
        (0, Vec::new()),
        Instant::now(),
        chrono::Utc::now(),
    );
    result.started_at = None;
    result.duration_ms = 0;
    result.skip_reason = Some(reason);
    result
}

fn internal_failure(
    check: &Check,
    host: String,
    started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    error: &str,
) -> CheckResult {
    finish(
        check,
        host,
        Outcome::Fail,
        Verdict::fail(
            describe_expectation(check),
            format!(
                "internal error in the {} probe: {error} (please report this)",
                check.probe.kind()
            ),
        ),
        (0, Vec::new()),
        started,
        started_at,
    )
}

#[cfg(test)]
mod tests;
