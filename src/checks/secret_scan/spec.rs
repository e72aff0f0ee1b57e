//! The `[check.secret_scan]` table (phase `config`): trees on this host to
//! scan for hardcoded secrets, what to leave out, and the allow-list.

use std::path::PathBuf;

use serde::Deserialize;

use crate::vm::ByteSize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Directories (scanned recursively) or files, e.g. `${repo.root}`.
    pub paths: Vec<PathBuf>,
    /// Left out: a pattern without `/` matches a file or directory name at
    /// any depth (`target`, `.demo*`), one with `/` the path relative to
    /// its root (`tests/data/**`). Replaces the default list.
    #[serde(default = "default_exclude")]
    pub exclude: Vec<String>,
    /// Larger files are skipped (and counted), default "1MiB".
    #[serde(default = "default_max_file_size")]
    pub max_file_size: ByteSize,
    /// The entropy rule's shortest candidate (default 24 characters).
    #[serde(default = "default_entropy_min_length")]
    pub entropy_min_length: usize,
    /// The entropy rule's threshold in bits per character (default 4.0).
    #[serde(default = "default_entropy_min_bits")]
    pub entropy_min_bits: f64,
    /// Findings that are known and accepted, each with its reason.
    #[serde(default)]
    pub allow: Vec<Allow>,
}

/// An accepted finding: a path glob (relative to the scanned root), the
/// rule (every rule when absent) and why it is not a secret.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    pub path: String,
    #[serde(default)]
    pub rule: Option<String>,
    pub reason: String,
}

/// What no scan of a checkout wants: version control, build output,
/// dependencies and caches, the demo's state and keys.
pub fn default_exclude() -> Vec<String> {
    [".git", "target", "node_modules", ".venv", ".cache", ".demo*", "result", "result-*"]
        .map(String::from)
        .to_vec()
}

fn default_max_file_size() -> ByteSize {
    ByteSize(1 << 20)
}

fn default_entropy_min_length() -> usize {
    24
}

fn default_entropy_min_bits() -> f64 {
    4.0
}
