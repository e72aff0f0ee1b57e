//! Ed25519 key files: `keygen` writes `PREFIX.key` (PKCS#8 PEM, created with
//! mode 0600) and `PREFIX.pub` (SubjectPublicKeyInfo PEM); loading refuses a
//! private key that group or others can read. Key ids are the hex SHA-256 of
//! the public key's SPKI DER, so `openssl pkey -pubin -outform DER | sha256sum`
//! reproduces them.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::UserError;

/// The key a run signs with, and whether it was generated for this run only
/// (an ephemeral key proves integrity, not origin; the transcript says so).
#[derive(Debug)]
pub struct SigningMaterial {
    pub key: SigningKey,
    pub ephemeral: bool,
}

impl SigningMaterial {
    /// A fresh key from the OS random generator, marked ephemeral.
    pub fn ephemeral() -> SigningMaterial {
        SigningMaterial {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
            ephemeral: true,
        }
    }

    /// The key in `path` (`--signing-key` / `SPINUP_SIGNING_KEY`).
    pub fn from_key_file(path: &Path) -> Result<SigningMaterial, UserError> {
        Ok(SigningMaterial {
            key: load_signing_key(path)?,
            ephemeral: false,
        })
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Hex SHA-256 of the public key's SPKI DER.
    pub fn key_id(&self) -> String {
        key_id(&self.verifying_key())
    }
}

/// The paths `write_keypair` created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairPaths {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
    pub key_id: String,
}

/// SubjectPublicKeyInfo DER of an ed25519 public key (44 bytes).
pub fn spki_der(key: &VerifyingKey) -> Vec<u8> {
    key.to_public_key_der()
        .expect("an ed25519 public key always encodes as SPKI")
        .into_vec()
}

/// Hex SHA-256 of the public key's SPKI DER.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(spki_der(key)))
}

/// `PREFIX` + `.key` / `.pub`, keeping any dots already in the prefix.
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Generates a key pair and writes `PREFIX.key` (0600, PKCS#8 PEM) and
/// `PREFIX.pub` (SPKI PEM). Refuses to overwrite either file.
pub fn write_keypair(prefix: &Path) -> Result<KeyPairPaths, UserError> {
    let private_path = with_suffix(prefix, ".key");
    let public_path = with_suffix(prefix, ".pub");
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(UserError::new("refusing to overwrite an existing key file")
                .in_file(path)
                .hint("choose another --out prefix, or move the old key pair away first"));
        }
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an ed25519 key always encodes as PKCS#8");
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("an ed25519 public key always encodes as SPKI");

    write_new_file(&private_path, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new_file(&public_path, public_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&private_path);
        return Err(e);
    }
    Ok(KeyPairPaths {
        private_key: private_path,
        public_key: public_path,
        key_id: key_id(&key.verifying_key()),
    })
}

/// Creates `path` (never overwriting) with `mode` from the start, writes and syncs it.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), UserError> {
    let fail = |e: std::io::Error| {
        UserError::new(format!("cannot write key file: {e}"))
            .in_file(path)
            .hint("make sure the directory exists and is writable, and the file does not exist yet")
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// Loads a PKCS#8 PEM ed25519 private key, refusing one readable by group or others.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, UserError> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        UserError::new(format!("cannot read the signing key: {e}"))
            .in_file(path)
            .hint("create a key pair with `spinup-smoke keygen --out PREFIX` and pass PREFIX.key")
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(UserError::new(format!(
            "the signing key is readable by group or others (mode {mode:03o})"
        ))
        .in_file(path)
        .hint(format!("chmod 600 {}", path.display())));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| UserError::new(format!("cannot read the signing key: {e}")).in_file(path))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|_| {
        UserError::new("not an ed25519 private key in PKCS#8 PEM form")
            .in_file(path)
            .hint("expected `-----BEGIN PRIVATE KEY-----` as written by `spinup-smoke keygen` or `openssl genpkey -algorithm ed25519`")
    })
}

/// Loads an SPKI PEM (or DER) ed25519 public key (`--pubkey`).
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, UserError> {
    let bytes = std::fs::read(path).map_err(|e| {
        UserError::new(format!("cannot read the public key: {e}"))
            .in_file(path)
            .hint("pass the PREFIX.pub written by `spinup-smoke keygen`")
    })?;
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => VerifyingKey::from_public_key_pem(text).ok(),
        _ => VerifyingKey::from_public_key_der(&bytes).ok(),
    };
    parsed.ok_or_else(|| {
        UserError::new("not an ed25519 public key in SubjectPublicKeyInfo PEM or DER form")
            .in_file(path)
            .hint("expected `-----BEGIN PUBLIC KEY-----` as written by `spinup-smoke keygen` or `openssl pkey -pubout`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_private_key_0600_and_a_loadable_pair() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ci-signing");
        let paths = write_keypair(&prefix).unwrap();
        assert_eq!(paths.private_key, dir.path().join("ci-signing.key"));
        let mode = std::fs::metadata(&paths.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let private = load_signing_key(&paths.private_key).unwrap();
        let public = load_public_key(&paths.public_key).unwrap();
        assert_eq!(private.verifying_key(), public);
        assert_eq!(paths.key_id, key_id(&public));
        assert_eq!(paths.key_id.len(), 64);
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("k");
        write_keypair(&prefix).unwrap();
        let before = std::fs::read(dir.path().join("k.key")).unwrap();
        let err = write_keypair(&prefix).unwrap_err();
        assert!(err.message.contains("refusing to overwrite"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("k.key")).unwrap(), before);
    }

    #[test]
    fn loading_rejects_a_world_readable_key_with_a_chmod_hint() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_keypair(&dir.path().join("k")).unwrap();
        std::fs::set_permissions(&paths.private_key, std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = load_signing_key(&paths.private_key).unwrap_err();
        assert!(err.message.contains("readable by group or others"), "{err}");
        assert!(err.hint.unwrap().starts_with("chmod 600"));
    }

    #[test]
    fn loading_rejects_missing_and_garbled_keys() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_signing_key(&dir.path().join("nope.key")).unwrap_err();
        assert!(
            missing.message.contains("cannot read the signing key"),
            "{missing}"
        );
        assert!(missing.hint.unwrap().contains("keygen"));

        let garbled = dir.path().join("bad.key");
        write_new_file(
            &garbled,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            0o600,
        )
        .unwrap();
        let err = load_signing_key(&garbled).unwrap_err();
        assert!(err.message.contains("PKCS#8"), "{err}");

        let bad_pub = dir.path().join("bad.pub");
        std::fs::write(&bad_pub, "hello").unwrap();
        assert!(load_public_key(&bad_pub)
            .unwrap_err()
            .message
            .contains("SubjectPublicKeyInfo"));
    }

    #[test]
    fn ephemeral_keys_differ_and_are_marked() {
        let a = SigningMaterial::ephemeral();
        let b = SigningMaterial::ephemeral();
        assert!(a.ephemeral);
        assert_ne!(a.key_id(), b.key_id());
    }
}
