//! JUnit XML for GitLab's `artifacts:reports:junit`: one testsuite per
//! phase, a testcase per check (classname = phase, name = check id, real
//! time), failures carry "expected X, found Y", skips their reason, and
//! `system-out` the evidence (after a `STAND-IN:` line when a stand-in
//! answered). A phase without checks has no testsuite: its coverage is in
//! the transcript's `phases`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::check::Outcome;
use crate::run::RunReport;

pub fn render(report: &RunReport) -> String {
    let mut junit = Report::new(format!("spinup-smoke {}", report.session_id));
    for phase in crate::check::Phase::ALL {
        let results: Vec<_> = report.results.iter().filter(|r| r.phase == phase).collect();
        if results.is_empty() {
            continue;
        }
        let mut suite = TestSuite::new(phase.name());
        for r in results {
            let status = match r.status {
                Outcome::Pass | Outcome::Warn => TestCaseStatus::success(),
                Outcome::Fail | Outcome::Aborted => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(format!("expected {}, found {}", r.expected, r.found));
                    s.set_type(r.status.label());
                    let mut text = String::new();
                    if let Some(hint) = &r.hint {
                        text.push_str(&format!("hint: {hint}\n"));
                    }
                    for a in &r.attempts {
                        text.push_str(&format!(
                            "attempt {}: {} in {} ms{}\n",
                            a.number,
                            if a.passed { "passed" } else { "failed" },
                            a.duration_ms,
                            a.error
                                .as_deref()
                                .map(|e| format!(": {e}"))
                                .unwrap_or_default()
                        ));
                    }
                    if !text.is_empty() {
                        s.set_description(text);
                    }
                    s
                }
                Outcome::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(r.skip_reason.clone().unwrap_or_else(|| "skipped".into()));
                    s
                }
            };
            let mut case = TestCase::new(r.id.clone(), status);
            case.set_classname(phase.name());
            case.set_time(Duration::from_millis(r.duration_ms));
            let mut out = String::new();
            if r.status == Outcome::Warn {
                out.push_str(&format!(
                    "WARNING: expected {}, found {}\n",
                    r.expected, r.found
                ));
            }
            if r.stand_in {
                out.push_str(&format!(
                    "STAND-IN: answered by a stand-in of {}, not the service itself\n",
                    r.service
                ));
            }
            out.push_str(&r.evidence);
            if !out.is_empty() {
                case.set_system_out(out);
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().unwrap_or_default()
}
