//! JUnit XML for GitLab's `artifacts:reports:junit`: one testsuite per phase,
//! testcase classname = phase, name = check id, time = the check's real
//! duration. FAIL and ABORTED become `<failure type="FAIL">` with
//! "expected X, found Y"; SKIP becomes `<skipped>` with the reason; WARN
//! passes with the warning in system-out; system-out carries the evidence.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

use crate::model::{CheckResult, Outcome, Phase};
use crate::run::report::RunReport;

/// Renders the report (whose results are already redacted) as JUnit XML.
pub fn render(report: &RunReport) -> String {
    let mut junit = Report::new(format!("spinup-smoke {}", report.session_id));
    junit.set_timestamp(report.started_at.fixed_offset());
    junit.set_time(
        (report.completed_at - report.started_at)
            .to_std()
            .unwrap_or_default(),
    );
    for phase in Phase::ALL {
        let results: Vec<&CheckResult> =
            report.results.iter().filter(|r| r.phase == phase).collect();
        if results.is_empty() {
            continue;
        }
        let mut suite = TestSuite::new(phase.name());
        if let Some(ms) = report.phase_durations_ms.get(&phase) {
            suite.set_time(Duration::from_millis(*ms));
        }
        suite.add_test_cases(results.into_iter().map(test_case));
        junit.add_test_suite(suite);
    }
    junit
        .to_string()
        .expect("JUnit serialisation into memory does not fail")
}

fn expected_found(result: &CheckResult) -> String {
    format!("expected {}, found {}", result.expected, result.found)
}

fn test_case(result: &CheckResult) -> TestCase {
    let status = match result.status {
        Outcome::Pass | Outcome::Warn => TestCaseStatus::success(),
        Outcome::Fail | Outcome::Aborted => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(expected_found(result)).set_type("FAIL");
            let mut description = String::new();
            if result.status == Outcome::Aborted {
                description.push_str("ABORTED: the run was cut short before this check finished\n");
            }
            if let Some(hint) = &result.hint {
                description.push_str(&format!("hint: {hint}\n"));
            }
            if let Some(last_error) = result.attempts.iter().rev().find_map(|a| a.error.as_ref()) {
                description.push_str(&format!(
                    "last error (attempt {} of {}): {last_error}\n",
                    result.attempts.len(),
                    result.attempt_count
                ));
            }
            if !description.is_empty() {
                status.set_description(description.trim_end());
            }
            status
        }
        Outcome::Skip => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(result.skip_reason.as_deref().unwrap_or("skipped"));
            status
        }
    };
    let mut case = TestCase::new(result.id.as_str(), status);
    case.set_classname(result.phase.name());
    case.set_time(Duration::from_millis(result.duration_ms));
    let mut out = String::new();
    if result.status == Outcome::Warn {
        out.push_str(&format!("WARNING: {}\n", expected_found(result)));
        if let Some(hint) = &result.hint {
            out.push_str(&format!("hint: {hint}\n"));
        }
    }
    out.push_str(&result.evidence);
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case
}
