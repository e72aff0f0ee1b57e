//! The `[check.tcp]` table: an address, and whether it should accept.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `host:port` (names are resolved).
    pub address: String,
    /// `true` (default): expect a connection; `false`: expect it refused.
    #[serde(default = "yes")]
    pub open: bool,
}

fn yes() -> bool {
    true
}
