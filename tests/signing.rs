//! Transcript, DSSE envelope and JUnit written by `report::write_all`, then
//! checked by `sign::verify`, by openssl, and against byte-level tampering.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use spinup_smoke::check::OverallStatus;
use spinup_smoke::redact::Redactor;
use spinup_smoke::report::sample::{self, info as sample_info, report as sample_report, SECRET};
use spinup_smoke::report::{self, Written};
use spinup_smoke::sign::keys;
use spinup_smoke::sign::verify::{self, FileKind, Signer, VerifyError};
use spinup_smoke::sign::SigningMaterial;

struct Fixture {
    dir: tempfile::TempDir,
    written: Written,
    pubkey: PathBuf,
    key_id: String,
}

fn write_signed(status: OverallStatus, abort: Option<&str>, image: Option<&Path>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let signed = sample::write_signed(dir.path(), &sample_report(status, abort), image);
    Fixture {
        dir,
        written: signed.written,
        pubkey: signed.public_key,
        key_id: signed.key_id,
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn writes_three_files_named_after_the_start_time() {
    let f = write_signed(OverallStatus::Failure, None, None);
    let artifacts = f.dir.path().join("artifacts");
    assert_eq!(
        f.written.transcript,
        artifacts.join("boot_transcript_20250124-143052.json")
    );
    assert_eq!(
        f.written.attestation,
        artifacts.join("boot_transcript_20250124-143052.intoto.json")
    );
    assert_eq!(
        f.written.junit,
        artifacts.join("boot_transcript_20250124-143052.junit.xml")
    );
    let leftovers: Vec<_> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn transcript_has_the_seed_fields_and_real_values() {
    let f = write_signed(OverallStatus::Failure, None, None);
    let t = json(&f.written.transcript);
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
        "schema_version",
        "tool",
        "abort_reason",
        "profiles",
        "profiles_digest",
        "target",
        "image",
        "signing",
    ] {
        assert!(t.get(field).is_some(), "missing {field}");
    }
    assert_eq!(t["test_session_id"], "spinup-20250124-143052");
    assert_eq!(t["start_time"], "2025-01-24T14:30:52Z");
    assert_eq!(t["completion_time"], "2025-01-24T14:45:18Z");
    assert_eq!(t["duration_seconds"].as_f64(), Some(866.0));
    assert_eq!(t["overall_status"], "FAILURE");
    let summary = &t["test_summary"];
    assert_eq!(summary["total_tests"], 9);
    assert_eq!(summary["passed"], 5);
    assert_eq!(summary["warned"], 1);
    assert_eq!(summary["skipped"], 1);
    let failed_or_aborted =
        summary["failed"].as_u64().unwrap() + summary["aborted"].as_u64().unwrap_or(0);
    assert_eq!(failed_or_aborted, 2, "{summary}");
    assert_eq!(t["validation_results"].as_array().unwrap().len(), 9);
    assert_eq!(t["service_health"]["gitlab"]["status"], "WARNING");
    assert_eq!(
        t["service_health"]["postgres"]["checks"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(t["authentication_tests"]["status"], "FAILURE");
    assert_eq!(
        t["performance_metrics"]["phase_durations_ms"]["services"],
        5000
    );
    assert_eq!(
        t["performance_metrics"]["check_metrics"]["oidc.discovery"]["latency_ms"],
        12.345678901234567
    );
    assert_eq!(t["image_digest"], serde_json::Value::Null);
    assert_eq!(t["signing"]["ephemeral"], false);
    assert_eq!(t["system_info"]["arch"], std::env::consts::ARCH);
    assert_eq!(t["signature"]["algorithm"], "ed25519");
}

#[test]
fn secrets_never_reach_any_written_file() {
    let f = write_signed(OverallStatus::Failure, None, None);
    for path in [
        &f.written.transcript,
        &f.written.attestation,
        &f.written.junit,
    ] {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains(SECRET),
            "{} leaks the secret",
            path.display()
        );
        assert!(
            !text.contains(&STANDARD.encode(SECRET)),
            "{} leaks base64",
            path.display()
        );
    }
    let t = json(&f.written.transcript);
    let evidence = t["validation_results"][2]["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("postgres://synapse:[REDACTED]@db"),
        "{evidence}"
    );
}

#[test]
fn verify_accepts_the_transcript_and_warns_when_the_key_is_not_pinned() {
    let f = write_signed(OverallStatus::Failure, None, None);
    let pinned =
        verify::verify_file(&f.written.transcript, Signer::Pinned(&f.pubkey), None).unwrap();
    assert_eq!(pinned.kind, FileKind::Transcript);
    assert!(pinned.warnings.is_empty(), "{:?}", pinned.warnings);
    assert_eq!(pinned.status, "FAILURE");

    let trusted = verify::verify_file(&f.written.transcript, Signer::TrustEmbedded, None).unwrap();
    assert!(trusted
        .warnings
        .iter()
        .any(|w| w.contains("key not pinned") && w.contains("not who signed it")));
}

/// Without a pinned key, an intact file is not "valid": the key inside it
/// proves nothing about who signed it.
#[test]
fn verify_without_a_pinned_key_says_the_signer_is_not_pinned() {
    let f = write_signed(OverallStatus::Success, None, None);
    for file in [&f.written.transcript, &f.written.attestation] {
        let e = verify::verify_file(file, Signer::Unpinned, None).unwrap_err();
        assert_eq!(
            e,
            VerifyError::NotPinned {
                key_id: f.key_id.clone()
            },
            "{}",
            file.display()
        );
        let text = e.to_string();
        assert!(
            text.starts_with("signer not pinned")
                && text.contains("--pubkey")
                && text.contains("--trust-embedded-key"),
            "{text}"
        );
    }
}

#[test]
fn verify_rejects_another_key() {
    let f = write_signed(OverallStatus::Success, None, None);
    let (_, other_public, other_key_id) = keys::write_keypair(&f.dir.path().join("other")).unwrap();
    for file in [&f.written.transcript, &f.written.attestation] {
        match verify::verify_file(file, Signer::Pinned(&other_public), None) {
            Err(VerifyError::UnknownKey { expected, found }) => {
                assert_eq!(expected, other_key_id);
                assert_eq!(found, f.key_id);
            }
            other => panic!("{}: {other:?}", file.display()),
        }
    }
}

#[test]
fn ephemeral_keys_are_marked_and_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let written = report::write_all(
        dir.path(),
        &sample_report(OverallStatus::Success, None),
        &sample_info(None),
        &SigningMaterial::ephemeral(),
        &Redactor::default(),
    )
    .unwrap();
    assert_eq!(json(&written.transcript)["signing"]["ephemeral"], true);
    let report = verify::verify_file(&written.transcript, Signer::TrustEmbedded, None).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.to_lowercase().contains("ephemeral")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn image_digest_binds_both_files_to_the_image() {
    let scratch = tempfile::tempdir().unwrap();
    let image = scratch.path().join("rave-p6.qcow2");
    std::fs::write(&image, b"QFI\xfb not really an image, but real bytes").unwrap();
    let f = write_signed(OverallStatus::Success, None, Some(&image));
    let t = json(&f.written.transcript);
    let digest = spinup_smoke::digest::sha256_file(&image).unwrap();
    assert_eq!(t["image_digest"], digest.as_str());
    assert_eq!(t["image"]["name"], "rave-p6.qcow2");

    for file in [&f.written.transcript, &f.written.attestation] {
        let ok = verify::verify_file(file, Signer::Pinned(&f.pubkey), Some(&image)).unwrap();
        assert_eq!(ok.image_digest.as_deref(), Some(digest.as_str()));
    }
    let other = scratch.path().join("other.qcow2");
    std::fs::write(&other, b"different bytes").unwrap();
    for file in [&f.written.transcript, &f.written.attestation] {
        match verify::verify_file(file, Signer::Pinned(&f.pubkey), Some(&other)) {
            Err(VerifyError::DigestMismatch { expected, found }) => {
                assert_eq!(expected, digest);
                assert_eq!(found, spinup_smoke::digest::sha256_file(&other).unwrap());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn in_toto_statement_carries_the_result_and_the_image() {
    let scratch = tempfile::tempdir().unwrap();
    let image = scratch.path().join("rave.raw");
    std::fs::write(&image, b"raw image bytes").unwrap();
    let f = write_signed(OverallStatus::Aborted, Some("SIGINT"), Some(&image));
    let envelope = json(&f.written.attestation);
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    assert_eq!(statement["subject"][0]["name"], "rave.raw");
    let hex = spinup_smoke::digest::sha256_file(&image).unwrap()[7..].to_string();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], hex.as_str());
    let predicate = &statement["predicate"];
    assert_eq!(predicate["result"], "FAILED", "an aborted run is FAILED");
    // FAIL, ABORTED, then SKIP (a skipped fail-severity check fails the run).
    assert_eq!(
        predicate["failedTests"],
        serde_json::json!(["oidc.discovery", "sandbox.cycle", "agent.create-project"])
    );
    assert_eq!(
        predicate["warnedTests"],
        serde_json::json!(["gitlab.readiness"])
    );
    assert_eq!(predicate["passedTests"].as_array().unwrap().len(), 5);
    assert_eq!(predicate["configuration"][0]["name"], "postgres");
    assert_eq!(envelope["signatures"][0]["keyid"], f.key_id.as_str());

    let t = json(&f.written.transcript);
    assert_eq!(t["overall_status"], "ABORTED");
    assert_eq!(t["abort_reason"], "SIGINT");
    let verified =
        verify::verify_file(&f.written.attestation, Signer::Pinned(&f.pubkey), None).unwrap();
    assert_eq!(verified.kind, FileKind::Attestation);
    assert_eq!(verified.status, "FAILED");
}

/// `phases`, `stand_ins` and `stand_in` are in both files, under the
/// signature: verify accepts them and refuses them changed.
#[test]
fn coverage_and_stand_ins_are_signed_and_verify() {
    let f = write_signed(OverallStatus::Failure, None, None);
    let t = json(&f.written.transcript);
    let statuses: Vec<(&str, &str)> = t["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["phase"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("config", "RAN"),
            ("build", "NO_CHECKS"),
            ("boot", "NO_CHECKS"),
            ("services", "RAN"),
            ("oidc", "RAN"),
            ("agent", "RAN"),
            ("sandbox", "RAN"),
            ("e2e", "NO_CHECKS"),
            ("performance", "RAN"),
            ("security", "RAN"),
        ]
    );
    assert_eq!(t["phases"][3]["required"], true);
    assert_eq!(t["phases"][3]["total_tests"], 3);
    assert_eq!(
        t["stand_ins"]["gitlab"],
        "demo stand-in (recorded API shapes)"
    );
    let gitlab = t["validation_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "gitlab.readiness")
        .unwrap();
    assert_eq!(gitlab["stand_in"], true);
    assert_eq!(t["service_health"]["gitlab"]["stand_in"], true);
    verify::verify_file(&f.written.transcript, Signer::Pinned(&f.pubkey), None).unwrap();
    verify::verify_file(&f.written.attestation, Signer::Pinned(&f.pubkey), None).unwrap();

    let statement: serde_json::Value = serde_json::from_slice(
        &STANDARD
            .decode(json(&f.written.attestation)["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(statement["predicate"]["phases"], t["phases"]);
    assert_eq!(
        statement["predicate"]["configuration"][1]["annotations"]["stand_ins"],
        t["stand_ins"]
    );

    let mut forged = t.clone();
    forged["stand_ins"] = serde_json::json!({});
    forged["service_health"]["gitlab"]
        .as_object_mut()
        .unwrap()
        .remove("stand_in");
    let path = f.dir.path().join("forged.json");
    std::fs::write(&path, verify::render(&forged)).unwrap();
    assert_eq!(
        verify::verify_file(&path, Signer::Pinned(&f.pubkey), None),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn unpinned_envelope_borrows_the_key_of_the_transcript_beside_it() {
    let f = write_signed(OverallStatus::Success, None, None);
    let report = verify::verify_file(&f.written.attestation, Signer::TrustEmbedded, None).unwrap();
    assert!(report.warnings.iter().any(|w| w.contains("key not pinned")));
    let lonely = f.dir.path().join("lonely.intoto.json");
    std::fs::copy(&f.written.attestation, &lonely).unwrap();
    for signer in [Signer::TrustEmbedded, Signer::Unpinned] {
        match verify::verify_file(&lonely, signer, None) {
            Err(VerifyError::Malformed(reason)) => assert!(reason.contains("--pubkey"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed")
}

#[test]
fn openssl_verifies_the_dsse_signature_and_reproduces_the_key_id() {
    let f = write_signed(OverallStatus::Success, None, None);
    let envelope = json(&f.written.attestation);
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let sig = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let pae = spinup_smoke::sign::pae("application/vnd.in-toto+json", &payload);
    let pae_path = f.dir.path().join("pae.bin");
    let sig_path = f.dir.path().join("sig.bin");
    std::fs::write(&pae_path, &pae).unwrap();
    std::fs::write(&sig_path, &sig).unwrap();
    let pubkey = f.pubkey.to_str().unwrap();
    let out = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        pubkey,
        "-rawin",
        "-in",
        pae_path.to_str().unwrap(),
        "-sigfile",
        sig_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"));

    let mut tampered = pae.clone();
    *tampered.last_mut().unwrap() ^= 1;
    std::fs::write(&pae_path, &tampered).unwrap();
    let out = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        pubkey,
        "-rawin",
        "-in",
        pae_path.to_str().unwrap(),
        "-sigfile",
        sig_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "openssl accepted a tampered payload");

    let der_path = f.dir.path().join("pub.der");
    let out = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        pubkey,
        "-outform",
        "DER",
        "-out",
        der_path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let der = std::fs::read(&der_path).unwrap();
    let id = spinup_smoke::digest::sha256_bytes(&der);
    assert_eq!(&id[7..], f.key_id);
}

#[test]
fn keys_from_openssl_genpkey_load_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ossl.key");
    let out = openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let material = keys::load_signing_key(&key).unwrap();
    assert!(!material.ephemeral);
}

#[test]
fn junit_has_one_testcase_per_check_grouped_by_phase() {
    let f = write_signed(OverallStatus::Failure, None, None);
    let xml = std::fs::read_to_string(&f.written.junit).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let t = json(&f.written.transcript);
    let total: usize = parsed.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert_eq!(
        total as u64,
        t["test_summary"]["total_tests"].as_u64().unwrap()
    );
    let names: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "config",
            "services",
            "oidc",
            "agent",
            "sandbox",
            "performance",
            "security"
        ]
    );
    let case = |id: &str| {
        parsed
            .test_suites
            .iter()
            .flat_map(|s| &s.test_cases)
            .find(|c| c.name.as_str() == id)
            .unwrap()
    };
    let failed = case("oidc.discovery");
    assert_eq!(failed.classname.as_ref().unwrap().as_str(), "oidc");
    assert_eq!(failed.time, Some(std::time::Duration::from_millis(1234)));
    match &failed.status {
        quick_junit::TestCaseStatus::NonSuccess {
            kind, message, ty, ..
        } => {
            assert_eq!(*kind, quick_junit::NonSuccessKind::Failure);
            assert_eq!(
                message.as_ref().unwrap().as_str(),
                "expected HTTP 200, found HTTP 503"
            );
            assert_eq!(ty.as_ref().unwrap().as_str(), "FAIL");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        case("sandbox.cycle").status,
        quick_junit::TestCaseStatus::NonSuccess { .. }
    ));
    match &case("agent.create-project").status {
        quick_junit::TestCaseStatus::Skipped { message, .. } => {
            assert_eq!(
                message.as_ref().unwrap().as_str(),
                "postgres.reachable failed"
            )
        }
        other => panic!("{other:?}"),
    }
    let warned = case("gitlab.readiness");
    assert!(matches!(
        warned.status,
        quick_junit::TestCaseStatus::Success { .. }
    ));
    assert!(warned
        .system_out
        .as_ref()
        .unwrap()
        .as_str()
        .starts_with("WARNING: expected HTTP 200"));
    assert!(warned
        .system_out
        .as_ref()
        .unwrap()
        .as_str()
        .contains("\nSTAND-IN: answered by a stand-in of gitlab, not the service itself\n"));
    assert!(case("postgres.reachable")
        .system_out
        .as_ref()
        .unwrap()
        .as_str()
        .contains("GET /health"));
}

#[test]
fn an_unwritable_out_dir_is_a_user_error_naming_the_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out_dir = file.join("artifacts");
    let err = report::write_all(
        &out_dir,
        &sample_report(OverallStatus::Success, None),
        &sample_info(None),
        &SigningMaterial::ephemeral(),
        &Redactor::default(),
    )
    .unwrap_err();
    assert!(
        err.message.contains(&out_dir.display().to_string()),
        "{err}"
    );
    assert!(err.hint.unwrap().contains("--out"));
}

/// serde_json parses about 9% of full-precision floats one ULP off unless its
/// `float_roundtrip` feature is on; the re-rendered transcript would then
/// differ from the file and a valid transcript would fail `verify`.
#[test]
fn full_precision_float_metrics_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = sample_report(OverallStatus::Success, None);
    let awkward = [
        39.430133835633676,
        0.1 + 0.2,
        1.0 / 3.0,
        2f64.sqrt() * 1e-7,
        123456.78901234567,
    ];
    for (i, value) in awkward.iter().enumerate() {
        report.results[0].metrics.insert(format!("m{i}"), *value);
    }
    let written = report::write_all(
        dir.path(),
        &report,
        &sample_info(None),
        &SigningMaterial::ephemeral(),
        &Redactor::default(),
    )
    .unwrap();
    let t = json(&written.transcript);
    assert_eq!(
        t["performance_metrics"]["check_metrics"]["config.flake-evaluates"]["m0"].as_f64(),
        Some(39.430133835633676)
    );
    verify::verify_file(&written.transcript, Signer::TrustEmbedded, None).unwrap();
}
