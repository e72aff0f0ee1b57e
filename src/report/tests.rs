//! The written artifacts: they verify, every changed byte breaks them,
//! openssl agrees with the DSSE signature, JUnit counts match, no secret
//! reaches any of them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::sample::{self, SECRET};
use super::*;
use std::collections::BTreeSet;

use crate::check::{Coverage, OverallStatus, Phase};
use crate::sign::verify::{verify_file, Signer, VerifyError};

struct Fixture {
    dir: tempfile::TempDir,
    written: Written,
    public: PathBuf,
    image: PathBuf,
}

/// The sample run with `status`, written, signed and bound to an image.
fn fixture(status: OverallStatus) -> Fixture {
    fixture_of(&sample::report(status, None))
}

/// The sample run with `boot` required too: a required phase that ran no
/// check (`services` is required and ran; `gitlab` is a stand-in).
fn requiring_boot(status: OverallStatus) -> RunReport {
    let mut report = sample::report(status, None);
    report.coverage = Coverage::assess(
        report.results.iter().map(|r| (r.phase, r.status)),
        &[],
        &BTreeSet::from([Phase::Services, Phase::Boot]),
        false,
    );
    report
}

/// `report` written, signed and bound to an image.
fn fixture_of(report: &RunReport) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.qcow2");
    std::fs::write(&image, b"image bytes").unwrap();
    let signed = sample::write_signed(dir.path(), report, Some(&image));
    Fixture {
        dir,
        written: signed.written,
        public: signed.public_key,
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
        "e2e_tests",
        "performance_metrics",
        "security_validation",
        "image_digest",
        "signature",
    ] {
        assert!(doc.get(field).is_some(), "missing {field}");
    }
    assert_eq!(doc["test_summary"]["total_tests"], 9);
    assert_eq!(doc["test_summary"]["failed"], 1);
    assert_eq!(doc["test_summary"]["warned"], 1);
    assert_eq!(doc["test_summary"]["aborted"], 1);
    assert_eq!(doc["service_health"]["postgres"]["status"], "SUCCESS");
    assert_eq!(doc["service_health"]["gitlab"]["status"], "WARNING");
    assert_eq!(doc["authentication_tests"]["status"], "FAILURE");
    assert_eq!(doc["sandbox_tests"]["status"], "ABORTED");
    assert_eq!(doc["signature"]["algorithm"], "ed25519");
    assert!(f
        .written
        .transcript
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("boot_transcript_"));
    let ok = verify_file(
        &f.written.transcript,
        Signer::Pinned(&f.public),
        Some(&f.image),
    )
    .unwrap();
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
    assert_eq!(ok.status, "FAILURE");
    let ok = verify_file(
        &f.written.attestation,
        Signer::Pinned(&f.public),
        Some(&f.image),
    )
    .unwrap();
    assert_eq!(ok.status, "FAILED");
    // Trusting the embedded key, it verifies and says the key is not pinned.
    let trusted = verify_file(&f.written.attestation, Signer::TrustEmbedded, None).unwrap();
    assert!(trusted.warnings.iter().any(|w| w.contains("not pinned")));
    // Neither pinned nor trusted: intact, but the signer is not proven.
    for file in [&f.written.transcript, &f.written.attestation] {
        assert!(matches!(
            verify_file(file, Signer::Unpinned, None),
            Err(VerifyError::NotPinned { key_id }) if key_id == ok.key_id
        ));
    }
    // A phase without checks is NOT_RUN.
    let mut no_sandbox = sample::report(OverallStatus::Failure, None);
    no_sandbox.results.retain(|r| r.phase != Phase::Sandbox);
    let doc = transcript::build(&no_sandbox, &sample::info(None), false);
    assert_eq!(doc["sandbox_tests"]["status"], "NOT_RUN");
}

#[test]
fn transcript_lists_every_phase_and_the_stand_ins() {
    let f = fixture_of(&requiring_boot(OverallStatus::Failure));
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
            "total_tests": 3, "passed": 2, "failed": 0, "warned": 1,
            "skipped": 0, "aborted": 0,
        })
    );
    assert_eq!(phase("boot")["status"], "NO_CHECKS");
    assert_eq!(phase("boot")["required"], true);
    assert_eq!(phase("oidc")["failed"], 1);
    assert_eq!(phase("agent")["skipped"], 1);
    assert_eq!(phase("sandbox")["aborted"], 1);
    assert_eq!(phase("e2e")["required"], false);
    assert_eq!(
        doc["stand_ins"],
        serde_json::json!({ "gitlab": "demo stand-in (recorded API shapes)" })
    );
    let results = doc["validation_results"].as_array().unwrap();
    let by_id = |id: &str| results.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id("gitlab.readiness")["stand_in"], true);
    for id in ["postgres.reachable", "postgres.login", "oidc.discovery"] {
        assert!(
            by_id(id).get("stand_in").is_none(),
            "only stand-in results carry the field: {id}"
        );
    }
    assert_eq!(doc["service_health"]["gitlab"]["stand_in"], true);
    assert!(doc["service_health"]["postgres"].get("stand_in").is_none());
    // The signature covers the new fields: they verify, and changing one breaks it.
    verify_file(
        &f.written.transcript,
        Signer::Pinned(&f.public),
        Some(&f.image),
    )
    .unwrap();
    for (pointer, value) in [
        ("/phases/2/status", serde_json::json!("RAN")),
        ("/phases/3/required", serde_json::json!(false)),
        ("/stand_ins", serde_json::json!({})),
        ("/validation_results/3/stand_in", serde_json::json!(false)),
        ("/service_health/gitlab/stand_in", serde_json::json!(false)),
    ] {
        let mut forged = doc.clone();
        *forged.pointer_mut(pointer).unwrap() = value;
        let path = f.dir.path().join("forged.json");
        std::fs::write(&path, crate::sign::verify::render(&forged)).unwrap();
        assert_eq!(
            verify_file(&path, Signer::Unpinned, None),
            Err(VerifyError::BadSignature),
            "{pointer}"
        );
    }
}

#[test]
fn statement_carries_the_coverage_and_names_the_stand_ins() {
    let f = fixture_of(&requiring_boot(OverallStatus::Failure));
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.attestation).unwrap()).unwrap();
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let st: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let predicate = &st["predicate"];
    assert_eq!(predicate["result"], "FAILED");
    let phases = predicate["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 10);
    assert_eq!(phases[2]["phase"], "boot");
    assert_eq!(phases[2]["status"], "NO_CHECKS");
    assert_eq!(phases[2]["required"], true);
    let configuration = predicate["configuration"].as_array().unwrap();
    assert_eq!(configuration[0]["name"], "postgres");
    assert_eq!(
        configuration[1],
        serde_json::json!({
            "name": "target:local",
            "digest": { "sha256": "12".repeat(32) },
            "annotations": { "stand_ins": { "gitlab": "demo stand-in (recorded API shapes)" } },
        })
    );
    // JUnit says so too, on the stand-in's result only.
    let xml = std::fs::read_to_string(&f.written.junit).unwrap();
    assert!(
        xml.contains("STAND-IN: answered by a stand-in of gitlab, not the service itself"),
        "{xml}"
    );
    assert_eq!(xml.matches("STAND-IN:").count(), 1, "{xml}");
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
        assert!(!text.contains(SECRET), "secret in {}", path.display());
        assert!(
            !text.contains(&STANDARD.encode(SECRET)),
            "base64 secret in {}",
            path.display()
        );
    }
    // The DSSE payload is base64: decode it and look again.
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.attestation).unwrap()).unwrap();
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    assert!(!String::from_utf8_lossy(&payload).contains(SECRET));
}

#[test]
fn wrong_key_wrong_image_and_tampering_are_reported() {
    let f = fixture(OverallStatus::Success);
    let (_, other_pub, _) = crate::sign::keys::write_keypair(&f.dir.path().join("other")).unwrap();
    assert!(matches!(
        verify_file(&f.written.transcript, Signer::Pinned(&other_pub), None),
        Err(VerifyError::UnknownKey { .. })
    ));
    let other_image = f.dir.path().join("other.img");
    std::fs::write(&other_image, b"different").unwrap();
    assert!(matches!(
        verify_file(&f.written.transcript, Signer::Unpinned, Some(&other_image)),
        Err(VerifyError::DigestMismatch { .. })
    ));
    assert!(matches!(
        verify_file(
            &f.written.attestation,
            Signer::Pinned(&f.public),
            Some(&other_image)
        ),
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
        verify_file(&forged, Signer::Unpinned, None),
        Err(VerifyError::BadSignature)
    );
}

/// Writes a run into a fresh `artifacts/` whose file names are blocked by
/// `block(dir, stem)`; returns the error and what the directory holds after.
fn write_blocked(block: impl Fn(&Path, &str)) -> (UserError, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifacts");
    std::fs::create_dir(&out).unwrap();
    let report = sample::report(OverallStatus::Success, None);
    let stem = format!(
        "boot_transcript_{}",
        report.started_at.format("%Y%m%d-%H%M%S")
    );
    block(&out, &stem);
    let before: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    let err = write_all(
        &out,
        &report,
        &sample::info(None),
        &crate::sign::SigningMaterial::ephemeral(),
        &Redactor::default(),
    )
    .expect_err("a blocked name must fail the write");
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(before.len(), 1, "the test blocks exactly one name");
    (err, left)
}

/// A full disk once left a transcript without its attestation and JUnit
/// file: the three are one set, published whole or not at all.
#[test]
fn the_artifacts_are_written_as_a_set_or_not_at_all() {
    // The JUnit file cannot take its name (a directory is there): its
    // rename fails after the other files were written.
    let (err, left) = write_blocked(|out, stem| {
        std::fs::create_dir(out.join(format!("{stem}.junit.xml"))).unwrap()
    });
    let text = err.to_string();
    assert_eq!(
        left.len(),
        1,
        "only the blocking directory is left: {left:?}"
    );
    assert!(left[0].ends_with(".junit.xml"), "{left:?}");
    assert!(
        text.contains("cannot publish") && text.contains(".junit.xml"),
        "{text}"
    );
    assert!(text.contains("none of the 3 files was written"), "{text}");
    assert_eq!(err.field.as_deref(), Some("--out"));

    // The attestation's temp file cannot be created (the first write).
    let (err, left) = write_blocked(|out, stem| {
        let tmp = format!(".{stem}.intoto.json.tmp-{}", std::process::id());
        std::fs::create_dir(out.join(tmp)).unwrap()
    });
    let text = err.to_string();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        text.contains("cannot write") && text.contains(".intoto.json.tmp-"),
        "{text}"
    );
    assert!(text.contains("none of the 3 files was written"), "{text}");

    // The transcript's temp file cannot be created (the last write).
    let (err, left) = write_blocked(|out, stem| {
        let tmp = format!(".{stem}.json.tmp-{}", std::process::id());
        std::fs::create_dir(out.join(tmp)).unwrap()
    });
    assert_eq!(left.len(), 1, "{left:?} after {err}");
}

#[test]
fn junit_has_one_testcase_per_check_and_a_suite_per_phase() {
    let f = fixture(OverallStatus::Failure);
    let xml = std::fs::read_to_string(&f.written.junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), 9);
    assert_eq!(xml.matches("<testsuite ").count(), 7, "{xml}");
    assert!(xml.contains(r#"classname="services""#), "{xml}");
    assert!(xml.contains("expected HTTP 200, found HTTP 503"), "{xml}");
    assert!(
        xml.contains("<skipped message=\"postgres.reachable failed\""),
        "{xml}"
    );
    assert!(xml.contains("time=\"1.234\""), "{xml}");
}

#[test]
fn dsse_signature_verifies_with_plain_openssl() {
    let f = fixture(OverallStatus::Success);
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.written.attestation).unwrap()).unwrap();
    let b64 = STANDARD;
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
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
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
    assert_eq!(st["predicate"]["configuration"][0]["name"], "postgres");
    assert!(st["predicate"]["failedTests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "agent.create-project"));
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
            let result = verify_file(&path, Signer::Pinned(&f.public), None);
            prop_assert!(result.is_err(), "byte {} ^ {:#x} still verifies", i, xor);
        }
    }
}
