//! The boot transcript's wire types (schema version 1): the seed's field
//! names plus what makes the record checkable (tool, profiles and their
//! digests, image, abort reason, signing marker). Changing a field name or
//! meaning bumps `SCHEMA_VERSION`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{CheckResult, Outcome, OverallStatus, Phase};
use crate::run::report::{OutcomeCounts, RunReport};
use crate::sysinfo::SystemInfo;

use super::{ImageInfo, RunInfo};

/// Version of the transcript layout below.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole transcript, before `signature` is added.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub schema_version: u32,
    pub tool: Tool,
    pub test_session_id: String,
    pub rave_version: String,
    pub target: String,
    /// RFC 3339 UTC.
    pub start_time: String,
    /// RFC 3339 UTC.
    pub completion_time: String,
    pub duration_seconds: u64,
    pub overall_status: OverallStatus,
    pub abort_reason: Option<String>,
    pub safe_mode: bool,
    pub system_info: SystemInfo,
    pub test_summary: TestSummary,
    /// Every check's full record, in plan order.
    pub validation_results: Vec<CheckResult>,
    /// Phase `services`, grouped by the check's `service`.
    pub service_health: BTreeMap<String, Section>,
    /// Phase `oidc`.
    pub authentication_tests: Section,
    /// Phase `agent`.
    pub agent_control_tests: Section,
    /// Phase `sandbox`.
    pub sandbox_tests: Section,
    pub performance_metrics: PerformanceMetrics,
    /// Phase `security`.
    pub security_validation: Section,
    /// `sha256:<hex>` of the image under test, or null without `--image`.
    pub image_digest: Option<String>,
    pub image: Option<ImageInfo>,
    pub profiles: Vec<ProfileRef>,
    pub profiles_digest: String,
    pub signing: SigningInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TestSummary {
    pub total_tests: usize,
    pub passed: usize,
    /// FAIL and ABORTED checks.
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
}

impl From<OutcomeCounts> for TestSummary {
    fn from(c: OutcomeCounts) -> TestSummary {
        TestSummary {
            total_tests: c.total,
            passed: c.passed,
            failed: c.failed,
            warned: c.warned,
            skipped: c.skipped,
        }
    }
}

/// A group of checks: worst status and a short line per check (the full
/// record is in `validation_results`).
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// SUCCESS | WARNING | FAILURE, or NOT_RUN when the group has no checks.
    pub status: String,
    pub checks: Vec<CheckLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckLine {
    pub id: String,
    pub status: Outcome,
    pub description: String,
    pub expected: String,
    pub found: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PerformanceMetrics {
    pub total_duration_ms: u64,
    /// Wall-clock time per phase that ran.
    pub phase_durations_ms: BTreeMap<Phase, u64>,
    /// Metrics each check reported (latencies, sizes...), by check id.
    pub check_metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// Phase `performance` (budgets as assertions).
    pub budgets: Section,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileRef {
    pub name: String,
    pub path: String,
    /// Hex SHA-256 of the profile file's bytes.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SigningInfo {
    /// True when the key was generated for this run only: the signature then
    /// proves integrity, not who produced the transcript.
    pub ephemeral: bool,
}

/// RFC 3339 UTC with whole seconds: `2025-01-24T14:30:52Z`.
pub fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn section<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Section {
    let checks: Vec<CheckLine> = results
        .into_iter()
        .map(|r| CheckLine {
            id: r.id.clone(),
            status: r.status,
            description: r.description.clone(),
            expected: r.expected.clone(),
            found: r.found.clone(),
            duration_ms: r.duration_ms,
        })
        .collect();
    let status = if checks.is_empty() {
        "NOT_RUN".to_string()
    } else {
        OverallStatus::from_outcomes(checks.iter().map(|c| c.status), false)
            .label()
            .to_string()
    };
    Section { status, checks }
}

fn phase_section(results: &[CheckResult], phase: Phase) -> Section {
    section(results.iter().filter(|r| r.phase == phase))
}

/// Builds the transcript from a report whose results are already redacted.
pub fn build(report: &RunReport, info: &RunInfo, ephemeral_key: bool) -> Transcript {
    let results = &report.results;
    let mut by_service: BTreeMap<String, Vec<&CheckResult>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.phase == Phase::Services) {
        by_service.entry(r.service.clone()).or_default().push(r);
    }
    let service_health = by_service
        .into_iter()
        .map(|(service, checks)| (service, section(checks)))
        .collect();
    let check_metrics = results
        .iter()
        .filter(|r| !r.metrics.is_empty())
        .map(|r| (r.id.clone(), r.metrics.clone()))
        .collect();
    Transcript {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "spinup-smoke".to_string(),
            version: info.tool_version.clone(),
        },
        test_session_id: report.session_id.clone(),
        rave_version: info.rave_version.clone(),
        target: info.target_name.clone(),
        start_time: rfc3339(report.started_at),
        completion_time: rfc3339(report.completed_at),
        duration_seconds: report.duration_seconds(),
        overall_status: report.status,
        abort_reason: report.abort_reason.clone(),
        safe_mode: report.safe_mode,
        system_info: info.system_info.clone(),
        test_summary: report.counts().into(),
        validation_results: results.clone(),
        service_health,
        authentication_tests: phase_section(results, Phase::Oidc),
        agent_control_tests: phase_section(results, Phase::Agent),
        sandbox_tests: phase_section(results, Phase::Sandbox),
        performance_metrics: PerformanceMetrics {
            total_duration_ms: (report.completed_at - report.started_at)
                .num_milliseconds()
                .max(0) as u64,
            phase_durations_ms: report.phase_durations_ms.clone(),
            check_metrics,
            budgets: phase_section(results, Phase::Performance),
        },
        security_validation: phase_section(results, Phase::Security),
        image_digest: info.image.as_ref().map(|i| i.digest.clone()),
        image: info.image.clone(),
        profiles: info
            .profiles
            .iter()
            .map(|p| ProfileRef {
                name: p.name.clone(),
                path: p.path.display().to_string(),
                sha256: p.sha256.clone(),
            })
            .collect(),
        profiles_digest: info.profiles_digest.clone(),
        signing: SigningInfo {
            ephemeral: ephemeral_key,
        },
    }
}
