//! Host keys, pure: the SHA256 fingerprint of a public key as `ssh-keygen
//! -lf` prints it, key lines of `ssh-keyscan` output and known_hosts files,
//! the name under which ssh looks a host up, and the mismatch message that
//! shows both fingerprints.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

/// A public host key read from a key line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`...
    pub key_type: String,
    /// `SHA256:` and the unpadded base64 of the key blob's SHA-256.
    pub fingerprint: String,
    /// The key as a known_hosts line would write it (`type base64`).
    pub key: String,
}

/// `SHA256:<base64, no padding>` of a key blob (the decoded base64 field).
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// Checks a pinned fingerprint: `SHA256:` then 43 base64 characters (32
/// bytes). The error says what is wrong.
pub fn check_pin(pin: &str) -> Result<(), String> {
    let Some(b64) = pin.strip_prefix("SHA256:") else {
        return Err(format!(
            "`{pin}` is not a SHA256 fingerprint (it must start with `SHA256:`; MD5 ones are not accepted)"
        ));
    };
    match STANDARD_NO_PAD.decode(b64) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(format!(
            "`{pin}` is not a SHA256 fingerprint (`SHA256:` and 43 base64 characters)"
        )),
    }
}

/// The name ssh looks `address:port` up under in known_hosts: the bare
/// address on port 22, else `[address]:port`.
pub fn known_hosts_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// Parses one key line (`hosts type base64 [comment]`, as ssh-keyscan and
/// known_hosts write them): the host field and the key. Comments, markers
/// (`@revoked`, `@cert-authority`) and malformed lines are `None`.
pub fn parse_key_line(line: &str) -> Option<(String, HostKey)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let hosts = fields.next()?;
    let key_type = fields.next()?;
    let b64 = fields.next()?;
    let blob = STANDARD.decode(b64).ok()?;
    Some((
        hosts.to_string(),
        HostKey {
            key_type: key_type.to_string(),
            fingerprint: fingerprint(&blob),
            key: format!("{key_type} {b64}"),
        },
    ))
}

/// Every key of `text` (ssh-keyscan's output), whatever host it names.
pub fn keys_in(text: &str) -> Vec<HostKey> {
    text.lines()
        .filter_map(parse_key_line)
        .map(|(_, k)| k)
        .collect()
}

/// The keys a known_hosts text holds for `name` (`known_hosts_name`):
/// plain, comma-separated host patterns only (hashed and wildcard entries
/// are not matched here; ssh itself still honours them).
pub fn keys_for(text: &str, name: &str) -> Vec<HostKey> {
    text.lines()
        .filter_map(parse_key_line)
        .filter(|(hosts, _)| hosts.split(',').any(|h| h == name))
        .map(|(_, k)| k)
        .collect()
}

/// "SHA256:AAA (ssh-ed25519), SHA256:BBB (ssh-rsa)", or "none".
pub fn list(keys: &[HostKey]) -> String {
    if keys.is_empty() {
        return "none".into();
    }
    keys.iter()
        .map(|k| format!("{} ({})", k.fingerprint, k.key_type))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The message of a host key that does not match its pin.
pub fn mismatch(expected: &str, endpoint: &str, presented: &[HostKey]) -> String {
    format!(
        "host key mismatch: expected {expected}, {endpoint} presented {}",
        list(presented)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 host key and the fingerprint `ssh-keygen -lf` prints for it.
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHB0+eTrv1sT1N90Fra56a4FWXUVWrSjHRcV3Xy5w+/v";
    const FP: &str = "SHA256:94yiotacdD7G+JCYpJrLurqnqIciJ+0LlKg9zIRQk6k";

    #[test]
    fn fingerprints_match_ssh_keygen() {
        let (hosts, key) = parse_key_line(&format!("p6.example.org {KEY} root@p6")).unwrap();
        assert_eq!(hosts, "p6.example.org");
        assert_eq!(key.key_type, "ssh-ed25519");
        assert_eq!(key.fingerprint, FP);
        assert_eq!(key.key, KEY);
    }

    #[test]
    fn key_lines() {
        let check = |line: &str, want: Option<&str>| {
            assert_eq!(
                parse_key_line(line).map(|(h, _)| h).as_deref(),
                want,
                "{line}"
            )
        };
        check(&format!("h {KEY}"), Some("h"));
        check(
            &format!("  [h]:2222,10.0.0.1 {KEY}  "),
            Some("[h]:2222,10.0.0.1"),
        );
        check("# h ssh-ed25519 AAAA", None);
        check(&format!("@revoked h {KEY}"), None);
        check("h ssh-ed25519", None);
        check("h ssh-ed25519 !!notbase64!!", None);
        check("", None);
    }

    #[test]
    fn known_hosts_lookup_by_name_and_port() {
        assert_eq!(known_hosts_name("p6", 22), "p6");
        assert_eq!(known_hosts_name("10.0.0.1", 2222), "[10.0.0.1]:2222");
        let text = format!("# comment\np6,10.0.0.1 {KEY}\n[p6]:2222 {KEY}\nother {KEY}\n");
        assert_eq!(keys_for(&text, "p6").len(), 1);
        assert_eq!(keys_for(&text, "10.0.0.1").len(), 1);
        assert_eq!(keys_for(&text, "[p6]:2222").len(), 1);
        assert!(keys_for(&text, "p7").is_empty());
        assert_eq!(keys_in(&text).len(), 3);
    }

    #[test]
    fn pins() {
        let check = |pin: &str, ok: bool| assert_eq!(check_pin(pin).is_ok(), ok, "{pin}");
        check(FP, true);
        check("SHA256:short", false);
        check("MD5:aa:bb", false);
        check(&FP.replace("SHA256:", ""), false);
        check(&format!("{FP}="), false);
    }

    #[test]
    fn mismatch_shows_both_fingerprints() {
        let (_, key) = parse_key_line(&format!("h {KEY}")).unwrap();
        assert_eq!(
            mismatch("SHA256:AAA", "p6.example.org:22", &[key]),
            format!("host key mismatch: expected SHA256:AAA, p6.example.org:22 presented {FP} (ssh-ed25519)")
        );
        assert_eq!(
            mismatch("SHA256:AAA", "h:22", &[]),
            "host key mismatch: expected SHA256:AAA, h:22 presented none"
        );
    }
}
