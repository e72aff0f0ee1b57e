//! `[check.vm]`: boots the image under QEMU (KVM when it really works, else
//! TCG) and waits until ssh answers in the guest; the running VM is kept in
//! the run's registry under `name` for later checks (`systemd`,
//! `vm_command`) and torn down at the end of the run. A boot that does not
//! reach ssh by the deadline (corrupt image, hung kernel, QEMU exiting)
//! fails with the serial console tail as evidence, and its VM is torn down
//! at once.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::judge;
use super::judge::Booted;
use super::judge::Facts;
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::vm::{self, AccelChoice, ByteSize, ImageFormat, VmConfig};

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

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    // A boot check boots afresh: a VM left by an earlier attempt goes first.
    let replaced = ctx.vms.teardown(&spec.name).await;
    let outcome = vm::boot(&spec.config(ctx), ctx.deadline).await;
    let facts = match outcome {
        Ok(running) => {
            let booted = Booted {
                accel: running.accel.to_string(),
                kvm: running.accel.accel == vm::Accelerator::Kvm,
                boot_to_ssh_seconds: running.boot_to_ssh.as_secs_f64(),
                ssh_port: running.ssh_port,
                qemu_pid: running.qemu_pid,
                console_log: running.console_log.display().to_string(),
                console_tail: running.console_tail(1500),
            };
            let running = Arc::new(running);
            if let Some(old) = ctx.vms.insert(running) {
                old.teardown().await;
            }
            Facts {
                name: spec.name.clone(),
                image: spec.image.display().to_string(),
                replaced_earlier_vm: replaced.is_some(),
                outcome: Ok(booted),
            }
        }
        Err(failure) => Facts {
            name: spec.name.clone(),
            image: spec.image.display().to_string(),
            replaced_earlier_vm: replaced.is_some(),
            outcome: Err(judge::NotBooted {
                reason: failure.reason,
                accel: failure.accel.map(|a| a.to_string()),
                console_tail: failure.console_tail,
                qemu_log: failure.qemu_log,
                console_log: failure.console_log.map(|p| p.display().to_string()),
                seconds: failure.elapsed.as_secs_f64(),
                teardown: failure.teardown.map(|t| t.to_string()),
            }),
        },
    };
    judge::judge(spec, &facts)
}
