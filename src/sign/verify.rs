//! `spinup-smoke verify`: checks a signed transcript or a DSSE envelope:
//! the exact byte layout, the signature, the key id (against `--pubkey`
//! when given), the ephemeral-key marker, and with `--image` the image's
//! streamed SHA-256 against the digest the file records.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::VerifyingKey;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::UserError;
use crate::report::dsse::{self, Envelope, Statement};
use crate::report::render_json;
use crate::sign::{canonical_bytes, keys, pae, Signature, ALGORITHM};

/// Which kind of file was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Transcript,
    DsseEnvelope,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub kind: FileKind,
    /// Hex SHA-256 of the signer's SPKI DER.
    pub key_id: String,
    /// True when the key came from `--pubkey`, not from the file itself.
    pub key_pinned: bool,
    /// The transcript's `signing.ephemeral` (None for a DSSE envelope).
    pub ephemeral: Option<bool>,
    /// `overall_status` of a transcript, `predicate.result` of an envelope.
    pub result: String,
    /// The digest the file records (`sha256:<hex>`), when it records one.
    pub recorded_digest: Option<String>,
    /// True when `--image` was given and its digest matched.
    pub image_checked: bool,
    /// Things that are valid but weaker than they could be.
    pub warnings: Vec<String>,
}

/// Why a file did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a well-formed signed transcript or envelope (or its bytes were edited).
    Malformed(String),
    /// The signature does not match the content.
    BadSignature,
    /// Signed by another key than the one expected.
    UnknownKey { expected: String, found: String },
    /// The image's digest differs from the recorded one.
    DigestMismatch { expected: String, found: String },
    /// A missing or unreadable input (`--pubkey`, `--image`, the file itself).
    Usage(UserError),
}

impl VerifyError {
    /// Exit code: 2 for usage problems, 1 for files that do not verify.
    pub fn exit_code(&self) -> i32 {
        match self {
            VerifyError::Usage(_) => crate::exit::USAGE,
            _ => crate::exit::CHECK_FAILED,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Malformed(reason) => write!(f, "malformed: {reason}"),
            VerifyError::BadSignature => write!(
                f,
                "bad signature: the content was changed after signing, or signed by another key"
            ),
            VerifyError::UnknownKey { expected, found } => write!(
                f,
                "unknown key: expected key id {expected}, found {found} (check --pubkey)"
            ),
            VerifyError::DigestMismatch { expected, found } => write!(
                f,
                "digest mismatch: the transcript records {expected}, the image is {found} (this is not the image that was tested)"
            ),
            VerifyError::Usage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for VerifyError {}

fn malformed(reason: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(reason.into())
}

/// Verifies the transcript or DSSE envelope at `path`.
pub fn verify_file(
    path: &Path,
    pubkey: Option<&Path>,
    image: Option<&Path>,
) -> Result<VerifyReport, VerifyError> {
    let bytes = std::fs::read(path).map_err(|e| {
        VerifyError::Usage(
            UserError::new(format!("cannot read the file to verify: {e}"))
                .in_file(path)
                .hint("pass a boot_transcript_*.json or boot_transcript_*.intoto.json"),
        )
    })?;
    let pinned = pubkey
        .map(keys::load_public_key)
        .transpose()
        .map_err(VerifyError::Usage)?;
    let mut report = verify_bytes(&bytes, pinned.as_ref(), Some(path))?;
    if let Some(image) = image {
        let found = crate::digest::sha256_file(image).map_err(|e| {
            VerifyError::Usage(
                UserError::new(format!("cannot read the image to digest it: {e}"))
                    .in_file(image)
                    .hint("pass --image with the path of the tested qcow2/raw image"),
            )
        })?;
        let expected = report
            .recorded_digest
            .clone()
            .unwrap_or_else(|| "no image digest (the run had no --image)".to_string());
        if expected != found {
            return Err(VerifyError::DigestMismatch { expected, found });
        }
        report.image_checked = true;
    }
    Ok(report)
}

/// Verifies file contents. `path` (when known) lets an unpinned DSSE envelope
/// borrow the public key of the transcript beside it.
pub fn verify_bytes(
    bytes: &[u8],
    pinned: Option<&VerifyingKey>,
    path: Option<&Path>,
) -> Result<VerifyReport, VerifyError> {
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("the file is not UTF-8"))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
    if render_json(&value) != bytes {
        return Err(malformed(
            "the file's bytes differ from the layout spinup-smoke writes (it was reformatted or edited)",
        ));
    }
    if value.get("payloadType").is_some() {
        verify_envelope(value, pinned, path)
    } else if value.get("signature").is_some() {
        verify_transcript(value, pinned)
    } else {
        Err(malformed(
            "neither a signed transcript (no `signature`) nor a DSSE envelope (no `payloadType`)",
        ))
    }
}

fn decode_signature(b64: &str) -> Result<ed25519_dalek::Signature, VerifyError> {
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| malformed("the signature is not valid base64"))?;
    let raw: [u8; 64] = raw
        .try_into()
        .map_err(|_| malformed("an ed25519 signature has 64 bytes"))?;
    Ok(ed25519_dalek::Signature::from_bytes(&raw))
}

/// Chooses the verifying key: the pinned one (whose id must match), else the embedded one.
fn choose_key(
    pinned: Option<&VerifyingKey>,
    embedded: Option<VerifyingKey>,
    signed_key_id: &str,
    warnings: &mut Vec<String>,
    where_embedded: &str,
) -> Result<VerifyingKey, VerifyError> {
    if let Some(pinned) = pinned {
        let expected = keys::key_id(pinned);
        if expected != signed_key_id {
            return Err(VerifyError::UnknownKey {
                expected,
                found: signed_key_id.to_string(),
            });
        }
        return Ok(*pinned);
    }
    match embedded {
        Some(key) => {
            warnings.push(format!(
                "key not pinned: verified with the public key embedded in {where_embedded}; pass --pubkey to prove who signed it"
            ));
            Ok(key)
        }
        None => Err(VerifyError::Usage(
            UserError::new(
                "a DSSE envelope carries no public key and no transcript was found beside it",
            )
            .hint("pass --pubkey PREFIX.pub (the key the run signed with)"),
        )),
    }
}

fn verify_transcript(
    mut document: serde_json::Value,
    pinned: Option<&VerifyingKey>,
) -> Result<VerifyReport, VerifyError> {
    let object = document
        .as_object_mut()
        .ok_or_else(|| malformed("a transcript is a JSON object"))?;
    let signature_value = object
        .remove("signature")
        .ok_or_else(|| malformed("the transcript has no `signature`"))?;
    let signature: Signature = serde_json::from_value(signature_value).map_err(|e| {
        malformed(format!(
            "`signature` is not {{algorithm, key_id, public_key, value}}: {e}"
        ))
    })?;
    if signature.algorithm != ALGORITHM {
        return Err(malformed(format!(
            "unsupported signature algorithm `{}` (only ed25519)",
            signature.algorithm
        )));
    }
    let spki = STANDARD
        .decode(&signature.public_key)
        .map_err(|_| malformed("`signature.public_key` is not valid base64"))?;
    let embedded = VerifyingKey::from_public_key_der(&spki)
        .map_err(|_| malformed("`signature.public_key` is not an ed25519 SubjectPublicKeyInfo"))?;
    let embedded_id = keys::key_id(&embedded);
    if embedded_id != signature.key_id {
        return Err(VerifyError::UnknownKey {
            expected: embedded_id,
            found: signature.key_id,
        });
    }
    let mut warnings = Vec::new();
    let key = choose_key(
        pinned,
        Some(embedded),
        &signature.key_id,
        &mut warnings,
        "the transcript",
    )?;
    let raw = decode_signature(&signature.value)?;
    key.verify_strict(&canonical_bytes(&document), &raw)
        .map_err(|_| VerifyError::BadSignature)?;

    let ephemeral = document
        .pointer("/signing/ephemeral")
        .and_then(|v| v.as_bool());
    if ephemeral == Some(true) {
        warnings.push(
            "signed with an ephemeral key generated for this run: the signature proves the content is intact, not who produced it".to_string(),
        );
    }
    let result = document
        .get("overall_status")
        .and_then(|v| v.as_str())
        .ok_or_else(|| malformed("the transcript has no `overall_status`"))?
        .to_string();
    let recorded_digest = document
        .get("image_digest")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Ok(VerifyReport {
        kind: FileKind::Transcript,
        key_id: signature.key_id,
        key_pinned: pinned.is_some(),
        ephemeral,
        result,
        recorded_digest,
        image_checked: false,
        warnings,
    })
}

/// `boot_transcript_X.intoto.json` -> `boot_transcript_X.json`.
fn sibling_transcript(envelope_path: &Path) -> Option<PathBuf> {
    let name = envelope_path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".intoto.json")?;
    Some(envelope_path.with_file_name(format!("{stem}.json")))
}

/// The public key of the transcript beside an envelope, when it has a well-formed one.
fn sibling_public_key(envelope_path: Option<&Path>) -> Option<VerifyingKey> {
    let text = std::fs::read_to_string(sibling_transcript(envelope_path?)?).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let spki = STANDARD
        .decode(value.pointer("/signature/public_key")?.as_str()?)
        .ok()?;
    VerifyingKey::from_public_key_der(&spki).ok()
}

fn verify_envelope(
    value: serde_json::Value,
    pinned: Option<&VerifyingKey>,
    path: Option<&Path>,
) -> Result<VerifyReport, VerifyError> {
    let envelope: Envelope = serde_json::from_value(value).map_err(|e| {
        malformed(format!(
            "not a DSSE envelope {{payloadType, payload, signatures}}: {e}"
        ))
    })?;
    if envelope.payload_type != dsse::PAYLOAD_TYPE {
        return Err(malformed(format!(
            "payloadType is `{}`, expected `{}`",
            envelope.payload_type,
            dsse::PAYLOAD_TYPE
        )));
    }
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| malformed("the payload is not valid base64"))?;
    let [signature] = envelope.signatures.as_slice() else {
        return Err(malformed(format!(
            "expected exactly one signature, found {}",
            envelope.signatures.len()
        )));
    };
    let mut warnings = Vec::new();
    let embedded = if pinned.is_none() {
        sibling_public_key(path)
    } else {
        None
    };
    if let Some(embedded) = &embedded {
        let embedded_id = keys::key_id(embedded);
        if embedded_id != signature.keyid {
            return Err(VerifyError::UnknownKey {
                expected: embedded_id,
                found: signature.keyid.clone(),
            });
        }
    }
    let key = choose_key(
        pinned,
        embedded,
        &signature.keyid,
        &mut warnings,
        "the transcript beside the envelope",
    )?;
    let raw = decode_signature(&signature.sig)?;
    key.verify_strict(&pae(&envelope.payload_type, &payload), &raw)
        .map_err(|_| VerifyError::BadSignature)?;

    let statement: Statement = serde_json::from_slice(&payload)
        .map_err(|e| malformed(format!("the payload is not an in-toto statement: {e}")))?;
    if statement.statement_type != dsse::STATEMENT_TYPE
        || statement.predicate_type != dsse::PREDICATE_TYPE
    {
        return Err(malformed(format!(
            "unexpected statement type `{}` / predicate type `{}`",
            statement.statement_type, statement.predicate_type
        )));
    }
    let recorded_digest = statement
        .subject
        .iter()
        .find(|s| s.name != dsse::UNKNOWN_IMAGE)
        .and_then(|s| s.digest.get("sha256"))
        .map(|hex| format!("sha256:{hex}"));
    Ok(VerifyReport {
        kind: FileKind::DsseEnvelope,
        key_id: signature.keyid.clone(),
        key_pinned: pinned.is_some(),
        ephemeral: None,
        result: statement.predicate.result,
        recorded_digest,
        image_checked: false,
        warnings,
    })
}
