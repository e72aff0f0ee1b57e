//! `[check.vm_command]`: a `[check.command]` run inside a VM booted by an
//! earlier `[check.vm]` check, over ssh (`SshExecutor`). The table is the
//! command table plus `vm = "<name>"`; the command judge decides.

use std::sync::Arc;

use serde::Deserialize;

use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::checks::command;

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The VM's name (the `name` of its `[check.vm]` boot check).
    pub vm: String,
    /// The command, with every field of `[check.command]`.
    pub command: command::Spec,
}

impl<'de> Deserialize<'de> for Spec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Spec, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let vm = match table.remove("vm") {
            Some(toml::Value::String(name)) => name,
            Some(_) => return Err(D::Error::custom("`vm` must be a string: vm = \"guest\"")),
            None => return Err(D::Error::custom(
                "missing field `vm`: name the VM booted by a [check.vm] check, e.g. vm = \"guest\"",
            )),
        };
        let command = toml::Value::Table(table)
            .try_into::<command::Spec>()
            .map_err(|e| D::Error::custom(e.message().to_string()))?;
        Ok(Spec { vm, command })
    }
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let Some(vm) = ctx.vms.get(&spec.vm) else {
        return Verdict::fail(
            format!("`{}` runs in VM `{}`", spec.command.argv.join(" "), spec.vm),
            ctx.vms.not_running_message(&spec.vm),
        );
    };
    if !vm.is_running() {
        return Verdict::fail(
            format!("`{}` runs in VM `{}`", spec.command.argv.join(" "), spec.vm),
            format!("VM `{}` is no longer running (QEMU exited)", spec.vm),
        )
        .with_evidence(format!("console tail:\n{}", vm.console_tail(1500)));
    }
    let mut in_guest = ctx.clone();
    in_guest.executor = Arc::new(vm.executor());
    command::run(&spec.command, &in_guest).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_a_command_table_plus_vm() {
        let spec: Spec =
            toml::from_str("vm = \"guest\"\nrun = [\"nproc\"]\nstdout_equals = \"2\"").unwrap();
        assert_eq!(spec.vm, "guest");
        assert_eq!(spec.command.argv, ["nproc"]);
        let err = toml::from_str::<Spec>("run = [\"nproc\"]").unwrap_err();
        assert!(err.to_string().contains("missing field `vm`"), "{err}");
        let err = toml::from_str::<Spec>("vm = \"g\"\nrun = [\"x\"]\nbogus = 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[tokio::test]
    async fn a_vm_that_was_never_booted_fails_with_the_fix() {
        let spec: Spec = toml::from_str("vm = \"never-booted\"\nrun = [\"true\"]").unwrap();
        let v = probe(&spec, &ProbeContext::for_tests(5)).await;
        assert!(!v.pass);
        assert!(
            v.found.contains("no running VM named `never-booted`"),
            "{v:?}"
        );
        assert!(v.found.contains("needs"), "{v:?}");
    }
}
