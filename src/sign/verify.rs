//! `spinup-smoke verify`: checks a signed transcript or its DSSE envelope.
//! Every byte counts: the file must be exactly the layout spinup-smoke
//! writes (so no byte can change unnoticed), the signature must verify, the
//! key must be the pinned one (`--pubkey`), and with `--image` the image's
//! digest must be the one signed. A key found inside the file proves only
//! that the file is intact, not who signed it: without a pinned key the
//! answer is `NotPinned`, unless the caller chose to trust the embedded key.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature as EdSignature, VerifyingKey};

use super::{canonical_bytes, key_id, keys, pae, Signature, ALGORITHM};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a file spinup-smoke wrote, or changed so it no longer parses.
    Malformed(String),
    /// The signature does not match the content.
    BadSignature,
    /// Signed by another key than the pinned one.
    UnknownKey { expected: String, found: String },
    /// The image is not the one the transcript was made for.
    DigestMismatch { expected: String, found: String },
    /// Intact, but no key was pinned and the embedded one was not trusted:
    /// who signed it is not proven.
    NotPinned { key_id: String },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Malformed(why) => write!(f, "malformed: {why}"),
            VerifyError::BadSignature => {
                write!(f, "bad signature: the content was changed after signing")
            }
            VerifyError::UnknownKey { expected, found } => {
                write!(
                    f,
                    "unknown key: signed by key id {found}, but --pubkey is key id {expected}"
                )
            }
            VerifyError::DigestMismatch { expected, found } => {
                write!(f, "digest mismatch: the transcript is for image {expected}, the given image is {found}")
            }
            VerifyError::NotPinned { key_id } => write!(
                f,
                "signer not pinned: the file is intact under the public key it carries itself \
                 (key id {key_id}), which proves nothing about who signed it; pass --pubkey \
                 with the signer's public key, or --trust-embedded-key to accept an intact \
                 file of unproven origin"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Transcript,
    Attestation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub kind: FileKind,
    pub key_id: String,
    /// overall_status of a transcript, predicate result of an attestation.
    pub status: String,
    pub image_digest: Option<String>,
    pub warnings: Vec<String>,
}

impl VerifyReport {
    pub fn summary(&self) -> String {
        let kind = match self.kind {
            FileKind::Transcript => "transcript",
            FileKind::Attestation => "DSSE attestation",
        };
        let subject = match self.kind {
            FileKind::Transcript => "image",
            FileKind::Attestation => "subject",
        };
        format!(
            "{kind}, status {}, key id {}, {subject} {}",
            self.status,
            &self.key_id,
            self.image_digest.as_deref().unwrap_or("none")
        )
    }
}

/// The one layout spinup-smoke writes JSON in: pretty, sorted keys, final newline.
pub fn render(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Whose signature `verify_file` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer<'a> {
    /// Only the key of this SubjectPublicKeyInfo PEM file (`--pubkey`).
    Pinned(&'a Path),
    /// The public key the file carries (`--trust-embedded-key`): proves the
    /// file is intact, not who signed it; the report warns so.
    TrustEmbedded,
    /// No key given, none trusted: everything else is checked, then the
    /// answer is `VerifyError::NotPinned`.
    Unpinned,
}

/// The signer's key as `pin` uses it.
enum Pin {
    Key(VerifyingKey),
    TrustEmbedded,
    Unpinned,
}

pub fn verify_file(
    path: &Path,
    signer: Signer<'_>,
    image: Option<&Path>,
) -> Result<VerifyReport, VerifyError> {
    verify_and_read(path, signer, image).map(|(report, _)| report)
}

/// Verifies the file and returns its document as verified: read once, so
/// what the caller uses is exactly what the signature covered.
pub fn verify_and_read(
    path: &Path,
    signer: Signer<'_>,
    image: Option<&Path>,
) -> Result<(VerifyReport, serde_json::Value), VerifyError> {
    let bytes = std::fs::read(path)
        .map_err(|e| VerifyError::Malformed(format!("cannot read {}: {e}", path.display())))?;
    // An envelope borrows the key of the transcript beside it.
    let sibling = sibling_transcript(path)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    verify_bytes(&bytes, signer, image, sibling.as_ref())
}

/// `verify_and_read` for a file already in memory (a bundle's member):
/// `transcript` is the transcript an envelope borrows its key from when no
/// key is pinned.
pub fn verify_bytes(
    bytes: &[u8],
    signer: Signer<'_>,
    image: Option<&Path>,
    transcript: Option<&serde_json::Value>,
) -> Result<(VerifyReport, serde_json::Value), VerifyError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| VerifyError::Malformed("not UTF-8".into()))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| VerifyError::Malformed(format!("not JSON: {e}")))?;
    if render(&value) != text {
        return Err(VerifyError::Malformed(
            "not in the layout spinup-smoke writes (whitespace, escapes or key order changed)"
                .into(),
        ));
    }
    let pinned = match signer {
        Signer::Pinned(p) => Pin::Key(keys::load_public_key(p).map_err(VerifyError::Malformed)?),
        Signer::TrustEmbedded => Pin::TrustEmbedded,
        Signer::Unpinned => Pin::Unpinned,
    };
    let unpinned = matches!(pinned, Pin::Unpinned);
    let image_digest = match image {
        Some(img) => Some(crate::digest::sha256_file(img).map_err(|e| {
            VerifyError::Malformed(format!("cannot read image {}: {e}", img.display()))
        })?),
        None => None,
    };
    let report = if value.get("payloadType").is_some() {
        verify_attestation(&value, pinned, image_digest, transcript)?
    } else {
        verify_transcript(&value, pinned, image_digest)?
    };
    if unpinned {
        return Err(VerifyError::NotPinned {
            key_id: report.key_id,
        });
    }
    Ok((report, value))
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| VerifyError::Malformed(format!("{what} is not base64: {e}")))
}

fn decode_signature(text: &str) -> Result<EdSignature, VerifyError> {
    let bytes = b64(text, "signature")?;
    EdSignature::from_slice(&bytes)
        .map_err(|_| VerifyError::Malformed("signature is not 64 bytes".into()))
}

fn pin(
    pinned: Pin,
    signer_key_id: &str,
    embedded: Option<VerifyingKey>,
    warnings: &mut Vec<String>,
) -> Result<VerifyingKey, VerifyError> {
    match (pinned, embedded) {
        (Pin::Key(pinned), _) => {
            let expected = key_id(&pinned);
            if expected != signer_key_id {
                return Err(VerifyError::UnknownKey {
                    expected,
                    found: signer_key_id.to_string(),
                });
            }
            Ok(pinned)
        }
        (Pin::TrustEmbedded, Some(embedded)) => {
            warnings.push(
                "key not pinned (--trust-embedded-key): verified with the public key inside the file, which proves the file is intact, not who signed it; pass --pubkey to prove origin".into(),
            );
            Ok(embedded)
        }
        // Checked with the embedded key; `verify_file` then answers NotPinned.
        (Pin::Unpinned, Some(embedded)) => Ok(embedded),
        (Pin::TrustEmbedded | Pin::Unpinned, None) => Err(VerifyError::Malformed(
            "no public key: pass --pubkey (or keep the transcript beside its DSSE envelope)".into(),
        )),
    }
}

fn compare_digest(signed: Option<&str>, actual: Option<String>) -> Result<(), VerifyError> {
    if let Some(actual) = actual {
        let expected = signed.unwrap_or("none").to_string();
        if expected != actual {
            return Err(VerifyError::DigestMismatch {
                expected,
                found: actual,
            });
        }
    }
    Ok(())
}

fn verify_transcript(
    value: &serde_json::Value,
    pinned: Pin,
    image_digest: Option<String>,
) -> Result<VerifyReport, VerifyError> {
    let sig_value = value
        .get("signature")
        .ok_or_else(|| VerifyError::Malformed("no `signature` field".into()))?;
    let sig: Signature = serde_json::from_value(sig_value.clone()).map_err(|e| {
        VerifyError::Malformed(format!("`signature` is not a spinup-smoke signature: {e}"))
    })?;
    if sig.algorithm != ALGORITHM {
        return Err(VerifyError::Malformed(format!(
            "unsupported algorithm `{}`",
            sig.algorithm
        )));
    }
    let der = b64(&sig.public_key, "public_key")?;
    let embedded = VerifyingKey::from_public_key_der(&der)
        .map_err(|_| VerifyError::Malformed("public_key is not an ed25519 key".into()))?;
    if key_id(&embedded) != sig.key_id {
        return Err(VerifyError::Malformed(
            "key_id does not match the embedded public key".into(),
        ));
    }
    let mut warnings = Vec::new();
    let key = pin(pinned, &sig.key_id, Some(embedded), &mut warnings)?;
    let signature = decode_signature(&sig.value)?;
    let bytes = canonical_bytes(value).map_err(VerifyError::Malformed)?;
    key.verify_strict(&bytes, &signature)
        .map_err(|_| VerifyError::BadSignature)?;
    if value.pointer("/signing/ephemeral") == Some(&serde_json::Value::Bool(true)) {
        warnings.push(
            "signed with an EPHEMERAL key: this proves the file is intact, not who made it".into(),
        );
    }
    let signed_digest = value.get("image_digest").and_then(|d| d.as_str());
    compare_digest(signed_digest, image_digest)?;
    Ok(VerifyReport {
        kind: FileKind::Transcript,
        key_id: sig.key_id,
        status: value
            .get("overall_status")
            .and_then(|s| s.as_str())
            .unwrap_or("?")
            .to_string(),
        image_digest: signed_digest.map(str::to_string),
        warnings,
    })
}

/// `boot_transcript_X.intoto.json` -> `boot_transcript_X.json`.
fn sibling_transcript(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".intoto.json")?;
    Some(path.with_file_name(format!("{stem}.json")))
}

fn verify_attestation(
    envelope: &serde_json::Value,
    pinned: Pin,
    image_digest: Option<String>,
    sibling: Option<&serde_json::Value>,
) -> Result<VerifyReport, VerifyError> {
    let field = |name: &str| {
        envelope
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| VerifyError::Malformed(format!("envelope has no `{name}`")))
    };
    let payload_type = field("payloadType")?;
    let payload = b64(field("payload")?, "payload")?;
    let signatures = envelope
        .get("signatures")
        .and_then(|s| s.as_array())
        .filter(|s| s.len() == 1)
        .ok_or_else(|| {
            VerifyError::Malformed("envelope must carry exactly one signature".into())
        })?;
    let signer_key_id = signatures[0]
        .get("keyid")
        .and_then(|k| k.as_str())
        .ok_or_else(|| VerifyError::Malformed("signature has no keyid".into()))?
        .to_string();
    let signature = decode_signature(
        signatures[0]
            .get("sig")
            .and_then(|s| s.as_str())
            .ok_or_else(|| VerifyError::Malformed("signature has no sig".into()))?,
    )?;
    // Without --pubkey, the key embedded in the transcript beside it is used.
    let embedded = sibling
        .and_then(|t| {
            t.pointer("/signature/public_key")
                .and_then(|k| k.as_str())
                .map(str::to_string)
        })
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
        .and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
        .filter(|k| key_id(k) == signer_key_id);
    let mut warnings = Vec::new();
    let key = pin(pinned, &signer_key_id, embedded, &mut warnings)?;
    key.verify_strict(&pae(payload_type, &payload), &signature)
        .map_err(|_| VerifyError::BadSignature)?;
    let sibling_ephemeral = sibling.and_then(|t| t.pointer("/signing/ephemeral"))
        == Some(&serde_json::Value::Bool(true));
    if sibling_ephemeral
        && sibling
            .and_then(|t| t.pointer("/signature/key_id"))
            .and_then(|k| k.as_str())
            == Some(signer_key_id.as_str())
    {
        warnings.push("signed with an EPHEMERAL key (says the transcript beside it): this proves the file is intact, not who made it".into());
    }
    let statement = parse_statement(&payload)?;
    let subject_digest = statement
        .pointer("/subject/0/digest/sha256")
        .and_then(|d| d.as_str())
        .map(|d| format!("sha256:{d}"));
    compare_digest(subject_digest.as_deref(), image_digest)?;
    Ok(VerifyReport {
        kind: FileKind::Attestation,
        key_id: signer_key_id,
        status: statement
            .pointer("/predicate/result")
            .and_then(|r| r.as_str())
            .unwrap_or("?")
            .to_string(),
        image_digest: subject_digest,
        warnings,
    })
}

fn parse_statement(payload: &[u8]) -> Result<serde_json::Value, VerifyError> {
    serde_json::from_slice(payload)
        .map_err(|e| VerifyError::Malformed(format!("payload is not a JSON statement: {e}")))
}

/// The in-toto statement inside a DSSE envelope; call it on an envelope
/// that verified, so the statement is the one the signature covers.
pub fn envelope_statement(envelope: &serde_json::Value) -> Result<serde_json::Value, VerifyError> {
    let payload = envelope
        .get("payload")
        .and_then(|p| p.as_str())
        .ok_or_else(|| VerifyError::Malformed("envelope has no `payload`".into()))?;
    parse_statement(&b64(payload, "payload")?)
}
