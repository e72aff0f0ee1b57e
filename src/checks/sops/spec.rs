//! The `[check.sops]` table (phase `config`): sops-encrypted files on this
//! host (YAML or JSON), by path or glob.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Paths or globs (`*`, `?`, `**`), e.g. `${repo.root}/secrets/*.yaml`;
    /// a glob that matches no file fails the check. A `.json` file is read
    /// as JSON, any other as YAML.
    pub files: Vec<String>,
}
