//! `[check.vm]`: boots the image under QEMU (KVM when it really works, else
//! TCG) and waits until ssh answers in the guest; the running VM is kept in
//! the run's registry under `name` for later checks (`systemd`,
//! `vm_command`) and torn down at the end of the run. A boot that does not
//! reach ssh by the deadline (corrupt image, hung kernel, QEMU exiting)
//! fails with the serial console tail as evidence, and its VM is torn down
//! at once.

use std::path::PathBuf;

use serde::Deserialize;

use crate::check::ProbeContext;
use crate::vm::{AccelChoice, ByteSize, ImageFormat, VmConfig};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The VM's name in this run; later checks refer to it (`vm = "guest"`).
    #[serde(default = "default_name")]
    pub name: String,
    /// The disk image (never written: the VM runs on a qcow2 overlay).
    pub image: PathBuf,
    /// "qcow2" (default) or "raw".
    #[serde(default)]
    pub format: ImageFormat,
    /// Kernel for direct kernel boot (root is /dev/vda, console ttyS0).
    pub kernel: PathBuf,
    /// Initial ramdisk for the kernel.
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// Extra kernel command-line arguments.
    #[serde(default)]
    pub kernel_args: String,
    /// Guest memory (default "2GiB").
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Virtual CPUs (default 2).
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// "auto" (default: KVM if a KVM boot probe works, else TCG), "kvm" or "tcg".
    #[serde(default)]
    pub accel: AccelChoice,
}

fn default_name() -> String {
    "guest".into()
}
fn default_memory() -> ByteSize {
    ByteSize(2 << 30)
}
fn default_cpus() -> u32 {
    2
}

impl Spec {
    /// The VM to boot, its logs kept in the run's artifacts directory.
    pub fn config(&self, ctx: &ProbeContext) -> VmConfig {
        VmConfig {
            name: self.name.clone(),
            image: self.image.clone(),
            format: self.format,
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            extra_kernel_args: self.kernel_args.clone(),
            memory: self.memory,
            cpus: self.cpus,
            accel: self.accel,
            artifacts_dir: ctx.artifacts_dir.clone(),
        }
    }
}
