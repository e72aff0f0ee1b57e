//! `[check.vm_command]`: a `[check.command]` run inside a VM booted by an
//! earlier `[check.vm]` check, over ssh (`SshExecutor`). The table is the
//! command table plus `vm = "<name>"`; the command judge decides.

use serde::Deserialize;

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
}
