//! Judges a command that could not run in its VM (not booted, or QEMU
//! gone); a command that ran is judged by `[check.command]`'s judge.

use super::spec::Spec;
use crate::check::Verdict;

/// Why the command could not run in the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmUnavailable {
    /// No VM of that name in the run's registry: what the registry says.
    NotBooted { message: String },
    /// Registered, but its QEMU has exited.
    Exited { console_tail: String },
}

/// The verdict when the command could not run: the VM is named in `expected`.
pub fn judge(spec: &Spec, why: &VmUnavailable) -> Verdict {
    let expected = format!("`{}` runs in VM `{}`", spec.command.argv.join(" "), spec.vm);
    match why {
        VmUnavailable::NotBooted { message } => Verdict::fail(expected, message.clone()),
        VmUnavailable::Exited { console_tail } => Verdict::fail(
            expected,
            format!("VM `{}` is no longer running (QEMU exited)", spec.vm),
        )
        .with_evidence(format!("console tail:\n{console_tail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        toml::from_str("vm = \"guest\"\nrun = [\"nproc\"]").unwrap()
    }

    #[test]
    fn an_unavailable_vm_fails_with_the_reason() {
        let v = judge(
            &spec(),
            &VmUnavailable::NotBooted {
                message: "no running VM named `guest`".into(),
            },
        );
        assert!(!v.pass);
        assert_eq!(v.expected, "`nproc` runs in VM `guest`");
        assert_eq!(v.found, "no running VM named `guest`");
        let v = judge(
            &spec(),
            &VmUnavailable::Exited {
                console_tail: "Kernel panic".into(),
            },
        );
        assert!(!v.pass);
        assert_eq!(v.found, "VM `guest` is no longer running (QEMU exited)");
        assert_eq!(v.evidence, "console tail:\nKernel panic");
    }
}
