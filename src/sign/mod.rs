//! Signing: ed25519 over the RFC 8785 (JCS) canonical JSON of a transcript
//! without its `signature` field, and over the DSSE pre-authentication
//! encoding for the attestation. Keys are PKCS#8 / SubjectPublicKeyInfo PEM.

pub mod keys;
pub mod verify;

use base64::Engine;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "ed25519";

/// The key a run signs with, and whether it was made up for this run.
pub struct SigningMaterial {
    pub key: SigningKey,
    /// No key was given: a fresh key signed, which proves integrity only.
    pub ephemeral: bool,
}

/// Shows the key id, never the key.
impl std::fmt::Debug for SigningMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningMaterial")
            .field("key_id", &self.key_id())
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

impl SigningMaterial {
    pub fn ephemeral() -> SigningMaterial {
        SigningMaterial {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
            ephemeral: true,
        }
    }
    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }
}

/// `signature` of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub algorithm: String,
    /// hex sha256 of the public key's SubjectPublicKeyInfo DER.
    pub key_id: String,
    /// base64 SubjectPublicKeyInfo DER (lets anyone check; pin it with `--pubkey`).
    pub public_key: String,
    /// base64 ed25519 signature over the JCS canonical form without `signature`.
    pub value: String,
}

pub fn public_key_der(key: &VerifyingKey) -> Vec<u8> {
    key.to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_else(|_| key.as_bytes().to_vec())
}

/// hex sha256 of the SubjectPublicKeyInfo DER.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(public_key_der(key)))
}

/// The canonical (RFC 8785) bytes of `document` without its `signature`.
pub fn canonical_bytes(document: &serde_json::Value) -> Result<Vec<u8>, String> {
    let mut unsigned = document.clone();
    if let Some(map) = unsigned.as_object_mut() {
        map.remove("signature");
    } else {
        return Err("the document is not a JSON object".into());
    }
    serde_jcs::to_vec(&unsigned).map_err(|e| format!("cannot canonicalize: {e}"))
}

/// Signs `document` in place: sets `signature`.
pub fn sign_document(
    document: &mut serde_json::Value,
    material: &SigningMaterial,
) -> Result<(), String> {
    let bytes = canonical_bytes(document)?;
    let signature = material.key.sign(&bytes);
    let b64 = base64::engine::general_purpose::STANDARD;
    let verifying = material.key.verifying_key();
    let sig = Signature {
        algorithm: ALGORITHM.into(),
        key_id: key_id(&verifying),
        public_key: b64.encode(public_key_der(&verifying)),
        value: b64.encode(signature.to_bytes()),
    };
    let value = serde_json::to_value(sig).map_err(|e| e.to_string())?;
    document
        .as_object_mut()
        .ok_or("the document is not a JSON object")?
        .insert("signature".into(), value);
    Ok(())
}

/// DSSE pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn canonical_form_ignores_key_order_and_the_signature() {
        let a = serde_json::json!({"b": 1, "a": [1, 2], "signature": {"x": 1}});
        let b = serde_json::json!({"a": [1, 2], "b": 1});
        assert_eq!(canonical_bytes(&a).unwrap(), canonical_bytes(&b).unwrap());
        assert_eq!(
            canonical_bytes(&b).unwrap(),
            br#"{"a":[1,2],"b":1}"#.to_vec()
        );
        assert!(canonical_bytes(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn key_ids_are_stable_hex() {
        let m = SigningMaterial::ephemeral();
        assert_eq!(m.key_id().len(), 64);
        assert_eq!(m.key_id(), key_id(&m.key.verifying_key()));
    }
}
