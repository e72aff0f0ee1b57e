//! Streaming SHA-256 digests of files (VM images are many GiB): one reused
//! buffer, large sequential reads, never the whole file in memory. `sha2`
//! picks the SHA-NI instructions at run time when the CPU has them.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Size of each read: large enough to amortise syscalls, small enough to stay
/// in the L2/L3 cache while hashing.
const READ_BUFFER_BYTES: usize = 2 * 1024 * 1024;

/// The digest of the file at `path` as `sha256:<64 hex digits>`.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let file = File::open(path)?;
    advise_sequential(&file);
    let raw = sha256_reader(file)?;
    Ok(format!("sha256:{}", hex::encode(raw)))
}

/// The raw SHA-256 of everything `reader` yields, read in large chunks.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

/// `sha256:<hex>` of a byte string.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest (the whole string when it has no prefix).
pub fn hex_part(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Tells the kernel we read front to back so it reads ahead aggressively.
fn advise_sequential(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: posix_fadvise only reads the descriptor, which `file` keeps open.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha256_bytes(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_bytes(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn file_digest_spans_several_buffers_and_matches_one_shot_hash() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..(READ_BUFFER_BYTES * 2 + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        file.write_all(&data).unwrap();
        file.flush().unwrap();
        assert_eq!(sha256_file(file.path()).unwrap(), sha256_bytes(&data));
    }

    #[test]
    fn missing_file_is_an_error_not_a_panic() {
        let err = sha256_file(Path::new("/nonexistent/image.qcow2")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn hex_part_strips_the_prefix() {
        assert_eq!(hex_part("sha256:ab"), "ab");
        assert_eq!(hex_part("ab"), "ab");
    }
}
