//! `[check.sandbox]`: one full sandbox cycle the way RAVE runs agent jobs:
//! provision a VM (4 GiB, 2 vCPU by default) on a qcow2 copy-on-write
//! overlay of the base image, prove the limits from inside the guest
//! (/proc/meminfo MemTotal, nproc), run the job and collect its output and
//! exit code, tear the VM down, and prove the cleanup: QEMU gone, overlay
//! removed, forwarded port closed, no tap device left behind, no QEMU of
//! this sandbox in the process table. With `isolation = true` two sandboxes
//! run at once; each writes a marker and must not see the other's.
//!
//! Sandbox VMs belong to this check alone (not the run's registry); if
//! the check is cancelled, dropping them kills QEMU.

use std::path::PathBuf;

use serde::Deserialize;

use crate::check::ProbeContext;
use crate::vm::{AccelChoice, ByteSize, ImageFormat, VmConfig};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The base image (never written; each sandbox gets its own overlay).
    pub image: PathBuf,
    /// "qcow2" (default) or "raw".
    #[serde(default)]
    pub format: ImageFormat,
    /// Kernel for direct kernel boot.
    pub kernel: PathBuf,
    /// Initial ramdisk for the kernel.
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// Sandbox memory limit (default "4GiB", RAVE's sandbox size).
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Sandbox vCPU limit (default 2).
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// The job, as argv run in the guest, e.g. ["sh", "-c", "make test"].
    pub job: Vec<String>,
    /// The job's expected exit code (default 0).
    #[serde(default)]
    pub job_exit_code: i32,
    /// Texts the job's stdout must contain.
    #[serde(default)]
    pub job_stdout_contains: Vec<String>,
    /// Lowest MemTotal accepted, as a percentage of `memory` (default 85:
    /// the kernel keeps some memory for itself).
    #[serde(default = "default_mem_floor")]
    pub min_memory_percent: u32,
    /// Run two sandboxes at once and prove neither sees the other's files.
    #[serde(default)]
    pub isolation: bool,
    /// "auto" (default), "kvm" or "tcg".
    #[serde(default)]
    pub accel: AccelChoice,
}

fn default_memory() -> ByteSize {
    ByteSize(4 << 30)
}
fn default_cpus() -> u32 {
    2
}
fn default_mem_floor() -> u32 {
    85
}

impl Spec {
    /// The sandbox VM `name`, its logs kept in the run's artifacts directory.
    pub fn config(&self, name: &str, ctx: &ProbeContext) -> VmConfig {
        VmConfig {
            name: name.into(),
            image: self.image.clone(),
            format: self.format,
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            extra_kernel_args: String::new(),
            memory: self.memory,
            cpus: self.cpus,
            accel: self.accel,
            artifacts_dir: ctx.artifacts_dir.clone(),
        }
    }

    /// The table has a job to run.
    pub fn validate(&self) -> Result<(), String> {
        if self.job.is_empty() {
            return Err(
                "`job` is empty: give argv, e.g. job = [\"sh\", \"-c\", \"echo hello\"]".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ravens_sandbox_size() {
        let s: Spec = toml::from_str("image = \"/i\"\nkernel = \"/k\"\njob = [\"true\"]").unwrap();
        assert_eq!(s.memory, ByteSize(4 << 30));
        assert_eq!(s.cpus, 2);
        assert_eq!(s.min_memory_percent, 85);
        assert!(!s.isolation);
    }
}
