//! The session registry: VMs that live across checks of one run.
//!
//! A `[check.vm]` boot check registers its VM under the profile's name
//! (`name = "guest"`); later checks (`systemd`, `vm_command`) look it up by
//! that name. The runner calls `teardown_all()` once at the end of every run,
//! also after a failure, a timeout or an abort; `RunningVm`'s `Drop` and
//! QEMU's parent-death signal cover the paths where that call never happens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::machine::{RunningVm, TeardownReport};

fn vms() -> &'static Mutex<HashMap<String, Arc<RunningVm>>> {
    static VMS: OnceLock<Mutex<HashMap<String, Arc<RunningVm>>>> = OnceLock::new();
    VMS.get_or_init(Default::default)
}

/// Registers `vm` under its name; returns the VM it replaces, if any (the
/// caller tears that one down).
pub fn insert(vm: Arc<RunningVm>) -> Option<Arc<RunningVm>> {
    vms()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(vm.name.clone(), vm)
}

/// The running VM registered as `name`.
pub fn get(name: &str) -> Option<Arc<RunningVm>> {
    vms()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .cloned()
}

/// The names of every registered VM, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = vms()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// Removes and tears down the VM registered as `name`.
pub async fn teardown(name: &str) -> Option<TeardownReport> {
    let vm = vms()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(name)?;
    Some(vm.teardown().await)
}

/// Removes and tears down every registered VM. Call once at the end of a run
/// (success, failure, timeout or abort). Returns what each teardown found.
pub async fn teardown_all() -> Vec<(String, TeardownReport)> {
    let all: Vec<Arc<RunningVm>> = vms()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, vm)| vm)
        .collect();
    let mut reports = Vec::new();
    for vm in all {
        reports.push((vm.name.clone(), vm.teardown().await));
    }
    reports.sort_by(|a, b| a.0.cmp(&b.0));
    reports
}

/// The message for a check that names a VM nobody booted.
pub fn not_running_message(name: &str) -> String {
    let running = names();
    format!(
        "no running VM named `{name}` (running: {}); a `[check.vm]` boot check with name = \"{name}\" must pass first: add it to `needs`",
        if running.is_empty() {
            "none".to_string()
        } else {
            running.join(", ")
        }
    )
}
