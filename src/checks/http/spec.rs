//! The `[check.http]` table: the request to send and what the answer must hold.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub url: String,
    /// GET (default), POST, PUT, DELETE, HEAD, PATCH, OPTIONS.
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// PEM file of CA certificates to trust (besides the system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (default false; prefer `ca_file`).
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub follow_redirects: bool,
    /// Connect these host names to these addresses (like curl --resolve;
    /// connections from this machine only).
    #[serde(default)]
    pub resolve: BTreeMap<String, IpAddr>,
    /// `"direct"` or `"host"` (through the host's tunnel: its SOCKS proxy,
    /// names resolved on the host); default: the host's.
    #[serde(default)]
    pub via: Option<Via>,
    /// Expected status: one code or a list (default 200).
    #[serde(default)]
    pub status: Option<StatusSet>,
    /// Response header name -> substring its value must contain.
    #[serde(default)]
    pub header_contains: BTreeMap<String, String>,
    #[serde(default)]
    pub body_contains: Vec<String>,
    #[serde(default)]
    pub body_not_contains: Vec<String>,
    /// JSON pointer -> expected value, e.g. `json = { "/status" = "ok" }`.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    /// JSON pointers that must exist.
    #[serde(default)]
    pub json_exists: Vec<String>,
}

/// `status = 200` or `status = [200, 302]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<u16>);

impl<'de> Deserialize<'de> for StatusSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StatusSet;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an HTTP status code (e.g. 200) or a list of them")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusSet, E> {
                code(v).map(|c| StatusSet(vec![c]))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusSet, E> {
                self.visit_i64(v as i64)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StatusSet, A::Error> {
                let mut codes = Vec::new();
                while let Some(v) = seq.next_element::<i64>()? {
                    codes.push(code(v)?);
                }
                if codes.is_empty() {
                    return Err(serde::de::Error::custom("status list is empty"));
                }
                Ok(StatusSet(codes))
            }
        }
        fn code<E: serde::de::Error>(v: i64) -> Result<u16, E> {
            if (100..=599).contains(&v) {
                Ok(v as u16)
            } else {
                Err(E::custom(format!(
                    "{v} is not an HTTP status code (100-599)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn status_accepts_a_code_or_a_list() {
        assert_eq!(
            spec("url = \"x\"\nstatus = 204").status,
            Some(StatusSet(vec![204]))
        );
        assert_eq!(
            spec("url = \"x\"\nstatus = [200, 302]").status,
            Some(StatusSet(vec![200, 302]))
        );
        let e = toml::from_str::<Spec>("url = \"x\"\nstatus = 99")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an HTTP status code"), "{e}");
    }
}
