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

/// A first build takes a few minutes, more under load; past this it is stuck.
const BUILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(40 * 60);

/// Builds (or reuses) the demo guest image into `dir`.
pub fn prepare(assets: &Assets, dir: &Path) -> Result<Guest, UserError> {
    println!("demo: guest image (built once with debootstrap, a few minutes; then cached)");
    let mut build = std::process::Command::new(assets.join("scripts/build-guest-image.sh"));
    build
        .arg(dir)
        .current_dir(assets.root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // In its own process group, dying with `demo up`: a killed `up` leaves
    // no debootstrap writing into the state directory.
    let status = spinup_smoke::os::process::status_within(build, BUILD_TIMEOUT)
        .map_err(|e| UserError::new(format!("cannot run scripts/build-guest-image.sh: {e}")))?;
    if !status.success() {
        return Err(UserError::new(format!("building the demo guest image failed ({status})"))
            .hint("run scripts/build-guest-image.sh to see why; it needs root, debootstrap and the Debian mirror"));
    }
    Ok(Guest::in_dir(dir))
}
