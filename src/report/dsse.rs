//! The run as an in-toto Statement v1 with the test-result predicate, in a
//! DSSE envelope signed with the transcript's key, so supply-chain tools
//! (and plain openssl over the PAE bytes) can verify it. Besides the
//! predicate's own fields it carries the phases' coverage (`phases`), and
//! its `configuration` names the target file with its stand-ins.

use base64::Engine;
use ed25519_dalek::Signer;
use serde_json::json;

use super::RunInfo;
use crate::check::{Outcome, OverallStatus};
use crate::run::RunReport;
use crate::sign::{pae, SigningMaterial};

pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// The in-toto statement. Without `--image` the subject is the transcript
/// itself (name and digest), so the attestation still binds to something.
pub fn statement(
    report: &RunReport,
    info: &RunInfo,
    transcript_name: &str,
    transcript_digest: &str,
) -> serde_json::Value {
    let (name, digest) = match &info.image {
        Some(image) => (image.name.clone(), image.digest.clone()),
        None => (transcript_name.to_string(), transcript_digest.to_string()),
    };
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or(&digest)
        .to_string();
    let ids = |o: Outcome| -> Vec<&str> {
        report
            .results
            .iter()
            .filter(|r| r.status == o)
            .map(|r| r.id.as_str())
            .collect()
    };
    let mut failed = ids(Outcome::Fail);
    failed.extend(ids(Outcome::Aborted));
    failed.extend(ids(Outcome::Skip));
    let result = match report.status {
        OverallStatus::Success => "PASSED",
        OverallStatus::Warning => "WARNED",
        OverallStatus::Failure | OverallStatus::Aborted => "FAILED",
    };
    let mut configuration: Vec<serde_json::Value> = info
        .profiles
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "digest": { "sha256": p.sha256 },
            })
        })
        .collect();
    if let Some(target) = &info.target_sha256 {
        let mut entry = json!({
            "name": format!("target:{}", info.target_name),
            "digest": { "sha256": target.strip_prefix("sha256:").unwrap_or(target) },
        });
        if !info.stand_ins.is_empty() {
            entry["annotations"] = json!({ "stand_ins": info.stand_ins });
        }
        configuration.push(entry);
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{ "name": name, "digest": { "sha256": hex } }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "result": result,
            "configuration": configuration,
            "passedTests": ids(Outcome::Pass),
            "warnedTests": ids(Outcome::Warn),
            "failedTests": failed,
            "phases": report.coverage.phases,
        }
    })
}

/// Signs `statement` into a DSSE envelope.
pub fn envelope(statement: &serde_json::Value, key: &SigningMaterial) -> serde_json::Value {
    let payload = serde_json::to_vec(statement).unwrap_or_default();
    let signature = key.key.sign(&pae(PAYLOAD_TYPE, &payload));
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": b64.encode(&payload),
        "signatures": [{ "keyid": key.key_id(), "sig": b64.encode(signature.to_bytes()) }],
    })
}
