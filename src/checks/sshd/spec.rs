//! The `[check.sshd]` table: which sshd to ask (`sshd -T`), for which
//! connection (`-C`), and what its effective configuration must allow.

use std::path::PathBuf;

use serde::Deserialize;

use crate::os::CommandSpec;

/// Key exchange allowed by default: the hybrid post-quantum exchanges
/// (ML-KEM, Streamlined NTRU Prime, each with X25519) and X25519. Left out:
/// NIST curves, finite-field Diffie-Hellman (group exchange included: its
/// strength depends on the moduli file) and everything with SHA-1.
pub const DEFAULT_KEX: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
];

/// Ciphers allowed by default: the AEADs (ChaCha20-Poly1305, AES-GCM) and
/// AES-CTR (safe paired with an encrypt-then-MAC). Left out: CBC modes,
/// 3DES, RC4 (arcfour), Blowfish, CAST.
pub const DEFAULT_CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
];

/// MACs allowed by default: encrypt-then-MAC with SHA-2 or UMAC-128. Left
/// out: every MAC-then-encrypt MAC, SHA-1, MD5 and the 64-bit UMAC tag.
pub const DEFAULT_MACS: &[&str] = &[
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The sshd program on the checked host (default `sshd`, from PATH).
    #[serde(default = "default_binary")]
    pub binary: String,
    /// Another configuration file (`-f`; default: sshd's own).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Evaluate `Match` blocks for this connection (`-C user=,host=,addr=`).
    #[serde(default)]
    pub connection: Option<Connection>,
    /// The strictest accepted `PermitRootLogin`: `no` (default), or
    /// `prohibit-password` (root with a key only; `no` passes too).
    #[serde(default)]
    pub root_login: RootLogin,
    /// Allowed key exchange algorithms (default [`DEFAULT_KEX`]).
    #[serde(default)]
    pub kex_algorithms: Option<Vec<String>>,
    /// Allowed ciphers (default [`DEFAULT_CIPHERS`]).
    #[serde(default)]
    pub ciphers: Option<Vec<String>>,
    /// Allowed MACs (default [`DEFAULT_MACS`]).
    #[serde(default)]
    pub macs: Option<Vec<String>>,
}

fn default_binary() -> String {
    "sshd".into()
}

/// The connection whose `Match` blocks `sshd -T -C` applies.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "ConnectionFields")]
pub struct Connection {
    pub user: String,
    pub host: String,
    pub addr: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionFields {
    user: String,
    host: String,
    addr: String,
}

impl TryFrom<ConnectionFields> for Connection {
    type Error = String;
    fn try_from(c: ConnectionFields) -> Result<Connection, String> {
        for (field, value) in [("user", &c.user), ("host", &c.host), ("addr", &c.addr)] {
            if value.is_empty() || value.contains([',', '=']) || value.contains(char::is_whitespace)
            {
                return Err(format!(
                    "connection.{field} = {value:?}: give one non-empty word without `,`, `=` or spaces (sshd -C takes user=...,host=...,addr=...)"
                ));
            }
        }
        Ok(Connection {
            user: c.user,
            host: c.host,
            addr: c.addr,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootLogin {
    #[default]
    No,
    ProhibitPassword,
}

impl Spec {
    /// `sshd -T`, with `-f` and `-C` as the spec asks.
    pub fn command(&self) -> CommandSpec {
        let mut command = CommandSpec::new(self.binary.clone(), &["-T"]);
        if let Some(config) = &self.config {
            command.args.push("-f".into());
            command.args.push(config.display().to_string());
        }
        if let Some(c) = &self.connection {
            command.args.push("-C".into());
            command
                .args
                .push(format!("user={},host={},addr={}", c.user, c.host, c.addr));
        }
        command
    }

    pub fn allowed_kex(&self) -> Vec<String> {
        or_default(&self.kex_algorithms, DEFAULT_KEX)
    }
    pub fn allowed_ciphers(&self) -> Vec<String> {
        or_default(&self.ciphers, DEFAULT_CIPHERS)
    }
    pub fn allowed_macs(&self) -> Vec<String> {
        or_default(&self.macs, DEFAULT_MACS)
    }
}

fn or_default(list: &Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    list.clone()
        .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
}
