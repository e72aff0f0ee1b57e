//! The same result as an in-toto Statement v1 (predicate
//! `https://in-toto.io/attestation/test-result/v0.1`, subject = the image and
//! its SHA-256) inside a DSSE envelope signed over the DSSE PAE, so tools
//! outside this project (openssl, cosign, in-toto verifiers) can check it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::model::{CheckResult, Outcome, OverallStatus};
use crate::sign::{keys, pae, SigningMaterial};

pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";
/// Subject name when the run had no `--image`.
pub const UNKNOWN_IMAGE: &str = "unknown-image";

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 (standard, padded) of the statement's JSON bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Hex SHA-256 of the signer's SPKI DER (same as the transcript's key id).
    pub keyid: String,
    /// Base64 of the ed25519 signature over `PAE(payloadType, payload bytes)`.
    pub sig: String,
}

/// An in-toto Statement v1 with a test-result predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: TestResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

/// The test-result v0.1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// PASSED | WARNED | FAILED (an aborted run is FAILED).
    pub result: String,
    pub configuration: Vec<ResourceDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "passedTests")]
    pub passed_tests: Vec<String>,
    #[serde(rename = "warnedTests")]
    pub warned_tests: Vec<String>,
    #[serde(rename = "failedTests")]
    pub failed_tests: Vec<String>,
}

/// The predicate's result word for a run status.
pub fn result_word(status: OverallStatus) -> &'static str {
    match status {
        OverallStatus::Success => "PASSED",
        OverallStatus::Warning => "WARNED",
        OverallStatus::Failure | OverallStatus::Aborted => "FAILED",
    }
}

fn sha256_map(hex_digest: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("sha256".to_string(), hex_digest.to_string())])
}

/// Inputs of the statement that are not check results.
pub struct StatementInputs<'a> {
    pub status: OverallStatus,
    /// (file name, hex sha256) of the image, or None without `--image`.
    pub image: Option<(&'a str, &'a str)>,
    /// Hex sha256 of the transcript bytes (the subject when there is no image).
    pub transcript_sha256: &'a str,
    /// (profile name, hex sha256).
    pub profiles: Vec<(&'a str, &'a str)>,
    pub url: Option<String>,
}

pub fn build_statement(results: &[CheckResult], inputs: StatementInputs<'_>) -> Statement {
    let ids = |wanted: &[Outcome]| -> Vec<String> {
        results
            .iter()
            .filter(|r| wanted.contains(&r.status))
            .map(|r| r.id.clone())
            .collect()
    };
    let subject = match inputs.image {
        Some((name, digest)) => ResourceDescriptor {
            name: name.to_string(),
            digest: sha256_map(digest),
        },
        None => ResourceDescriptor {
            name: UNKNOWN_IMAGE.to_string(),
            digest: sha256_map(inputs.transcript_sha256),
        },
    };
    Statement {
        statement_type: STATEMENT_TYPE.to_string(),
        subject: vec![subject],
        predicate_type: PREDICATE_TYPE.to_string(),
        predicate: TestResult {
            result: result_word(inputs.status).to_string(),
            configuration: inputs
                .profiles
                .iter()
                .map(|(name, digest)| ResourceDescriptor {
                    name: name.to_string(),
                    digest: sha256_map(digest),
                })
                .collect(),
            url: inputs.url,
            passed_tests: ids(&[Outcome::Pass]),
            warned_tests: ids(&[Outcome::Warn]),
            failed_tests: ids(&[Outcome::Fail, Outcome::Aborted]),
        },
    }
}

/// Serialises `statement` and signs `PAE(payloadType, payload)`.
pub fn seal(statement: &Statement, material: &SigningMaterial) -> Envelope {
    let payload = serde_json::to_vec(statement).expect("statements always serialise");
    let signature = material.key.sign(&pae(PAYLOAD_TYPE, &payload));
    Envelope {
        payload_type: PAYLOAD_TYPE.to_string(),
        payload: STANDARD.encode(&payload),
        signatures: vec![EnvelopeSignature {
            keyid: keys::key_id(&material.verifying_key()),
            sig: STANDARD.encode(signature.to_bytes()),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aborted_runs_are_failed_results() {
        assert_eq!(result_word(OverallStatus::Aborted), "FAILED");
        assert_eq!(result_word(OverallStatus::Warning), "WARNED");
        assert_eq!(result_word(OverallStatus::Success), "PASSED");
    }

    #[test]
    fn without_an_image_the_subject_is_the_transcript() {
        let statement = build_statement(
            &[],
            StatementInputs {
                status: OverallStatus::Success,
                image: None,
                transcript_sha256: "ab12",
                profiles: vec![("postgres", "cd34")],
                url: None,
            },
        );
        assert_eq!(statement.subject[0].name, UNKNOWN_IMAGE);
        assert_eq!(statement.subject[0].digest["sha256"], "ab12");
        let json = serde_json::to_value(&statement).unwrap();
        assert_eq!(json["_type"], STATEMENT_TYPE);
        assert_eq!(json["predicateType"], PREDICATE_TYPE);
        assert_eq!(
            json["predicate"]["configuration"][0]["digest"]["sha256"],
            "cd34"
        );
        assert!(json["predicate"].get("url").is_none());
    }
}
