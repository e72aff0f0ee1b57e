//! The written artifacts: they verify, every changed byte breaks them,
//! openssl agrees with the DSSE signature, JUnit counts match, no secret
//! reaches any of them.

use std::collections::BTreeMap;

use super::*;
use crate::check::{Attempt, CheckResult, OverallStatus, Phase, Severity};
use crate::sign::verify::{verify_file, VerifyError};

fn result(id: &str, phase: Phase, status: Outcome) -> CheckResult {
    CheckResult {
        id: id.into(),
        phase,
        service: id.split('.').next().unwrap().into(),
        stand_in: false,
        severity: Severity::Fail,
        status,
        description: format!("{id} works"),
        expected: "status 200".into(),
        found: if status == Outcome::Pass {
            "status 200".into()
        } else {
            "status 503 (password=hunter22)".into()
        },
        evidence: "HTTP/1.1 503\nbody: secret value hunter22".into(),
        evidence_sha256: String::new(),
        hint: Some("restart it".into()),
        skip_reason: (status == Outcome::Skip).then(|| "needs `x`, which failed".into()),
        started_at: Some("2026-01-01T00:00:00.000Z".into()),
        duration_ms: 120,
        attempt_count: 1,
        attempts: vec![Attempt {
            number: 1,
            duration_ms: 120,
            passed: status == Outcome::Pass,
            error: None,
        }],
        metrics: BTreeMap::from([("latency_ms".to_string(), 12.5)]),
        profile: "health-checks/x.toml".into(),
    }
}

use crate::check::Outcome;

/// Five results; matrix is answered by a stand-in; services and agent are
/// required (agent has no check).
fn report(status: OverallStatus) -> RunReport {
    let start = chrono::Utc::now();
    let mut results = vec![
        result("postgres.reachable", Phase::Services, Outcome::Pass),
        result("matrix.health", Phase::Services, Outcome::Fail),
        result("matrix.login", Phase::Services, Outcome::Skip),
        result("oidc.discovery", Phase::Oidc, Outcome::Warn),
        result("ssh.password-off", Phase::Security, Outcome::Pass),
    ];
    for r in results.iter_mut().filter(|r| r.service == "matrix") {
        r.stand_in = true;
    }
    let coverage = crate::check::Coverage::assess(
        results.iter().map(|r| (r.phase, r.status)),
        &[],
        &[Phase::Services, Phase::Agent].into_iter().collect(),
        false,
    );
    RunReport {
        session_id: "spinup-test".into(),
        started_at: start,
        completed_at: start + chrono::Duration::milliseconds(1234),
        status,
        coverage,
        abort_reason: None,
        results,
        phase_durations_ms: BTreeMap::from([(Phase::Services, 800)]),
        safe_mode: true,
    }
}

fn info(image: Option<ImageInfo>) -> RunInfo {
    RunInfo {
        rave_version: "P6-test".into(),
        target_name: "test".into(),
        profiles: vec![Source {
            path: "health-checks/x.toml".into(),
            name: "x".into(),
            description: String::new(),
            sha256: "ab".repeat(32),
        }],
        profiles_digest: format!("sha256:{}", "cd".repeat(32)),
        image,
        system_info: SystemInfo::gather(),
        tool_version: "0.0.0-test".into(),
        target_sha256: Some(format!("sha256:{}", "ef".repeat(32))),
        stand_ins: BTreeMap::from([(
            "matrix".to_string(),
            "a stand-in replaying recorded answers".to_string(),
        )]),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    written: Written,
    public: PathBuf,
    image: PathBuf,
}

fn fixture(status: OverallStatus) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, public, _) =
        crate::sign::keys::write_keypair(&dir.path().join("signer")).unwrap();
    let key = crate::sign::keys::load_signing_key(&key_path).unwrap();
    let image = dir.path().join("disk.qcow2");
    std::fs::write(&image, b"image bytes").unwrap();
    let image_info = ImageInfo {
        name: "disk.qcow2".into(),
        path: image.clone(),
        digest: crate::digest::sha256_file(&image).unwrap(),
    };
    let redactor = Redactor::new(vec!["hunter22".into()]);
    let out = dir.path().join("artifacts");
    let written = write_all(
        &out,
        &report(status),
        &info(Some(image_info)),
        &key,
        &redactor,
    )
    .unwrap();
    Fixture {
        dir,
        written,
        public,
        image,
    }
}

#[test]
fn transcript_has_the_spec_fields_and_verifies() {
    let f = fixture(OverallStatus::Failure);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.transcript).unwrap()).unwrap();
    for field in [
        "test_session_id",
        "rave_version",
        "start_time",
        "completion_time",
        "duration_seconds",
        "overall_status",
        "system_info",
        "test_summary",
        "validation_results",
        "service_health",
        "authentication_tests",
        "agent_control_tests",
        "sandbox_tests",
        "performance_metrics",
        "security_validation",
        "image_digest",
        "signature",
    ] {
        assert!(doc.get(field).is_some(), "missing {field}");
    }
    assert_eq!(doc["test_summary"]["total_tests"], 5);
    assert_eq!(doc["test_summary"]["failed"], 1);
    assert_eq!(doc["test_summary"]["warned"], 1);
    assert_eq!(doc["service_health"]["matrix"]["status"], "FAILURE");
    assert_eq!(doc["authentication_tests"]["status"], "WARNING");
    assert_eq!(doc["sandbox_tests"]["status"], "NOT_RUN");
    assert_eq!(doc["signature"]["algorithm"], "ed25519");
    assert!(f
        .written
        .transcript
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("boot_transcript_"));
    let ok = verify_file(&f.written.transcript, Some(&f.public), Some(&f.image)).unwrap();
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
    assert_eq!(ok.status, "FAILURE");
    let ok = verify_file(&f.written.attestation, Some(&f.public), Some(&f.image)).unwrap();
    assert_eq!(ok.status, "FAILED");
    // Without --pubkey it verifies with the embedded key, and says so.
    let unpinned = verify_file(&f.written.attestation, None, None).unwrap();
    assert!(unpinned.warnings.iter().any(|w| w.contains("not pinned")));
}

#[test]
fn transcript_lists_every_phase_and_the_stand_ins() {
    let f = fixture(OverallStatus::Failure);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.transcript).unwrap()).unwrap();
    let phases = doc["phases"].as_array().unwrap();
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names, Phase::ALL.map(|p| p.name()));
    let phase = |name: &str| phases.iter().find(|p| p["phase"] == name).unwrap();
    assert_eq!(
        phase("services"),
        &serde_json::json!({
            "phase": "services", "status": "RAN", "required": true,
            "total_tests": 3, "passed": 1, "failed": 1, "warned": 0,
            "skipped": 1, "aborted": 0,
        })
    );
    assert_eq!(phase("agent")["status"], "NO_CHECKS");
    assert_eq!(phase("agent")["required"], true);
    assert_eq!(phase("oidc")["warned"], 1);
    assert_eq!(phase("e2e")["required"], false);
    assert_eq!(
        doc["stand_ins"],
        serde_json::json!({ "matrix": "a stand-in replaying recorded answers" })
    );
    let results = doc["validation_results"].as_array().unwrap();
    let by_id = |id: &str| results.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id("matrix.health")["stand_in"], true);
    assert_eq!(by_id("matrix.login")["stand_in"], true);
    assert!(
        by_id("postgres.reachable").get("stand_in").is_none(),
        "only stand-in results carry the field"
    );
    assert_eq!(doc["service_health"]["matrix"]["stand_in"], true);
    assert!(doc["service_health"]["postgres"].get("stand_in").is_none());
    // The signature covers the new fields: they verify, and changing one breaks it.
    verify_file(&f.written.transcript, Some(&f.public), Some(&f.image)).unwrap();
    for (pointer, value) in [
        ("/phases/5/status", serde_json::json!("RAN")),
        ("/phases/3/required", serde_json::json!(false)),
        ("/stand_ins", serde_json::json!({})),
        ("/validation_results/1/stand_in", serde_json::json!(false)),
        ("/service_health/matrix/stand_in", serde_json::json!(false)),
    ] {
        let mut forged = doc.clone();
        *forged.pointer_mut(pointer).unwrap() = value;
        let path = f.dir.path().join("forged.json");
        std::fs::write(&path, crate::sign::verify::render(&forged)).unwrap();
        assert_eq!(
            verify_file(&path, None, None),
            Err(VerifyError::BadSignature),
            "{pointer}"
        );
    }
}

#[test]
fn statement_carries_the_coverage_and_names_the_stand_ins() {
    let f = fixture(OverallStatus::Failure);
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.attestation).unwrap()).unwrap();
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let predicate = &st["predicate"];
    assert_eq!(predicate["result"], "FAILED");
    let phases = predicate["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 10);
    assert_eq!(phases[5]["phase"], "agent");
    assert_eq!(phases[5]["status"], "NO_CHECKS");
    assert_eq!(phases[5]["required"], true);
    let configuration = predicate["configuration"].as_array().unwrap();
    assert_eq!(configuration[0]["name"], "x");
    assert_eq!(
        configuration[1],
        serde_json::json!({
            "name": "target:test",
            "digest": { "sha256": "ef".repeat(32) },
            "annotations": { "stand_ins": { "matrix": "a stand-in replaying recorded answers" } },
        })
    );
    // JUnit says so too.
    let xml = std::fs::read_to_string(&f.written.junit).unwrap();
    assert!(
        xml.contains("STAND-IN: answered by a stand-in of matrix, not the service itself"),
        "{xml}"
    );
    assert_eq!(xml.matches("STAND-IN:").count(), 2, "{xml}");
}

#[test]
fn no_secret_reaches_any_artifact() {
    let f = fixture(OverallStatus::Failure);
    for path in [
        &f.written.transcript,
        &f.written.attestation,
        &f.written.junit,
    ] {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains("hunter22"), "secret in {}", path.display());
        let decoded = text.clone();
        assert!(
            !decoded.contains("aHVudGVyMjI"),
            "base64 secret in {}",
            path.display()
        );
    }
    // The DSSE payload is base64: decode it and look again.
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.attestation).unwrap()).unwrap();
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    assert!(!String::from_utf8_lossy(&payload).contains("hunter22"));
}

#[test]
fn wrong_key_wrong_image_and_tampering_are_reported() {
    let f = fixture(OverallStatus::Success);
    let (_, other_pub, _) = crate::sign::keys::write_keypair(&f.dir.path().join("other")).unwrap();
    assert!(matches!(
        verify_file(&f.written.transcript, Some(&other_pub), None),
        Err(VerifyError::UnknownKey { .. })
    ));
    let other_image = f.dir.path().join("other.img");
    std::fs::write(&other_image, b"different").unwrap();
    assert!(matches!(
        verify_file(&f.written.transcript, None, Some(&other_image)),
        Err(VerifyError::DigestMismatch { .. })
    ));
    assert!(matches!(
        verify_file(&f.written.attestation, Some(&f.public), Some(&other_image)),
        Err(VerifyError::DigestMismatch { .. })
    ));
    // A changed value, re-rendered in the canonical layout, breaks the signature.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.transcript).unwrap()).unwrap();
    doc["overall_status"] = "SUCCESS".into();
    doc["test_summary"]["failed"] = 0.into();
    let forged = f.dir.path().join("forged.json");
    std::fs::write(&forged, crate::sign::verify::render(&doc)).unwrap();
    assert_eq!(
        verify_file(&forged, None, None),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn junit_has_one_testcase_per_check_and_a_suite_per_phase() {
    let f = fixture(OverallStatus::Failure);
    let xml = std::fs::read_to_string(&f.written.junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), 5);
    assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
    assert!(xml.contains(r#"classname="services""#), "{xml}");
    assert!(
        xml.contains("expected status 200, found status 503"),
        "{xml}"
    );
    assert!(
        xml.contains("<skipped message=\"needs `x`, which failed\""),
        "{xml}"
    );
    assert!(xml.contains("time=\"0.120\""), "{xml}");
}

#[test]
fn dsse_signature_verifies_with_plain_openssl() {
    let f = fixture(OverallStatus::Success);
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.attestation).unwrap()).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let sig = b64
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let pae_path = f.dir.path().join("pae.bin");
    let sig_path = f.dir.path().join("sig.bin");
    std::fs::write(&pae_path, crate::sign::pae(dsse::PAYLOAD_TYPE, &payload)).unwrap();
    std::fs::write(&sig_path, &sig).unwrap();
    let openssl = |pae: &Path| {
        std::process::Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(&f.public)
            .arg("-rawin")
            .arg("-in")
            .arg(pae)
            .arg("-sigfile")
            .arg(&sig_path)
            .output()
            .expect("openssl is installed")
    };
    let out = openssl(&pae_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"));
    // And openssl rejects a changed PAE.
    let mut bad = crate::sign::pae(dsse::PAYLOAD_TYPE, &payload);
    bad[10] ^= 1;
    let bad_path = f.dir.path().join("bad.bin");
    std::fs::write(&bad_path, bad).unwrap();
    assert!(!openssl(&bad_path).status.success());
}

#[test]
fn statement_follows_in_toto_test_result() {
    let f = fixture(OverallStatus::Warning);
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.attestation).unwrap()).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        st["predicateType"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    assert_eq!(st["subject"][0]["name"], "disk.qcow2");
    assert_eq!(
        st["subject"][0]["digest"]["sha256"].as_str().unwrap().len(),
        64
    );
    assert_eq!(st["predicate"]["result"], "WARNED");
    assert_eq!(st["predicate"]["configuration"][0]["name"], "x");
    assert!(st["predicate"]["failedTests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "matrix.login"));
}

mod tamper {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn signed() -> &'static (Fixture, Vec<u8>, Vec<u8>) {
        static F: OnceLock<(Fixture, Vec<u8>, Vec<u8>)> = OnceLock::new();
        F.get_or_init(|| {
            let f = fixture(OverallStatus::Failure);
            let t = std::fs::read(&f.written.transcript).unwrap();
            let a = std::fs::read(&f.written.attestation).unwrap();
            (f, t, a)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Any single changed byte of a signed transcript or attestation fails verification.
        #[test]
        fn any_changed_byte_fails(pos in any::<prop::sample::Index>(), xor in 1u8..=255, which in 0..2usize) {
            let (f, transcript, attestation) = signed();
            let original = if which == 0 { transcript } else { attestation };
            let mut bytes = original.clone();
            let i = pos.index(bytes.len());
            bytes[i] ^= xor;
            let name = if which == 0 { "t.json" } else { "t.intoto.json" };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let result = verify_file(&path, Some(&f.public), None);
            prop_assert!(result.is_err(), "byte {} ^ {:#x} still verifies", i, xor);
        }
    }
}
