//! `[check.image]`: a built disk image is a valid image of the expected
//! format and size (`qemu-img info --output=json`, plus `qemu-img check`
//! for qcow2), and its streamed SHA-256 digest is recorded (evidence line
//! `sha256:<hex>`; optionally compared with an expected digest).
//!
//! `qemu-img` runs through the check's executor; the digest is read from
//! this host's filesystem (the image must be local).

use std::path::PathBuf;

use serde::Deserialize;

use crate::vm::{ByteSize, ImageFormat};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The image file (e.g. `${image.path}`).
    pub path: PathBuf,
    /// The format it must have: "qcow2" (default) or "raw".
    #[serde(default)]
    pub format: ImageFormat,
    /// Smallest acceptable virtual disk size, e.g. "2GiB".
    #[serde(default)]
    pub min_virtual_size: Option<ByteSize>,
    /// Expected digest `sha256:<hex>`; absent: the digest is only recorded.
    #[serde(default)]
    pub digest: Option<String>,
    /// Run `qemu-img check` on qcow2 images (default true).
    #[serde(default = "yes")]
    pub consistency_check: bool,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_bad_sizes_are_rejected() {
        let err = toml::from_str::<Spec>("path = \"x\"\nformat = \"vmdk\"").unwrap_err();
        assert!(err.to_string().contains("vmdk"), "{err}");
        let err =
            toml::from_str::<Spec>("path = \"x\"\nmin_virtual_size = \"2 parsecs\"").unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
    }
}
