//! The `[check.dns]` table: a name, and what it should resolve to.

use std::net::IpAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    /// Expect the name to resolve (default) or not.
    #[serde(default = "yes")]
    pub resolves: bool,
    /// Addresses that must be among the answers.
    #[serde(default)]
    pub addresses_include: Vec<IpAddr>,
    #[serde(default)]
    pub min_addresses: Option<usize>,
}

fn yes() -> bool {
    true
}
