//! The console reporter: live progress per phase while the run goes, then a
//! failure block per failed, warned or aborted check, then the summary.
//! Plain text when the output is not a terminal, under CI, or with NO_COLOR.
//!
//! **Architecture invariant:** the console renders; it never decides an
//! outcome or an exit code.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::check::{CheckResult, Outcome, OverallStatus, PhaseStatus};
use crate::run::{Event, EventSink, RunReport};

/// How the console looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    /// DEBUG=1: also show each failed attempt that will be retried.
    pub verbose: bool,
    /// `--quiet`: no progress (run, phase and check lines); only the
    /// failure blocks and the summary.
    pub quiet: bool,
}

impl Style {
    /// Colour only on a terminal, never under CI or with NO_COLOR set.
    pub fn detect(is_terminal: bool, verbose: bool, quiet: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !no_color && !ci,
            verbose,
            quiet,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn outcome(&self, outcome: Outcome) -> String {
        let label = format!("{:<7}", outcome.label());
        let code = match outcome {
            Outcome::Pass => "32",
            Outcome::Warn => "33",
            Outcome::Fail | Outcome::Aborted => "31;1",
            Outcome::Skip => "2",
        };
        self.paint(code, &label)
    }
}

/// Writes events as lines to `out` (stdout, or stderr under `--format json`).
pub struct Console<W: Write + Send> {
    out: Mutex<W>,
    style: Style,
}

impl<W: Write + Send> Console<W> {
    pub fn new(out: W, style: Style) -> Console<W> {
        Console {
            out: Mutex::new(out),
            style,
        }
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn line(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

impl<W: Write + Send> EventSink for Console<W> {
    fn event(&self, event: &Event<'_>) {
        let s = &self.style;
        match event {
            Event::RunStarted { .. }
            | Event::PhaseStarted { .. }
            | Event::CheckFinished { .. }
            | Event::AttemptFailed { .. }
            | Event::PhaseFinished { .. }
                if s.quiet => {}
            Event::RunStarted { session_id, total } => {
                self.line(&format!("spinup-smoke {session_id}: {total} checks"));
            }
            Event::PhaseStarted { phase, checks } => {
                self.line(&s.paint(
                    "1",
                    &format!("\n== phase {}/10 {phase} ({checks} checks)", phase.number()),
                ));
            }
            Event::CheckStarted { .. } => {}
            Event::AttemptFailed {
                id,
                attempt,
                found,
                retry_in,
            } => {
                if s.verbose {
                    self.line(&format!(
                        "   {} {id}: attempt {attempt} failed ({}), retrying in {}",
                        s.paint("2", "..."),
                        one_line(found, 120),
                        format_duration(*retry_in)
                    ));
                }
            }
            Event::CheckFinished { result } => self.line(&progress_line(s, result)),
            Event::PhaseFinished { phase, duration } => {
                if s.verbose {
                    self.line(&format!("   {phase} took {}", format_duration(*duration)));
                }
            }
            Event::RunFinished { report } => {
                for block in failure_blocks(s, report) {
                    self.line(&block);
                }
                self.line(&summary_line(s, report));
            }
        }
    }
}

/// A writer that copies everything written to `out` into `copy`, so the
/// run can keep what its console printed (`<stem>.console.log`).
pub struct Tee<W: Write> {
    pub out: W,
    pub copy: std::sync::Arc<Mutex<Vec<u8>>>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut copy) = self.copy.lock() {
            copy.extend_from_slice(buf);
        }
        // The copy is kept even when the console is gone (a closed pipe).
        let _ = self.out.write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.out.flush();
        Ok(())
    }
}

/// `text` without its ANSI colour sequences (`ESC [ ... m`), as a log keeps it.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn progress_line(s: &Style, r: &CheckResult) -> String {
    let mut line = format!(" {} {}", s.outcome(r.status), r.id);
    match r.status {
        Outcome::Pass => {}
        Outcome::Skip => line.push_str(&s.paint(
            "2",
            &format!(" ({})", r.skip_reason.as_deref().unwrap_or("skipped")),
        )),
        _ => line.push_str(&format!(": {}", one_line(&r.found, 100))),
    }
    if r.attempt_count > 1 {
        line.push_str(&format!(" [{} attempts]", r.attempt_count));
    }
    if r.started_at.is_some() {
        line.push_str(&s.paint(
            "2",
            &format!(" {}", format_duration(Duration::from_millis(r.duration_ms))),
        ));
    }
    if r.stand_in {
        line.push_str(" (stand-in)");
    }
    if !r.host.is_empty() && r.host != "local" {
        line.push_str(&s.paint("2", &format!(" on {}", r.host)));
    }
    line
}

/// One block per check that did not pass or skip: expected, found,
/// evidence excerpt and what to do.
pub fn failure_blocks(s: &Style, report: &RunReport) -> Vec<String> {
    report
        .results
        .iter()
        .filter(|r| matches!(r.status, Outcome::Fail | Outcome::Warn | Outcome::Aborted))
        .map(|r| {
            let stand_in = if r.stand_in { ", stand-in" } else { "" };
            let mut b = format!("\n{} {} ({}{stand_in})", s.outcome(r.status), r.id, r.phase);
            if !r.description.is_empty() {
                b.push_str(&format!("\n  check:    {}", r.description));
            }
            b.push_str(&format!("\n  expected: {}", one_line(&r.expected, 300)));
            b.push_str(&format!("\n  found:    {}", one_line(&r.found, 300)));
            if !r.evidence.is_empty() {
                b.push_str("\n  evidence:");
                for l in r.evidence.lines().take(12) {
                    b.push_str(&format!("\n    | {}", truncate(l, 160)));
                }
                if r.evidence.lines().count() > 12 {
                    b.push_str("\n    | ... (full evidence in the transcript)");
                }
            }
            if let Some(hint) = &r.hint {
                b.push_str(&format!("\n  hint:     {hint}"));
            }
            b.push_str(&format!(
                "\n  attempts: {} in {}",
                r.attempt_count,
                format_duration(Duration::from_millis(r.duration_ms))
            ));
            b
        })
        .collect()
}

fn paint_status(s: &Style, status: OverallStatus) -> String {
    let label = status.label();
    match status {
        OverallStatus::Success => s.paint("32;1", label),
        OverallStatus::Warning => s.paint("33;1", label),
        OverallStatus::Failure | OverallStatus::Aborted => s.paint("31;1", label),
    }
}

/// The summary: status (and the services checked against stand-ins) with
/// the counts, then one line per required phase that ran no check and one
/// naming the phases not examined.
pub fn summary_line(s: &Style, report: &RunReport) -> String {
    let count = |o: Outcome| report.results.iter().filter(|r| r.status == o).count();
    let mut painted = paint_status(s, report.status);
    let stand_ins: BTreeSet<&str> = report
        .results
        .iter()
        .filter(|r| r.stand_in)
        .map(|r| r.service.as_str())
        .collect();
    if !stand_ins.is_empty() {
        let names: Vec<String> = stand_ins.iter().map(|s| display_name(s)).collect();
        painted.push_str(&format!(
            ", {} checked against {}",
            and_list(&names),
            if names.len() == 1 {
                "a stand-in"
            } else {
                "stand-ins"
            }
        ));
    }
    let elapsed = (report.completed_at - report.started_at)
        .to_std()
        .unwrap_or_default();
    let mut line = format!(
        "\n{painted}: {} checks: {} passed, {} warned, {} failed, {} skipped",
        report.results.len(),
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Fail),
        count(Outcome::Skip),
    );
    let aborted = count(Outcome::Aborted);
    if aborted > 0 {
        line.push_str(&format!(", {aborted} aborted"));
    }
    line.push_str(&format!(" in {}", format_duration(elapsed)));
    if let Some(reason) = &report.abort_reason {
        line.push_str(&format!(" (aborted: {reason})"));
    }
    for p in report.coverage.required_without_checks() {
        let why = match p.status {
            PhaseStatus::NotSelected => "left out by --phase",
            _ => "no loaded check is in it",
        };
        line.push_str(&format!(
            "\n{}: required phase `{}` ran no check ({why})",
            paint_status(s, OverallStatus::Failure),
            p.phase
        ));
    }
    let unexamined = report.coverage.not_examined();
    if !unexamined.is_empty() {
        line.push_str(&format!(
            "\n{}: {} not examined: {}",
            paint_status(s, OverallStatus::Warning),
            if unexamined.len() == 1 {
                "phase"
            } else {
                "phases"
            },
            unexamined
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    line
}

/// How a service key reads in a sentence: the product's own spelling for
/// the RAVE services, the key itself otherwise.
fn display_name(service: &str) -> String {
    match service {
        "gitlab" => "GitLab",
        "grafana" => "Grafana",
        "postgres" | "postgresql" => "PostgreSQL",
        "matrix" => "Matrix",
        "synapse" => "Synapse",
        "prometheus" => "Prometheus",
        "oidc" | "idp" => "the identity provider",
        "nginx" => "nginx",
        other => other,
    }
    .to_string()
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn one_line(text: &str, max: usize) -> String {
    truncate(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}...")
}

pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Phase, Severity};
    use std::collections::BTreeMap;

    fn result(id: &str, status: Outcome) -> CheckResult {
        CheckResult {
            id: id.into(),
            phase: Phase::Services,
            service: "postgres".into(),
            stand_in: false,
            severity: Severity::Fail,
            status,
            description: "PostgreSQL accepts connections".into(),
            expected: "127.0.0.1:5432 accepts TCP connections".into(),
            found: "connect failed: Connection refused (os error 111)".into(),
            evidence: "line one\nline two".into(),
            evidence_sha256: String::new(),
            hint: Some("start PostgreSQL".into()),
            skip_reason: (status == Outcome::Skip).then(|| "needs `a`, which failed".to_string()),
            started_at: Some("t".into()),
            duration_ms: 1500,
            attempt_count: 2,
            attempts: vec![],
            metrics: BTreeMap::new(),
            profile: "p.toml".into(),
            host: "local".into(),
        }
    }

    fn report(results: Vec<CheckResult>, status: OverallStatus) -> RunReport {
        let mut r = covered(results, &[], &[]);
        r.status = status;
        r
    }

    /// A report whose status is the coverage's verdict.
    fn covered(results: Vec<CheckResult>, selected: &[Phase], required: &[Phase]) -> RunReport {
        let now = chrono::Utc::now();
        let coverage = crate::check::Coverage::assess(
            results.iter().map(|r| (r.phase, r.status)),
            selected,
            &required.iter().copied().collect(),
            false,
        );
        RunReport {
            session_id: "spinup-x".into(),
            started_at: now,
            completed_at: now + chrono::Duration::milliseconds(2500),
            status: coverage.status,
            coverage,
            abort_reason: None,
            results,
            phase_durations_ms: BTreeMap::new(),
            safe_mode: true,
        }
    }

    #[test]
    fn failure_block_shows_expected_found_evidence_and_hint() {
        let plain = Style {
            color: false,
            verbose: false,
            quiet: false,
        };
        let r = report(
            vec![
                result("pg.up", Outcome::Fail),
                result("pg.q", Outcome::Skip),
            ],
            OverallStatus::Failure,
        );
        let blocks = failure_blocks(&plain, &r);
        assert_eq!(blocks.len(), 1, "skips get no block: {blocks:?}");
        let b = &blocks[0];
        for needle in [
            "FAIL    pg.up (services)",
            "expected: 127.0.0.1:5432",
            "found:    connect failed",
            "| line two",
            "hint:     start PostgreSQL",
            "attempts: 2 in 1.5s",
        ] {
            assert!(b.contains(needle), "missing {needle:?} in:\n{b}");
        }
        assert!(!b.contains('\x1b'), "plain output has no escape codes");
        let summary = summary_line(&plain, &r);
        assert!(
            summary.contains("FAILURE: 2 checks: 0 passed, 0 warned, 1 failed, 1 skipped in 2.5s"),
            "{summary}"
        );
    }

    fn in_phase(id: &str, phase: Phase, service: &str, stand_in: bool) -> CheckResult {
        let mut r = result(id, Outcome::Pass);
        r.phase = phase;
        r.service = service.into();
        r.stand_in = stand_in;
        r.duration_ms = 3;
        r.attempt_count = 1;
        r
    }

    const PLAIN: Style = Style {
        color: false,
        verbose: false,
        quiet: false,
    };

    #[test]
    fn stand_ins_are_named_in_the_summary_and_on_their_lines() {
        let every: Vec<CheckResult> = Phase::ALL
            .into_iter()
            .map(|p| in_phase(&format!("{p}.ok"), p, "host", false))
            .chain([
                in_phase("gitlab.health", Phase::Services, "gitlab", true),
                in_phase("grafana.health", Phase::Services, "grafana", true),
                in_phase("gitlab.version", Phase::Services, "gitlab", true),
            ])
            .collect();
        let r = covered(every, &[], &Phase::ALL);
        let summary = summary_line(&PLAIN, &r);
        assert_eq!(
            summary,
            "\nSUCCESS, GitLab and Grafana checked against stand-ins: 13 checks: 13 passed, 0 warned, 0 failed, 0 skipped in 2.5s"
        );
        assert_eq!(
            progress_line(&PLAIN, &r.results[10]),
            " PASS    gitlab.health 3ms (stand-in)"
        );
        assert_eq!(
            progress_line(&PLAIN, &r.results[0]),
            " PASS    config.ok 3ms"
        );
        let mut remote = r.results[0].clone();
        remote.host = "ssh rave@p6.example.org:22".into();
        assert_eq!(
            progress_line(&PLAIN, &remote),
            " PASS    config.ok 3ms on ssh rave@p6.example.org:22"
        );
        let mut failed = r.results[11].clone();
        failed.status = Outcome::Fail;
        let blocks = failure_blocks(&PLAIN, &covered(vec![failed], &[], &[]));
        assert!(
            blocks[0].starts_with("\nFAIL    grafana.health (services, stand-in)"),
            "{}",
            blocks[0]
        );
        let one = covered(
            vec![in_phase("gitlab.health", Phase::Services, "gitlab", true)],
            &[],
            &[],
        );
        assert!(
            summary_line(&PLAIN, &one)
                .starts_with("\nWARNING, GitLab checked against a stand-in: 1 checks"),
            "{}",
            summary_line(&PLAIN, &one)
        );
    }

    #[test]
    fn summary_says_which_phases_were_not_examined_and_which_required_ones_ran_nothing() {
        let results = || {
            Phase::ALL
                .into_iter()
                .filter(|p| !matches!(p, Phase::Agent | Phase::E2e))
                .map(|p| in_phase(&format!("{p}.ok"), p, "host", false))
                .collect::<Vec<_>>()
        };
        let r = covered(results(), &[], &[]);
        assert_eq!(
            summary_line(&PLAIN, &r),
            "\nWARNING: 8 checks: 8 passed, 0 warned, 0 failed, 0 skipped in 2.5s\n\
             WARNING: phases not examined: agent, e2e"
        );
        let r = covered(results(), &[], &[Phase::Agent]);
        assert_eq!(
            summary_line(&PLAIN, &r),
            "\nFAILURE: 8 checks: 8 passed, 0 warned, 0 failed, 0 skipped in 2.5s\n\
             FAILURE: required phase `agent` ran no check (no loaded check is in it)\n\
             WARNING: phase not examined: e2e"
        );
        let r = covered(
            vec![in_phase("services.ok", Phase::Services, "host", false)],
            &[Phase::Services],
            &[Phase::Services, Phase::Security],
        );
        let summary = summary_line(&PLAIN, &r);
        assert!(
            summary.contains(
                "\nFAILURE: required phase `security` ran no check (left out by --phase)\n"
            ),
            "{summary}"
        );
        assert!(
            summary.ends_with("WARNING: phases not examined: config, build, boot, oidc, agent, sandbox, e2e, performance"),
            "{summary}"
        );
    }

    #[test]
    fn progress_lines_and_colour() {
        let plain = Style {
            color: false,
            verbose: false,
            quiet: false,
        };
        let line = progress_line(&plain, &result("pg.q", Outcome::Skip));
        assert!(
            line.contains("SKIP") && line.contains("needs `a`, which failed"),
            "{line}"
        );
        let color = Style {
            color: true,
            verbose: false,
            quiet: false,
        };
        assert!(progress_line(&color, &result("pg.up", Outcome::Pass)).contains("\x1b[32m"));
    }

    #[test]
    fn console_writes_live_lines() {
        let console = Console::new(
            Vec::new(),
            Style {
                color: false,
                verbose: true,
                quiet: false,
            },
        );
        console.event(&Event::PhaseStarted {
            phase: Phase::Services,
            checks: 3,
        });
        console.event(&Event::AttemptFailed {
            id: "pg.up",
            attempt: 1,
            found: "refused",
            retry_in: Duration::from_millis(250),
        });
        let text = String::from_utf8(console.into_inner()).unwrap();
        assert!(text.contains("== phase 4/10 services (3 checks)"), "{text}");
        assert!(
            text.contains("attempt 1 failed (refused), retrying in 250ms"),
            "{text}"
        );
    }

    #[test]
    fn quiet_shows_only_the_failures_and_the_summary() {
        let console = Console::new(
            Vec::new(),
            Style {
                color: false,
                verbose: true,
                quiet: true,
            },
        );
        let passed = result("pg.up", Outcome::Pass);
        let failed = result("pg.q", Outcome::Fail);
        console.event(&Event::RunStarted {
            session_id: "s",
            total: 2,
        });
        console.event(&Event::PhaseStarted {
            phase: Phase::Services,
            checks: 2,
        });
        console.event(&Event::CheckFinished { result: &passed });
        console.event(&Event::CheckFinished { result: &failed });
        let report = report(vec![passed.clone(), failed.clone()], OverallStatus::Failure);
        console.event(&Event::RunFinished { report: &report });
        let text = String::from_utf8(console.into_inner()).unwrap();
        assert!(!text.contains("== phase"), "{text}");
        assert!(!text.contains(" PASS    pg.up"), "{text}");
        assert!(text.contains("FAIL    pg.q (services)"), "{text}");
        assert!(text.contains("FAILURE"), "{text}");
    }

    #[test]
    fn colour_sequences_are_stripped_for_the_log() {
        for (input, expect) in [
            ("plain", "plain"),
            ("\x1b[32mPASS   \x1b[0m a", "PASS    a"),
            ("\x1b[31;1mFAIL\x1b[0m", "FAIL"),
            ("no [brackets] lost", "no [brackets] lost"),
            ("", ""),
        ] {
            assert_eq!(strip_ansi(input), expect, "{input:?}");
        }
    }

    #[test]
    fn the_tee_keeps_a_copy_of_every_line() {
        let copy = std::sync::Arc::new(Mutex::new(Vec::new()));
        let console = Console::new(
            Tee {
                out: Vec::new(),
                copy: copy.clone(),
            },
            Style {
                color: false,
                verbose: false,
                quiet: false,
            },
        );
        console.line("one");
        console.line("two");
        assert_eq!(console.into_inner().out, b"one\ntwo\n");
        assert_eq!(*copy.lock().unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(42)), "42ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
