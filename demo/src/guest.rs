//! The demo guest image for the build, boot and sandbox phases: built once
//! by `scripts/build-guest-image.sh` (debootstrap, a few minutes), cached
//! under ~/.cache/spinup-smoke, and linked into the state directory.

use std::path::{Path, PathBuf};

use spinup_smoke::error::UserError;

use crate::assets::Assets;

/// The guest image's files, as the target's `image.*` vars name them.
#[derive(Debug, Clone)]
pub struct Guest {
    /// `image.build_dir`: where the files are.
    pub dir: PathBuf,
    /// `image.path`: the qcow2 root disk.
    pub image: PathBuf,
    /// `image.kernel`
    pub kernel: PathBuf,
    /// `image.initrd`
    pub initrd: PathBuf,
}

impl Guest {
    /// The files of a guest image in `dir`.
    pub fn in_dir(dir: &Path) -> Guest {
        Guest {
            dir: dir.to_path_buf(),
            image: dir.join("guest.qcow2"),
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
        }
    }
}

/// Builds (or reuses) the demo guest image into `dir`.
pub fn prepare(assets: &Assets, dir: &Path) -> Result<Guest, UserError> {
    println!("demo: guest image (built once with debootstrap, a few minutes; then cached)");
    let status = std::process::Command::new(assets.join("scripts/build-guest-image.sh"))
        .arg(dir)
        .current_dir(assets.root())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| UserError::new(format!("cannot run scripts/build-guest-image.sh: {e}")))?;
    if !status.success() {
        return Err(UserError::new(format!("building the demo guest image failed ({status})"))
            .hint("run scripts/build-guest-image.sh to see why; it needs root, debootstrap and the Debian mirror"));
    }
    Ok(Guest::in_dir(dir))
}
