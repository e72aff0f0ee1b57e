//! The `[check.ports]` table: ports that must or must not listen on the
//! target, or an allow-list, for TCP or UDP.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Ports that must be listening.
    #[serde(default)]
    pub listening: Vec<u16>,
    /// Ports that must not be listening.
    #[serde(default)]
    pub not_listening: Vec<u16>,
    /// When set, no other port may listen (the allow-list).
    #[serde(default)]
    pub allowed: Option<Vec<u16>>,
    /// Count sockets bound only to loopback for `allowed` (default false).
    #[serde(default)]
    pub include_loopback: bool,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}
