//! A sample run, and the same run written and signed: the fixture of the
//! report's unit tests and of `tests/signing.rs` (through the `testkit`
//! feature). Nine checks in seven phases, every outcome, fixed times (the
//! file names follow the start), one evidence text that leaks [`SECRET`]
//! for the redactor to catch; `services` is required, and `gitlab` is
//! answered by a stand-in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::TimeZone;

use super::{ImageInfo, RunInfo, Written};
use crate::check::{Attempt, CheckResult, Coverage, Outcome, OverallStatus, Phase, Severity};
use crate::redact::Redactor;
use crate::run::RunReport;
use crate::sign::keys;
use crate::sysinfo::SystemInfo;

/// The secret the run knows; no written file may contain it.
pub const SECRET: &str = "correct-horse-battery";

/// One check's result: passed (or not) on its second attempt; a `gitlab`
/// check is answered by a stand-in.
pub fn result(id: &str, phase: Phase, service: &str, status: Outcome) -> CheckResult {
    CheckResult {
        id: id.to_string(),
        phase,
        service: service.to_string(),
        stand_in: service == "gitlab",
        severity: if status == Outcome::Warn {
            Severity::Warn
        } else {
            Severity::Fail
        },
        status,
        description: format!("{id} works"),
        expected: "HTTP 200".to_string(),
        found: if status == Outcome::Pass {
            "HTTP 200"
        } else {
            "HTTP 503"
        }
        .to_string(),
        evidence: format!("GET /health -> body excerpt for {id}"),
        evidence_sha256: "0".repeat(64),
        hint: Some("restart the unit".to_string()),
        skip_reason: (status == Outcome::Skip).then(|| "postgres.reachable failed".to_string()),
        started_at: Some("2025-01-24T14:30:53Z".to_string()),
        duration_ms: 1234,
        attempt_count: 2,
        attempts: vec![
            Attempt {
                number: 1,
                duration_ms: 600,
                passed: false,
                error: Some("connection refused".into()),
            },
            Attempt {
                number: 2,
                duration_ms: 634,
                passed: status == Outcome::Pass,
                error: None,
            },
        ],
        metrics: BTreeMap::from([("latency_ms".to_string(), 12.345678901234567)]),
        profile: "health-checks/postgres.toml".to_string(),
        host: "local".to_string(),
    }
}

/// The sample run; `postgres.login` (the third result) leaks [`SECRET`].
pub fn report(status: OverallStatus, abort_reason: Option<&str>) -> RunReport {
    let mut leaking = result("postgres.login", Phase::Services, "postgres", Outcome::Pass);
    leaking.evidence = format!(
        "psql postgres://synapse:{SECRET}@db/synapse ok; token {}",
        STANDARD.encode(SECRET)
    );
    let mut aborted = result("sandbox.cycle", Phase::Sandbox, "sandbox", Outcome::Aborted);
    aborted.found = "cancelled by SIGINT".into();
    let results = vec![
        result(
            "config.flake-evaluates",
            Phase::Config,
            "config",
            Outcome::Pass,
        ),
        result(
            "postgres.reachable",
            Phase::Services,
            "postgres",
            Outcome::Pass,
        ),
        leaking,
        result("gitlab.readiness", Phase::Services, "gitlab", Outcome::Warn),
        result("oidc.discovery", Phase::Oidc, "oidc", Outcome::Fail),
        result("agent.create-project", Phase::Agent, "agent", Outcome::Skip),
        aborted,
        result(
            "performance.memory",
            Phase::Performance,
            "host",
            Outcome::Pass,
        ),
        result(
            "security.sshd-password-auth",
            Phase::Security,
            "sshd",
            Outcome::Pass,
        ),
    ];
    let coverage = Coverage::assess(
        results.iter().map(|r| (r.phase, r.status)),
        &[],
        &BTreeSet::from([Phase::Services]),
        abort_reason.is_some(),
    );
    RunReport {
        session_id: "spinup-20250124-143052".to_string(),
        started_at: chrono::Utc
            .with_ymd_and_hms(2025, 1, 24, 14, 30, 52)
            .unwrap(),
        completed_at: chrono::Utc
            .with_ymd_and_hms(2025, 1, 24, 14, 45, 18)
            .unwrap(),
        status,
        abort_reason: abort_reason.map(str::to_string),
        coverage,
        results,
        phase_durations_ms: BTreeMap::from([(Phase::Config, 1000), (Phase::Services, 5000)]),
        safe_mode: true,
    }
}

/// What the transcript says besides the results.
pub fn info(image: Option<ImageInfo>) -> RunInfo {
    RunInfo {
        rave_version: "P6-production".to_string(),
        target_name: "local".to_string(),
        profiles: vec![crate::profile::Source {
            path: PathBuf::from("health-checks/postgres.toml"),
            name: "postgres".to_string(),
            description: "PostgreSQL health".to_string(),
            sha256: "ab".repeat(32),
        }],
        profiles_digest: format!("sha256:{}", "cd".repeat(32)),
        image,
        system_info: SystemInfo::gather(),
        tool_version: "0.1.0".to_string(),
        target_sha256: Some(format!("sha256:{}", "12".repeat(32))),
        stand_ins: BTreeMap::from([(
            "gitlab".to_string(),
            "demo stand-in (recorded API shapes)".to_string(),
        )]),
    }
}

/// An image's name, path and digest.
pub fn image_info(path: &Path) -> ImageInfo {
    ImageInfo {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        path: path.to_path_buf(),
        digest: crate::digest::sha256_file(path).unwrap(),
    }
}

/// What [`write_signed`] wrote.
pub struct Signed {
    pub written: Written,
    /// The public key of the signer.
    pub public_key: PathBuf,
    pub key_id: String,
}

/// Writes `report` into `dir/artifacts`, signed with a new key pair
/// `dir/signer.{key,pub}`, redacting [`SECRET`], bound to `image`.
pub fn write_signed(dir: &Path, report: &RunReport, image: Option<&Path>) -> Signed {
    let (private_key, public_key, key_id) = keys::write_keypair(&dir.join("signer")).unwrap();
    let material = keys::load_signing_key(&private_key).unwrap();
    let written = super::write_all(
        &dir.join("artifacts"),
        report,
        &info(image.map(image_info)),
        &material,
        &Redactor::new(vec![SECRET.to_string()]),
    )
    .unwrap();
    Signed {
        written,
        public_key,
        key_id,
    }
}
