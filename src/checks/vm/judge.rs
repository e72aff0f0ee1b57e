//! Judges a VM boot: ssh answered before the deadline. Evidence names the
//! accelerator used (and why), the console log file and the console tail.

use super::spec::Spec;
use crate::check::Verdict;

#[derive(Debug, Clone, PartialEq)]
pub struct Booted {
    /// "accelerator TCG (reason)".
    pub accel: String,
    pub kvm: bool,
    pub boot_to_ssh_seconds: f64,
    pub ssh_port: u16,
    pub qemu_pid: u32,
    pub console_log: String,
    pub console_tail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NotBooted {
    pub reason: String,
    pub accel: Option<String>,
    pub console_tail: String,
    pub qemu_log: String,
    pub console_log: Option<String>,
    pub seconds: f64,
    /// What the teardown after the failure found.
    pub teardown: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub name: String,
    pub image: String,
    pub replaced_earlier_vm: bool,
    pub outcome: Result<Booted, NotBooted>,
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let expected = format!(
        "VM `{}` boots {} and answers ssh before the deadline",
        facts.name, facts.image
    );
    match &facts.outcome {
        Ok(b) => {
            let evidence = format!(
                "{}\nssh: root@127.0.0.1:{} (qemu pid {}, {} MiB, {} vCPU)\nconsole log: {}\nconsole tail:\n{}",
                b.accel,
                b.ssh_port,
                b.qemu_pid,
                spec.memory.mib(),
                spec.cpus,
                b.console_log,
                b.console_tail
            );
            Verdict::pass(
                expected,
                format!(
                    "ssh answered {:.1}s after QEMU started ({})",
                    b.boot_to_ssh_seconds,
                    if b.kvm { "KVM" } else { "TCG" }
                ),
            )
            .with_evidence(evidence)
            .with_metric("boot_to_ssh_seconds", b.boot_to_ssh_seconds)
            .with_metric("accel_kvm", if b.kvm { 1.0 } else { 0.0 })
        }
        Err(n) => {
            let mut evidence = String::new();
            if let Some(accel) = &n.accel {
                evidence.push_str(&format!("{accel}\n"));
            }
            if let Some(log) = &n.console_log {
                evidence.push_str(&format!("console log: {log}\n"));
            }
            if let Some(t) = &n.teardown {
                evidence.push_str(&format!("teardown: {t}\n"));
            }
            if !n.qemu_log.trim().is_empty() {
                evidence.push_str(&format!("qemu said:\n{}\n", n.qemu_log.trim()));
            }
            evidence.push_str(&format!(
                "console tail:\n{}",
                if n.console_tail.trim().is_empty() {
                    "(nothing on the serial console)"
                } else {
                    n.console_tail.as_str()
                }
            ));
            Verdict::fail(
                expected,
                format!("no ssh after {:.1}s: {}", n.seconds, n.reason),
            )
            .with_evidence(evidence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        toml::from_str("image = \"/i\"\nkernel = \"/k\"").unwrap()
    }

    #[test]
    fn a_boot_passes_with_timing_and_a_failure_carries_the_console_tail() {
        let booted = Facts {
            name: "guest".into(),
            image: "/i".into(),
            replaced_earlier_vm: false,
            outcome: Ok(Booted {
                accel: "accelerator TCG (no KVM)".into(),
                kvm: false,
                boot_to_ssh_seconds: 21.5,
                ssh_port: 40000,
                qemu_pid: 7,
                console_log: "/a/c.log".into(),
                console_tail: "login:".into(),
            }),
        };
        let v = judge(&spec(), &booted);
        assert!(v.pass);
        assert_eq!(v.metrics["boot_to_ssh_seconds"], 21.5);
        assert!(v.evidence.starts_with("accelerator TCG"), "{v:?}");

        let failed = Facts {
            outcome: Err(NotBooted {
                reason: "QEMU exited (signal 9) before ssh answered".into(),
                accel: None,
                console_tail: "Kernel panic - not syncing".into(),
                qemu_log: String::new(),
                console_log: Some("/a/c.log".into()),
                seconds: 3.0,
                teardown: Some("qemu pid 7 gone: yes".into()),
            }),
            ..booted
        };
        let v = judge(&spec(), &failed);
        assert!(!v.pass);
        assert!(v.found.contains("QEMU exited"), "{v:?}");
        assert!(v.evidence.contains("Kernel panic"), "{v:?}");
        assert!(v.evidence.contains("gone: yes"), "{v:?}");
    }
}
