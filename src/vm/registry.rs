//! The run's VMs: a registry of the VMs that live across checks of one run.
//!
//! A `[check.vm]` boot check registers its VM under the profile's name
//! (`name = "guest"`); later checks (`systemd`, `vm_command`) look it up by
//! that name. The runner creates one `Registry` per run, hands it to every
//! probe through its context and calls `teardown_all()` before the run
//! returns, also after a failure, a timeout or an abort. Dropping the
//! registry drops its VMs: `RunningVm`'s `Drop` and QEMU's parent-death
//! signal cover the paths where teardown never runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::machine::{RunningVm, TeardownReport};

/// The VMs of one run, by name.
#[derive(Debug, Default)]
pub struct Registry {
    vms: Mutex<HashMap<String, Arc<RunningVm>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn vms(&self) -> MutexGuard<'_, HashMap<String, Arc<RunningVm>>> {
        self.vms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `vm` under its name; returns the VM it replaces, if any (the
    /// caller tears that one down).
    pub fn insert(&self, vm: Arc<RunningVm>) -> Option<Arc<RunningVm>> {
        self.vms().insert(vm.name.clone(), vm)
    }

    /// The running VM registered as `name`.
    pub fn get(&self, name: &str) -> Option<Arc<RunningVm>> {
        self.vms().get(name).cloned()
    }

    /// The names of every registered VM, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.vms().keys().cloned().collect();
        names.sort();
        names
    }

    /// Removes and tears down the VM registered as `name`.
    pub async fn teardown(&self, name: &str) -> Option<TeardownReport> {
        let vm = self.vms().remove(name)?;
        Some(vm.teardown().await)
    }

    /// Removes and tears down every registered VM. The runner calls it once
    /// at the end of a run (success, failure, timeout or abort). Returns what
    /// each teardown found, by name.
    pub async fn teardown_all(&self) -> Vec<(String, TeardownReport)> {
        let all: Vec<Arc<RunningVm>> = self.vms().drain().map(|(_, vm)| vm).collect();
        let mut reports = Vec::new();
        for vm in all {
            reports.push((vm.name.clone(), vm.teardown().await));
        }
        reports.sort_by(|a, b| a.0.cmp(&b.0));
        reports
    }

    /// The message for a check that names a VM nobody booted.
    pub fn not_running_message(&self, name: &str) -> String {
        let running = self.names();
        format!(
            "no running VM named `{name}` (running: {}); a `[check.vm]` boot check with name = \"{name}\" must pass first: add it to `needs`",
            if running.is_empty() {
                "none".to_string()
            } else {
                running.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_empty_registry_names_no_vm_and_tears_down_nothing() {
        let vms = Registry::new();
        assert!(vms.get("guest").is_none());
        assert!(vms.names().is_empty());
        assert!(vms.teardown("guest").await.is_none());
        assert!(vms.teardown_all().await.is_empty());
        assert_eq!(
            vms.not_running_message("guest"),
            "no running VM named `guest` (running: none); a `[check.vm]` boot check with name = \"guest\" must pass first: add it to `needs`"
        );
    }
}
