//! Finds the VM in the run's registry and makes the context that runs the
//! command in the guest (its ssh executor); a VM that was never booted or
//! whose QEMU has exited is the probe's error.

use std::sync::Arc;

use super::judge::VmUnavailable;
use super::spec::Spec;
use crate::check::ProbeContext;

/// The context for running the command in the VM, or why there is none.
pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<ProbeContext, VmUnavailable> {
    let Some(vm) = ctx.vms.get(&spec.vm) else {
        return Err(VmUnavailable::NotBooted {
            message: ctx.vms.not_running_message(&spec.vm),
        });
    };
    if !vm.is_running() {
        return Err(VmUnavailable::Exited {
            console_tail: vm.console_tail(1500),
        });
    }
    let mut in_guest = ctx.clone();
    in_guest.executor = Arc::new(vm.executor());
    Ok(in_guest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::vm_command::run;

    #[tokio::test]
    async fn a_vm_that_was_never_booted_fails_with_the_fix() {
        let spec: Spec = toml::from_str("vm = \"never-booted\"\nrun = [\"true\"]").unwrap();
        let v = run(&spec, &ProbeContext::for_tests(5)).await;
        assert!(!v.pass);
        assert!(
            v.found.contains("no running VM named `never-booted`"),
            "{v:?}"
        );
        assert!(v.found.contains("needs"), "{v:?}");
    }
}
