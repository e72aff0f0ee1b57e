//! The `[check.nftables]` table: the TCP ports the input hook may admit,
//! and optionally which table and chain hold the host's firewall.

use serde::Deserialize;

use crate::os::CommandSpec;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The only TCP destination ports the input chain may accept.
    pub allowed_tcp: Vec<u16>,
    /// Judge only input chains of this family (`inet`, `ip`, `ip6`).
    #[serde(default)]
    pub family: Option<String>,
    /// Judge only input chains of this table (`nixos-fw` on NixOS).
    #[serde(default)]
    pub table: Option<String>,
    /// Judge only the input chain of this name.
    #[serde(default)]
    pub chain: Option<String>,
    /// The nft program on the checked host (default `nft`, from PATH).
    #[serde(default = "default_binary")]
    pub binary: String,
}

fn default_binary() -> String {
    "nft".into()
}

impl Spec {
    /// `nft -j list ruleset`: the whole ruleset as JSON.
    pub fn command(&self) -> CommandSpec {
        CommandSpec::new(self.binary.clone(), &["-j", "list", "ruleset"])
    }

    /// Where the judged chains must be, in words ("table inet nixos-fw").
    pub fn scope(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.family {
            parts.push(format!("family {f}"));
        }
        if let Some(t) = &self.table {
            parts.push(format!("table {t}"));
        }
        if let Some(c) = &self.chain {
            parts.push(format!("chain {c}"));
        }
        if parts.is_empty() {
            "any table".into()
        } else {
            parts.join(", ")
        }
    }
}
