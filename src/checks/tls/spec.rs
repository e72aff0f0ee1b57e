//! The `[check.tls]` table: an address, how to verify it, and what the
//! leaf certificate and the negotiated protocol should be.

use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `host:port` to connect to.
    pub address: String,
    /// Name for SNI and verification (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM CA bundle to verify against (default: the system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The leaf must stay valid at least this many days (default 14).
    #[serde(default)]
    pub min_days_valid: Option<i64>,
    /// Names that must be in the leaf's subjectAltName.
    #[serde(default)]
    pub san: Vec<String>,
    /// The chain must verify (default true).
    #[serde(default)]
    pub chain_valid: Option<bool>,
    /// Minimum RSA key size (default 2048); EC keys need 256 bits.
    #[serde(default)]
    pub min_key_bits: Option<u32>,
    /// Allowed protocol versions (default ["TLSv1.2", "TLSv1.3"]).
    #[serde(default)]
    pub protocols: Option<Vec<String>>,
    /// `"direct"` or `"host"` (through the host's tunnel); default: the host's.
    #[serde(default)]
    pub via: Option<Via>,
    /// The server must refuse every older version: "1.2" (TLS 1.0 and 1.1
    /// refused) or "1.3" (1.2 as well). Tried with `openssl s_client`.
    #[serde(default)]
    pub min_version: Option<MinVersion>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum MinVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl MinVersion {
    /// The versions the server must refuse: (openssl option, name).
    pub fn older(self) -> &'static [(&'static str, &'static str)] {
        match self {
            MinVersion::Tls12 => &[("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")],
            MinVersion::Tls13 => &[
                ("-tls1", "TLSv1"),
                ("-tls1_1", "TLSv1.1"),
                ("-tls1_2", "TLSv1.2"),
            ],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "TLS 1.2",
            MinVersion::Tls13 => "TLS 1.3",
        }
    }
}

impl Spec {
    pub fn name(&self) -> String {
        self.server_name.clone().unwrap_or_else(|| {
            let host = self
                .address
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&self.address);
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        })
    }
}
