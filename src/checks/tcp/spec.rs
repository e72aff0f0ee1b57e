//! The `[check.tcp]` table: an address, and whether it should accept.

use serde::Deserialize;

use crate::checks::via::Via;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `host:port` (names are resolved where the connection starts).
    pub address: String,
    /// `true` (default): expect a connection; `false`: expect it refused.
    #[serde(default = "yes")]
    pub open: bool,
    /// `"direct"` or `"host"` (through the host's tunnel); default: the host's.
    #[serde(default)]
    pub via: Option<Via>,
}

fn yes() -> bool {
    true
}
