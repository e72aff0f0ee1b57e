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
/// Both files appear whole or not at all, and never replace a file: each is
/// written to a temp file in the target directory (the key's created 0600,
/// so it is never readable by others, not even for an instant), fsynced,
/// then linked to its name, which fails if the name exists.
pub fn write_keypair(prefix: &Path) -> Result<(PathBuf, PathBuf, String), UserError> {
    let key_path = with_suffix(prefix, ".key");
    let pub_path = with_suffix(prefix, ".pub");
    for p in [&key_path, &pub_path] {
        // symlink_metadata: a dangling symlink is a name that exists too.
        if p.symlink_metadata().is_ok() {
            return Err(already_exists(p));
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
    publish_new(&[
        (&key_path, 0o600, private_pem.as_bytes()),
        (&pub_path, 0o644, public_pem.as_bytes()),
    ])?;
    Ok((key_path, pub_path, key_id(&key.verifying_key())))
}

fn already_exists(path: &Path) -> UserError {
    UserError::new(format!(
        "{} already exists; refusing to overwrite a key",
        path.display()
    ))
    .field("--out")
    .hint("choose another --out prefix, or remove the old key files first")
}

/// Creates every `(path, mode, bytes)` or none: temp files first (created
/// with `mode`, fsynced), then each linked to its name (never over an
/// existing file), the temp files removed and the directory fsynced. On a
/// failure, the names already linked are removed again.
fn publish_new(files: &[(&Path, u32, &[u8])]) -> Result<(), UserError> {
    let mut temps: Vec<PathBuf> = Vec::new();
    let mut linked: Vec<&Path> = Vec::new();
    let result = (|| {
        for (path, mode, bytes) in files {
            let tmp = temp_beside(path);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(*mode)
                .open(&tmp)
                .map_err(|e| {
                    UserError::new(format!("cannot create {}: {e}", tmp.display())).field("--out")
                })?;
            temps.push(tmp.clone());
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| UserError::new(format!("cannot write {}: {e}", tmp.display())))?;
        }
        for ((path, _, _), tmp) in files.iter().zip(&temps) {
            std::fs::hard_link(tmp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    already_exists(path)
                } else {
                    UserError::new(format!("cannot create {}: {e}", path.display())).field("--out")
                }
            })?;
            linked.push(path);
        }
        Ok(())
    })();
    if result.is_err() {
        for path in &linked {
            let _ = std::fs::remove_file(path);
        }
    }
    for tmp in &temps {
        let _ = std::fs::remove_file(tmp);
    }
    result?;
    let dir = files
        .first()
        .and_then(|(p, _, _)| p.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| UserError::new(format!("cannot sync {}: {e}", dir.display())))
}

/// `.NAME.tmp-PID` in the directory of `path`.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Loads a PKCS#8 PEM signing key; refuses one that group or others may
/// read or write (as ssh does), naming the file, its mode and the fix. The
/// mode is taken from the opened file, so it is that file's bytes that are read.
pub fn load_signing_key(path: &Path) -> Result<SigningMaterial, UserError> {
    let cannot_read = |e: std::io::Error| {
        UserError::new(format!("cannot read signing key {}: {e}", path.display()))
            .field("--key / SPINUP_SIGNING_KEY")
            .hint("create one with `spinup-smoke keygen --out PREFIX` and pass PREFIX.key")
    };
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    let mode = file.metadata().map_err(cannot_read)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        let how = if mode & 0o044 != 0 {
            "readable"
        } else {
            "writable"
        };
        return Err(UserError::new(format!(
            "signing key {} is {how} by group or others (mode {mode:04o}); a private key must be accessible by its owner only",
            path.display(),
        ))
        .field("--key / SPINUP_SIGNING_KEY")
        .hint(format!("chmod 600 {}", path.display())));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).map_err(|e| {
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
        assert_eq!(
            names_in(&dir.path().join("k")),
            ["signer.key", "signer.pub"],
            "no temp file left"
        );
        let again = write_keypair(&prefix).unwrap_err().to_string();
        assert!(again.contains("refusing to overwrite"), "{again}");
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A dangling symlink where the public key goes once left a private key
    /// without its public half: the pair is created whole or not at all.
    #[test]
    fn keygen_leaves_nothing_when_a_name_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("s.pub")).unwrap();
        let e = write_keypair(&dir.path().join("s"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.pub already exists; refusing to overwrite"),
            "{e}"
        );
        assert_eq!(names_in(dir.path()), ["s.pub"]);
    }

    #[test]
    fn a_failed_publish_removes_the_files_already_linked() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.key"), dir.path().join("b.pub"));
        std::fs::write(&b, "someone else's").unwrap();
        let e = publish_new(&[(&a, 0o600, b"one"), (&b, 0o644, b"two")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.pub already exists"), "{e}");
        assert_eq!(names_in(dir.path()), ["b.pub"], "no a.key, no temp file");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "someone else's");
        publish_new(&[(&a, 0o600, b"one")]).unwrap();
        assert_eq!(names_in(dir.path()), ["a.key", "b.pub"]);
    }

    #[test]
    fn bad_keys_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let (key, public, _) = write_keypair(&dir.path().join("s")).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_signing_key(&key).unwrap_err().to_string();
        assert!(
            e.contains("readable by group or others")
                && e.contains("(mode 0644)")
                && e.contains(&format!("hint: chmod 600 {}", key.display())),
            "{e}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o620)).unwrap();
        let e = load_signing_key(&key).unwrap_err().to_string();
        assert!(e.contains("writable by group or others (mode 0620)"), "{e}");
        std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_signing_key(&public).unwrap_err().to_string();
        assert!(e.contains("not an ed25519 PKCS#8"), "{e}");
        let e = load_signing_key(&dir.path().join("missing.key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("keygen"), "{e}");
    }
}
