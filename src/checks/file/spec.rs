//! The `[check.file]` table: a path on this host (use a `command` check for
//! remote files) and its expected type, mode, owner, digest and content.

use std::path::PathBuf;

use serde::Deserialize;

/// Content expectations read at most this much of the file.
pub const MAX_CONTENT: u64 = 4 << 20;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub path: PathBuf,
    /// Expect the path to exist (default) or to be absent.
    #[serde(default = "yes")]
    pub exists: bool,
    /// `file` or `directory` (of the link's target, links are followed), or
    /// `symlink` (the path itself is a link).
    #[serde(default)]
    pub kind: Option<Kind>,
    /// Exact permission bits, octal: "0600".
    #[serde(default)]
    pub mode: Option<String>,
    /// No permission bits beyond these, octal: "0640" accepts 0600 and 0400.
    #[serde(default)]
    pub mode_max: Option<String>,
    /// User name or numeric uid.
    #[serde(default)]
    pub owner: Option<String>,
    /// Group name or numeric gid.
    #[serde(default)]
    pub group: Option<String>,
    /// Expected sha256 (hex, optionally prefixed `sha256:`).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub not_contains: Vec<String>,
    #[serde(default)]
    pub min_size: Option<u64>,
    /// The filesystem holding the path must be one of these types, as
    /// `stat -f -c %T` prints them on the checked host: `["tmpfs", "ramfs"]`
    /// for secrets kept in memory.
    #[serde(default)]
    pub filesystem: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Directory,
    Symlink,
}
