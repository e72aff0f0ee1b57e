//! Signing: ed25519 over the RFC 8785 (JCS) canonical JSON of a document
//! without its `signature` member, and over the DSSE pre-authentication
//! encoding (PAE) for in-toto envelopes. `keys` owns key files, `verify`
//! checks signed files.

pub mod keys;
pub mod verify;

pub use keys::SigningMaterial;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};

/// The only signature algorithm written and accepted.
pub const ALGORITHM: &str = "ed25519";

/// The transcript's `signature` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Always "ed25519".
    pub algorithm: String,
    /// Hex SHA-256 of the public key's SubjectPublicKeyInfo DER.
    pub key_id: String,
    /// Base64 of the public key's SubjectPublicKeyInfo DER.
    pub public_key: String,
    /// Base64 of the 64-byte signature over the JCS form of the document without `signature`.
    pub value: String,
}

/// RFC 8785 canonical bytes of `document` (which must not hold `signature`).
pub fn canonical_bytes(document: &serde_json::Value) -> Vec<u8> {
    serde_jcs::to_vec(document).expect("a serde_json::Value always canonicalises")
}

/// Signs the canonical form of `document` (an object without `signature`).
pub fn sign_document(document: &serde_json::Value, material: &SigningMaterial) -> Signature {
    debug_assert!(document.get("signature").is_none());
    let signature = material.key.sign(&canonical_bytes(document));
    let verifying_key = material.verifying_key();
    Signature {
        algorithm: ALGORITHM.to_string(),
        key_id: keys::key_id(&verifying_key),
        public_key: STANDARD.encode(keys::spki_der(&verifying_key)),
        value: STANDARD.encode(signature.to_bytes()),
    }
}

/// DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body` (lengths in ASCII decimal).
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
    fn pae_matches_the_dsse_specification_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let doc = serde_json::json!({"b": 1, "a": [true, null, "x"], "c": {"z": 1.5, "y": 1e21}});
        assert_eq!(
            String::from_utf8(canonical_bytes(&doc)).unwrap(),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":1e+21,"z":1.5}}"#
        );
    }

    #[test]
    fn signature_verifies_over_the_canonical_bytes() {
        use ed25519_dalek::Verifier;
        let material = SigningMaterial::ephemeral();
        let doc = serde_json::json!({"z": "last", "a": "first"});
        let sig = sign_document(&doc, &material);
        assert_eq!(sig.algorithm, "ed25519");
        assert_eq!(sig.key_id, material.key_id());
        let raw = STANDARD.decode(&sig.value).unwrap();
        let raw: [u8; 64] = raw.try_into().unwrap();
        material
            .verifying_key()
            .verify(
                br#"{"a":"first","z":"last"}"#,
                &ed25519_dalek::Signature::from_bytes(&raw),
            )
            .unwrap();
    }
}
