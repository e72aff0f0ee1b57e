use super::*;
use crate::check::RetryPolicy;
use crate::check::{OverallStatus, Phase, Severity, When};
use crate::checks::tcp;
use crate::checks::ProbeSpec;
use crate::error::Location;
use std::sync::Mutex;

fn tcp_check(id: &str, phase: Phase, address: &str, needs: &[&str]) -> Check {
    Check {
        id: id.into(),
        phase,
        description: format!("{address} is open"),
        service: "svc".into(),
        severity: Severity::Fail,
        timeout: Duration::from_secs(5),
        retry: RetryPolicy::ONCE,
        needs: needs.iter().map(|s| s.to_string()).collect(),
        hint: Some("start it".into()),
        stand_in: false,
        probe: ProbeSpec::Tcp(tcp::Spec {
            address: address.into(),
            open: true,
            via: None,
        })
        .into_probe(),
        logs: None,
        when: Default::default(),
        smoke: false,
        location: Location {
            file: "t.toml".into(),
            line: 1,
            column: 1,
        },
    }
}

fn options() -> RunOptions {
    RunOptions {
        jobs: 4,
        global_timeout: Duration::from_secs(60),
        artifacts_dir: std::env::temp_dir(),
        hosts: Arc::new(crate::host::Hosts::local()),
        redact: Arc::new(|s: &str| s.replace("hunter2", "[REDACTED]")),
        safe_mode: true,
        so_far: Default::default(),
    }
}

/// Records every event as a line.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EventSink for Recorder {
    fn event(&self, event: &Event<'_>) {
        let line = match event {
            Event::RunStarted { total, .. } => format!("run {total}"),
            Event::PhaseStarted { phase, checks } => format!("phase {phase} {checks}"),
            Event::CheckStarted { id, .. } => format!("start {id}"),
            Event::AttemptFailed { id, attempt, .. } => format!("retry {id} {attempt}"),
            Event::CheckFinished { result } => {
                format!("done {} {}", result.id, result.status.label())
            }
            Event::PhaseFinished { phase, .. } => format!("phase-end {phase}"),
            Event::RunFinished { report } => format!("end {}", report.status.label()),
        };
        self.0.lock().unwrap().push(line);
    }
}

async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

fn never() -> impl Future<Output = String> {
    std::future::pending()
}

#[tokio::test]
async fn failure_skips_dependents_but_not_unrelated_checks() {
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap().to_string();
    let closed = closed_port().await;
    let plan = Plan::build(
        vec![
            tcp_check("db.reachable", Phase::Services, &closed, &[]),
            tcp_check("db.query", Phase::Services, &open_addr, &["db.reachable"]),
            tcp_check("db.deeper", Phase::Security, &open_addr, &["db.query"]),
            tcp_check("web.up", Phase::Services, &open_addr, &[]),
        ],
        &[],
    )
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    let report = run(&plan, &options(), recorder.clone(), never()).await;
    let status: Vec<(&str, Outcome)> = report
        .results
        .iter()
        .map(|r| (r.id.as_str(), r.status))
        .collect();
    assert_eq!(
        status,
        [
            ("db.reachable", Outcome::Fail),
            ("db.query", Outcome::Skip),
            ("web.up", Outcome::Pass),
            ("db.deeper", Outcome::Skip),
        ]
    );
    assert_eq!(report.status, OverallStatus::Failure);
    let query = &report.results[1];
    assert_eq!(
        query.skip_reason.as_deref(),
        Some("needs `db.reachable`, which failed")
    );
    let deeper = &report.results[3];
    assert_eq!(
        deeper.skip_reason.as_deref(),
        Some("needs `db.query`, which was skipped")
    );
    let failed = &report.results[0];
    assert!(failed.found.contains("refused"), "{failed:?}");
    assert_eq!(failed.attempt_count, 1);
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(events.first().map(String::as_str), Some("run 4"));
    assert_eq!(events.last().map(String::as_str), Some("end FAILURE"));
}

/// The report's verdict is the coverage's: every check passed, yet a phase
/// not examined keeps it from SUCCESS, and a required phase without a
/// check fails it. Stand-in marks reach the results.
#[tokio::test]
async fn the_verdict_follows_the_coverage_of_the_phases() {
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = open.local_addr().unwrap().to_string();
    let every: Vec<Check> = Phase::ALL
        .into_iter()
        .map(|p| tcp_check(&format!("{p}.open"), p, &addr, &[]))
        .collect();
    let plan = Plan::build(every.clone(), &[])
        .unwrap()
        .requiring(Phase::ALL);
    let report = run(&plan, &options(), Arc::new(NoEvents), never()).await;
    assert_eq!(
        report.status,
        OverallStatus::Success,
        "{:?}",
        report.results
    );
    assert!(report.coverage.not_examined().is_empty());

    let mut without_e2e: Vec<Check> = every
        .iter()
        .filter(|c| c.phase != Phase::E2e)
        .cloned()
        .collect();
    without_e2e[3].stand_in = true;
    let plan = Plan::build(without_e2e.clone(), &[]).unwrap();
    let recorder = Arc::new(Recorder::default());
    let report = run(&plan, &options(), recorder.clone(), never()).await;
    assert_eq!(report.status, OverallStatus::Warning);
    assert_eq!(report.coverage.not_examined(), [Phase::E2e]);
    let events = recorder.0.lock().unwrap().clone();
    assert_eq!(events.last().map(String::as_str), Some("end WARNING"));
    assert!(report.results[3].stand_in && !report.results[2].stand_in);

    let plan = Plan::build(without_e2e, &[Phase::Services])
        .unwrap()
        .requiring([Phase::Services, Phase::E2e]);
    let report = run(&plan, &options(), Arc::new(NoEvents), never()).await;
    assert_eq!(report.status, OverallStatus::Failure);
    let missing: Vec<(Phase, crate::check::PhaseStatus)> = report
        .coverage
        .required_without_checks()
        .iter()
        .map(|p| (p.phase, p.status))
        .collect();
    assert_eq!(
        missing,
        [(Phase::E2e, crate::check::PhaseStatus::NotSelected)]
    );
    assert_eq!(report.results.len(), 1, "only the services check ran");
}

/// A failed check whose service has a log gets that log's last lines in its
/// evidence (secrets redacted); a passing one does not; an unreadable log
/// says why.
#[tokio::test]
async fn a_failed_check_carries_the_tail_of_its_services_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("svc.log");
    let lines: String = (1..=30)
        .map(|n| format!("line {n} password=hunter2\n"))
        .collect();
    std::fs::write(&log, lines).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed = closed_port().await;
    let mut failing = tcp_check("svc.down", Phase::Services, &closed, &[]);
    failing.logs = Some(LogSource::File(log.clone()));
    let mut passing = tcp_check("svc.up", Phase::Services, &open, &[]);
    passing.logs = Some(LogSource::File(log.clone()));
    let mut missing = tcp_check("svc.nolog", Phase::Services, &closed, &[]);
    missing.logs = Some(LogSource::File(dir.path().join("absent.log")));
    let plan = Plan::build(vec![failing, passing, missing], &[]).unwrap();
    let report = run(&plan, &options(), Arc::new(NoEvents), never()).await;
    let by_id = |id: &str| report.results.iter().find(|r| r.id == id).unwrap();
    let down = &by_id("svc.down").evidence;
    assert!(
        down.contains(&format!(
            "--- the last 20 lines of {} (the service's log) ---",
            log.display()
        )),
        "{down}"
    );
    assert!(
        down.contains("line 11 ") && down.contains("line 30 "),
        "{down}"
    );
    assert!(!down.contains("line 10 "), "{down}");
    assert!(
        !down.contains("hunter2") && down.contains("[REDACTED]"),
        "{down}"
    );
    assert!(!by_id("svc.up").evidence.contains("the service's log"));
    let nolog = &by_id("svc.nolog").evidence;
    assert!(
        nolog.contains("`tail -n 20 --") && nolog.contains("failed"),
        "{nolog}"
    );
}

/// `when = "always"`: a cleanup runs after its needs whatever they
/// concluded (here a failure and a skip); without it, it is skipped.
#[tokio::test]
async fn an_always_check_runs_after_failed_needs() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed = closed_port().await;
    let broken = tcp_check("flow.step", Phase::E2e, &closed, &[]);
    let skipped = tcp_check("flow.next", Phase::E2e, &open, &["flow.step"]);
    let mut cleanup = tcp_check(
        "flow.cleanup",
        Phase::E2e,
        &open,
        &["flow.step", "flow.next"],
    );
    cleanup.when = When::Always;
    let plain = tcp_check("flow.after", Phase::E2e, &open, &["flow.step"]);
    let plan = Plan::build(vec![broken, skipped, cleanup, plain], &[]).unwrap();
    let recorder = Arc::new(Recorder::default());
    let report = run(&plan, &options(), recorder.clone(), never()).await;
    let status = |id: &str| report.results.iter().find(|r| r.id == id).unwrap().status;
    assert_eq!(status("flow.step"), Outcome::Fail);
    assert_eq!(status("flow.next"), Outcome::Skip);
    assert_eq!(status("flow.after"), Outcome::Skip);
    assert_eq!(status("flow.cleanup"), Outcome::Pass);
    // It waited for both needs to finish.
    let lines = recorder.0.lock().unwrap().clone();
    let at = |line: &str| lines.iter().position(|l| l == line).unwrap();
    assert!(
        at("start flow.cleanup") > at("done flow.next SKIP"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn warn_severity_makes_a_warning_not_a_failure() {
    let closed = closed_port().await;
    let mut check = tcp_check("optional.thing", Phase::Config, &closed, &[]);
    check.severity = Severity::Warn;
    let dependent = tcp_check(
        "after.optional",
        Phase::Config,
        &closed,
        &["optional.thing"],
    );
    let plan = Plan::build(vec![check], &[]).unwrap();
    let report = run(&plan, &options(), Arc::new(NoEvents), never()).await;
    assert_eq!(report.results[0].status, Outcome::Warn);
    assert_eq!(report.status, OverallStatus::Warning);
    // A warned check still lets its dependents run.
    let mut warned = tcp_check("optional.thing", Phase::Config, &closed, &[]);
    warned.severity = Severity::Warn;
    let plan = Plan::build(vec![warned, dependent], &[]).unwrap();
    let report = run(&plan, &options(), Arc::new(NoEvents), never()).await;
    assert_eq!(
        report.results[1].status,
        Outcome::Fail,
        "{:?}",
        report.results[1]
    );
}

#[tokio::test]
async fn retries_until_the_service_comes_up() {
    let addr = closed_port().await;
    let mut check = tcp_check("late.service", Phase::Services, &addr, &[]);
    check.timeout = Duration::from_secs(30);
    check.retry = RetryPolicy {
        max_attempts: None,
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        factor: 2.0,
    };
    let plan = Plan::build(vec![check], &[]).unwrap();
    let bind_addr = addr.clone();
    let recorder = Arc::new(Recorder::default());
    let events = recorder.clone();
    // Bring the listener up once the first retry has been announced.
    let opener = tokio::spawn(async move {
        loop {
            if events
                .0
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.starts_with("retry"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let l = tokio::net::TcpListener::bind(&bind_addr).await.unwrap();
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(l);
    });
    let report = run(&plan, &options(), recorder.clone(), never()).await;
    opener.abort();
    let r = &report.results[0];
    assert_eq!(r.status, Outcome::Pass, "{r:?}");
    assert!(r.attempt_count >= 2, "{r:?}");
    assert!(!r.attempts[0].passed && r.attempts.last().unwrap().passed);
    assert!(r.attempts[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("refused"));
}

#[tokio::test]
async fn a_polling_check_keeps_its_first_and_latest_attempts_and_counts_all() {
    let addr = closed_port().await;
    let mut check = tcp_check("never.up", Phase::Services, &addr, &[]);
    check.timeout = Duration::from_millis(1500);
    check.retry = RetryPolicy {
        max_attempts: None,
        initial: Duration::from_millis(10),
        max: Duration::from_millis(10),
        factor: 1.0,
    };
    let plan = Plan::build(vec![check], &[]).unwrap();
    let report = run(&plan, &options(), Arc::new(NoEvents), never()).await;
    let r = &report.results[0];
    assert_eq!(r.status, Outcome::Fail, "{r:?}");
    let kept = super::KEEP_FIRST_ATTEMPTS + super::KEEP_LAST_ATTEMPTS;
    assert!(r.attempt_count as usize > kept, "{}", r.attempt_count);
    assert_eq!(r.attempts.len(), kept);
    let numbers: Vec<u32> = r.attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers[..5], [1, 2, 3, 4, 5]);
    assert_eq!(*numbers.last().unwrap(), r.attempt_count);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
}

#[tokio::test]
async fn abort_marks_everything_aborted_and_keeps_results_so_far() {
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap().to_string();
    let closed = closed_port().await;
    let mut slow = tcp_check("slow.retrying", Phase::Services, &closed, &["fast.config"]);
    slow.timeout = Duration::from_secs(600);
    slow.retry = RetryPolicy {
        max_attempts: None,
        initial: Duration::from_millis(50),
        max: Duration::from_millis(100),
        factor: 2.0,
    };
    let plan = Plan::build(
        vec![
            tcp_check("fast.config", Phase::Config, &open_addr, &[]),
            slow,
            tcp_check("later.security", Phase::Security, &open_addr, &[]),
        ],
        &[],
    )
    .unwrap();
    let recorder = Arc::new(Recorder::default());
    let events = recorder.clone();
    let abort = async move {
        loop {
            if events
                .0
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.starts_with("retry slow.retrying"))
            {
                return "SIGINT".to_string();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let report = run(&plan, &options(), recorder, abort).await;
    assert_eq!(report.status, OverallStatus::Aborted);
    assert_eq!(report.abort_reason.as_deref(), Some("SIGINT"));
    let status: Vec<Outcome> = report.results.iter().map(|r| r.status).collect();
    assert_eq!(status, [Outcome::Pass, Outcome::Aborted, Outcome::Aborted]);
    assert!(
        report.results[1].found.contains("cancelled"),
        "{:?}",
        report.results[1]
    );
}

#[tokio::test]
async fn global_timeout_aborts_the_run() {
    let closed = closed_port().await;
    let mut slow = tcp_check("never.up", Phase::Services, &closed, &[]);
    slow.timeout = Duration::from_secs(600);
    slow.retry = RetryPolicy {
        max_attempts: None,
        initial: Duration::from_millis(50),
        max: Duration::from_millis(100),
        factor: 2.0,
    };
    let plan = Plan::build(vec![slow], &[]).unwrap();
    let mut opts = options();
    opts.global_timeout = Duration::from_millis(300);
    let report = run(&plan, &opts, Arc::new(NoEvents), never()).await;
    assert_eq!(report.status, OverallStatus::Aborted);
    assert!(report.abort_reason.unwrap().contains("VALIDATION_TIMEOUT"));
}

#[test]
fn seal_redacts_bounds_and_digests_evidence() {
    let check = tcp_check("x", Phase::Config, "a:1", &[]);
    let mut result = not_run(&check, "local".into(), Outcome::Fail, "r".into());
    result.evidence = format!("password hunter2 {}", "x".repeat(20_000));
    result.found = "login with hunter2 failed".into();
    let redact: RedactFn = Arc::new(|s: &str| s.replace("hunter2", "[REDACTED]"));
    let sealed = seal(result, &redact);
    assert!(!sealed.evidence.contains("hunter2"));
    assert!(!sealed.found.contains("hunter2"));
    assert!(sealed.evidence.len() < MAX_EVIDENCE_BYTES + 64);
    assert!(sealed.evidence_sha256.starts_with("sha256:"));
}

/// Two checks that can only pass together: each waits for the other's
/// marker file. They pass with `jobs = 2` (concurrent) and time out with
/// `jobs = 1` (sequential), which proves the runner's concurrency without
/// measuring time.
#[tokio::test]
async fn independent_checks_of_a_phase_run_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let rendezvous = |me: &str, other: &str| -> Check {
        let script = format!(
            "touch {d}/{me}; i=0; while [ ! -e {d}/{other} ]; do i=$((i+1)); [ $i -gt 150 ] && exit 1; sleep 0.02; done",
            d = dir.path().display()
        );
        let mut c = tcp_check(&format!("meet.{me}"), Phase::Services, "unused:1", &[]);
        c.probe = ProbeSpec::Command(toml::from_str(&format!("script = {script:?}")).unwrap())
            .into_probe();
        c
    };
    let plan = Plan::build(vec![rendezvous("a", "b"), rendezvous("b", "a")], &[]).unwrap();
    let mut opts = options();
    opts.jobs = 2;
    let report = run(&plan, &opts, Arc::new(NoEvents), never()).await;
    assert_eq!(
        report.results.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Outcome::Pass, Outcome::Pass],
        "{:?}",
        report.results
    );

    for f in ["a", "b"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    opts.jobs = 1;
    let report = run(&plan, &opts, Arc::new(NoEvents), never()).await;
    assert_eq!(
        report.results[0].status,
        Outcome::Fail,
        "sequential: the first waits in vain"
    );
}
