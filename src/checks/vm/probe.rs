//! Boots the VM (after tearing down one an earlier attempt left under the
//! same name) and registers it in the run's registry once ssh answers; a
//! boot that fails is a fact (its VM already torn down by `vm::boot`).

use std::sync::Arc;

use super::judge::{Booted, Facts, NotBooted};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::vm;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    // A boot check boots afresh: a VM left by an earlier attempt goes first.
    let replaced = ctx.vms.teardown(&spec.name).await;
    let outcome = vm::boot(&spec.config(ctx), ctx.deadline).await;
    match outcome {
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
            outcome: Err(NotBooted {
                reason: failure.reason,
                accel: failure.accel.map(|a| a.to_string()),
                console_tail: failure.console_tail,
                qemu_log: failure.qemu_log,
                console_log: failure.console_log.map(|p| p.display().to_string()),
                seconds: failure.elapsed.as_secs_f64(),
                teardown: failure.teardown.map(|t| t.to_string()),
            }),
        },
    }
}
