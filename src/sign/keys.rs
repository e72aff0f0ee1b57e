//! Key files: PREFIX.key (PKCS#8 PEM, created 0600) and PREFIX.pub
//! (SubjectPublicKeyInfo PEM), and loading them with clear errors.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use super::{key_id, SigningMaterial};
use crate::error::UserError;

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a new key pair; returns (key path, public key path, key id).
pub fn write_keypair(prefix: &Path) -> Result<(PathBuf, PathBuf, String), UserError> {
    let key_path = with_suffix(prefix, ".key");
    let pub_path = with_suffix(prefix, ".pub");
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(UserError::new(format!(
                "{} already exists; refusing to overwrite a key",
                p.display()
            ))
            .field("--out")
            .hint("choose another --out prefix, or remove the old key files first"));
        }
    }
    if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            UserError::new(format!("cannot create {}: {e}", dir.display())).field("--out")
        })?;
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private_pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| UserError::new(format!("cannot encode the key: {e}")))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| UserError::new(format!("cannot encode the public key: {e}")))?;
    let write = |path: &Path, mode: u32, bytes: &[u8]| -> Result<(), UserError> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| {
                UserError::new(format!("cannot create {}: {e}", path.display())).field("--out")
            })?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| UserError::new(format!("cannot write {}: {e}", path.display())))
    };
    write(&key_path, 0o600, private_pem.as_bytes())?;
    write(&pub_path, 0o644, public_pem.as_bytes())?;
    Ok((key_path, pub_path, key_id(&key.verifying_key())))
}

/// Loads a PKCS#8 PEM signing key; refuses one readable by group or others.
pub fn load_signing_key(path: &Path) -> Result<SigningMaterial, UserError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        UserError::new(format!("cannot read signing key {}: {e}", path.display()))
            .field("--key / SPINUP_SIGNING_KEY")
            .hint("create one with `spinup-smoke keygen --out PREFIX` and pass PREFIX.key")
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(UserError::new(format!(
            "signing key {} is readable by group or others (mode {:04o})",
            path.display(),
            meta.permissions().mode() & 0o777
        ))
        .field("--key / SPINUP_SIGNING_KEY")
        .hint(format!("chmod 600 {}", path.display())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        UserError::new(format!("cannot read signing key {}: {e}", path.display()))
            .field("--key / SPINUP_SIGNING_KEY")
    })?;
    let key = SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        UserError::new(format!(
            "{} is not an ed25519 PKCS#8 PEM private key: {e}",
            path.display()
        ))
        .field("--key / SPINUP_SIGNING_KEY")
        .hint("pass the .key file written by `spinup-smoke keygen` (not the .pub)")
    })?;
    Ok(SigningMaterial {
        key,
        ephemeral: false,
    })
}

/// Loads a SubjectPublicKeyInfo PEM public key.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read public key {}: {e}", path.display()))?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|e| format!("{} is not an ed25519 public key PEM: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_0600_key_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("k/signer");
        let (key, public, id) = write_keypair(&prefix).unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&key).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"));
        let loaded = load_signing_key(&key).unwrap();
        assert!(!loaded.ephemeral);
        assert_eq!(loaded.key_id(), id);
        assert_eq!(key_id(&load_public_key(&public).unwrap()), id);
        let again = write_keypair(&prefix).unwrap_err().to_string();
        assert!(again.contains("refusing to overwrite"), "{again}");
    }

    #[test]
    fn bad_keys_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let (key, public, _) = write_keypair(&dir.path().join("s")).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_signing_key(&key).unwrap_err().to_string();
        assert!(
            e.contains("readable by group or others") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_signing_key(&public).unwrap_err().to_string();
        assert!(e.contains("not an ed25519 PKCS#8"), "{e}");
        let e = load_signing_key(&dir.path().join("missing.key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("keygen"), "{e}");
    }
}
