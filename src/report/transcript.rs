//! The boot transcript's wire format (versioned). Field names follow the
//! RAVE spec (seed 002); spinup-smoke adds per-check attempts, timings,
//! expected/found, evidence digests, skip reasons, the profiles' digests,
//! the tool version and the signing mode, the coverage of the ten phases
//! (`phases`) and the services answered by stand-ins (`stand_ins`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::RunInfo;
pub use crate::check::Summary;
use crate::check::{CheckResult, Outcome, OverallStatus, Phase, PhaseCoverage};
use crate::run::RunReport;

pub const SCHEMA_VERSION: &str = "spinup-smoke.transcript/v1";

#[derive(Debug, Serialize)]
pub struct Transcript<'a> {
    pub schema_version: &'static str,
    pub test_session_id: &'a str,
    pub rave_version: &'a str,
    pub start_time: String,
    pub completion_time: String,
    pub duration_seconds: f64,
    pub overall_status: OverallStatus,
    pub abort_reason: Option<&'a str>,
    pub tool: Tool<'a>,
    pub target: &'a str,
    pub system_info: &'a crate::sysinfo::SystemInfo,
    pub test_summary: Summary,
    /// All ten phases: RAN, NOT_SELECTED or NO_CHECKS, required, counts.
    pub phases: &'a [PhaseCoverage],
    /// Services answered by stand-ins (from the target): service -> what answers.
    pub stand_ins: &'a BTreeMap<String, String>,
    pub validation_results: &'a [CheckResult],
    pub service_health: BTreeMap<String, Section>,
    pub authentication_tests: Section,
    pub agent_control_tests: Section,
    pub sandbox_tests: Section,
    pub e2e_tests: Section,
    pub performance_metrics: Performance,
    pub security_validation: Section,
    pub profiles: Vec<ProfileRef<'a>>,
    pub profiles_digest: &'a str,
    pub image: Option<&'a super::ImageInfo>,
    pub image_digest: Option<&'a str>,
    pub signing: Signing,
}

#[derive(Debug, Serialize)]
pub struct Tool<'a> {
    pub name: &'static str,
    pub version: &'a str,
}

/// The results of one phase (or one service), summarised.
#[derive(Debug, Serialize, PartialEq)]
pub struct Section {
    /// SUCCESS | WARNING | FAILURE | ABORTED, or NOT_RUN when no check ran.
    pub status: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// Some of its checks were answered by a stand-in.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stand_in: bool,
    pub checks: BTreeMap<String, SectionCheck>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SectionCheck {
    pub status: Outcome,
    pub found: String,
    pub duration_ms: u64,
}

impl Section {
    pub fn of(results: &[&CheckResult]) -> Section {
        let status = if results.is_empty() {
            "NOT_RUN".to_string()
        } else {
            let aborted = results.iter().any(|r| r.status == Outcome::Aborted);
            OverallStatus::from_outcomes(results.iter().map(|r| r.status), aborted)
                .label()
                .to_string()
        };
        Section {
            status,
            summary: Summary::of(results.iter().copied()),
            stand_in: results.iter().any(|r| r.stand_in),
            checks: results
                .iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        SectionCheck {
                            status: r.status,
                            found: r.found.clone(),
                            duration_ms: r.duration_ms,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Performance {
    pub safe_mode: bool,
    pub budget_set: &'static str,
    pub total_duration_ms: u64,
    pub phase_durations_ms: BTreeMap<Phase, u64>,
    /// Numbers probes recorded, by check id (latencies, boot timings...).
    pub check_metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// The performance phase's own checks (budgets as assertions).
    pub budget_checks: Section,
}

#[derive(Debug, Serialize)]
pub struct ProfileRef<'a> {
    pub name: &'a str,
    pub path: String,
    pub sha256: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Signing {
    pub ephemeral: bool,
}

fn in_phase(report: &RunReport, phase: Phase) -> Vec<&CheckResult> {
    report.results.iter().filter(|r| r.phase == phase).collect()
}

/// Builds the unsigned transcript document.
pub fn build(report: &RunReport, info: &RunInfo, ephemeral: bool) -> serde_json::Value {
    let mut services: BTreeMap<String, Vec<&CheckResult>> = BTreeMap::new();
    for r in report.results.iter().filter(|r| r.phase == Phase::Services) {
        services.entry(r.service.clone()).or_default().push(r);
    }
    let total_ms = (report.completed_at - report.started_at)
        .num_milliseconds()
        .max(0) as u64;
    let transcript = Transcript {
        schema_version: SCHEMA_VERSION,
        test_session_id: &report.session_id,
        rave_version: &info.rave_version,
        start_time: report
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        completion_time: report
            .completed_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_seconds: total_ms as f64 / 1000.0,
        overall_status: report.status,
        abort_reason: report.abort_reason.as_deref(),
        tool: Tool {
            name: "spinup-smoke",
            version: &info.tool_version,
        },
        target: &info.target_name,
        system_info: &info.system_info,
        test_summary: Summary::of(&report.results),
        phases: &report.coverage.phases,
        stand_ins: &info.stand_ins,
        validation_results: &report.results,
        service_health: services
            .iter()
            .map(|(k, v)| (k.clone(), Section::of(v)))
            .collect(),
        authentication_tests: Section::of(&in_phase(report, Phase::Oidc)),
        agent_control_tests: Section::of(&in_phase(report, Phase::Agent)),
        sandbox_tests: Section::of(&in_phase(report, Phase::Sandbox)),
        e2e_tests: Section::of(&in_phase(report, Phase::E2e)),
        performance_metrics: Performance {
            safe_mode: report.safe_mode,
            budget_set: if report.safe_mode {
                "SAFE"
            } else {
                "FULL_PIPE"
            },
            total_duration_ms: total_ms,
            phase_durations_ms: report.phase_durations_ms.clone(),
            check_metrics: report
                .results
                .iter()
                .filter(|r| !r.metrics.is_empty())
                .map(|r| (r.id.clone(), r.metrics.clone()))
                .collect(),
            budget_checks: Section::of(&in_phase(report, Phase::Performance)),
        },
        security_validation: Section::of(&in_phase(report, Phase::Security)),
        profiles: info
            .profiles
            .iter()
            .map(|p| ProfileRef {
                name: &p.name,
                path: p.path.display().to_string(),
                sha256: &p.sha256,
            })
            .collect(),
        profiles_digest: &info.profiles_digest,
        image: info.image.as_ref(),
        image_digest: info.image.as_ref().map(|i| i.digest.as_str()),
        signing: Signing { ephemeral },
    };
    serde_json::to_value(&transcript).unwrap_or(serde_json::Value::Null)
}
