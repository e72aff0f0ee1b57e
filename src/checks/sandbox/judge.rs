//! Judges a sandbox cycle: booted, limits proven from inside the guest,
//! the job's exit code and output, isolation (when asked), and a clean
//! teardown (no QEMU, overlay, forwarded port or tap left).

use super::spec::Spec;
use crate::check::{all_of, Verdict};
use crate::vm::{ByteSize, TeardownReport};
use crate::text::tail;

/// MemTotal and nproc as the guest reports them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GuestLimits {
    pub mem_total_kib: Option<u64>,
    pub nproc: Option<u32>,
    pub raw: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobRun {
    pub command: String,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Isolation {
    pub own_marker_seen_by_a: bool,
    pub own_marker_seen_by_b: bool,
    pub a_sees_b: bool,
    pub b_sees_a: bool,
    pub listing_a: String,
    pub listing_b: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub memory_bytes: u64,
    pub cpus: u32,
    pub accel: Option<String>,
    pub boot_to_ssh_seconds: Vec<f64>,
    pub console_logs: Vec<String>,
    /// One entry per sandbox that did not boot: reason and console tail.
    pub boot_failures: Vec<String>,
    pub limits: Option<GuestLimits>,
    pub job: Option<JobRun>,
    pub isolation: Option<Isolation>,
    pub teardowns: Vec<TeardownReport>,
    /// QEMU processes of these sandboxes still alive after teardown.
    pub leftover_qemu: Vec<u32>,
    /// tap/tun devices that appeared during the cycle and are still there.
    pub new_taps: Vec<String>,
    pub cycle_seconds: f64,
}


pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let mut evidence = Vec::new();
    if let Some(accel) = &facts.accel {
        evidence.push(accel.clone());
    }
    for log in &facts.console_logs {
        evidence.push(format!("console log: {log}"));
    }
    let mut parts = Vec::new();
    let sandboxes = if spec.isolation { 2 } else { 1 };
    if !facts.boot_failures.is_empty() {
        parts.push(Verdict::fail(
            format!("{sandboxes} sandbox VM(s) boot and answer ssh"),
            format!(
                "{} sandbox(es) did not boot: {}",
                facts.boot_failures.len(),
                facts.boot_failures[0].lines().next().unwrap_or("")
            ),
        ));
        evidence.extend(facts.boot_failures.iter().cloned());
    }
    if let Some(limits) = &facts.limits {
        evidence.push(format!("guest reports:\n{}", limits.raw.trim()));
        let floor_kib = facts.memory_bytes / 1024 * spec.min_memory_percent as u64 / 100;
        let ceiling_kib = facts.memory_bytes / 1024;
        let expected = format!(
            "MemTotal between {} and {}",
            ByteSize(floor_kib * 1024),
            ByteSize(ceiling_kib * 1024)
        );
        parts.push(match (&limits.error, limits.mem_total_kib) {
            (Some(e), _) => Verdict::fail(expected, e.clone()),
            (None, None) => Verdict::fail(expected, "no MemTotal line in /proc/meminfo"),
            (None, Some(kib)) => {
                let found = format!("MemTotal {}", ByteSize(kib * 1024));
                if (floor_kib..=ceiling_kib).contains(&kib) {
                    Verdict::pass(expected, found)
                } else {
                    Verdict::fail(expected, found)
                }
            }
        });
        let expected = format!("nproc {}", facts.cpus);
        parts.push(match limits.nproc {
            Some(n) if n == facts.cpus => Verdict::pass(expected, format!("nproc {n}")),
            Some(n) => Verdict::fail(expected, format!("nproc {n}")),
            None => Verdict::fail(expected, "nproc not read"),
        });
    }
    if let Some(job) = &facts.job {
        evidence.push(format!(
            "$ {} (in the sandbox)\nexit code: {}, {:.1}s\nstdout:\n{}\nstderr:\n{}",
            job.command,
            job.exit_code.map_or("none".to_string(), |c| c.to_string()),
            job.seconds,
            tail(&job.stdout, 2000),
            tail(&job.stderr, 1000)
        ));
        let expected = format!("job exits {}", spec.job_exit_code);
        parts.push(match (&job.error, job.exit_code) {
            (Some(e), _) => Verdict::fail(expected, format!("job: {e}")),
            (None, Some(c)) if c == spec.job_exit_code => {
                Verdict::pass(expected, format!("job exit code {c}"))
            }
            (None, Some(c)) => Verdict::fail(expected, format!("job exit code {c}")),
            (None, None) => Verdict::fail(expected, "job killed by a signal"),
        });
        for want in &spec.job_stdout_contains {
            let expected = format!("job stdout contains `{want}`");
            parts.push(if job.stdout.contains(want.as_str()) {
                Verdict::pass(expected, format!("`{want}` found"))
            } else {
                Verdict::fail(expected, format!("stdout without `{want}`"))
            });
        }
    }
    if spec.isolation {
        let expected = "each sandbox sees its own marker and not the other's";
        parts.push(match &facts.isolation {
            None => Verdict::fail(expected, "isolation not tested (a sandbox did not boot)"),
            Some(i) => {
                evidence.push(format!(
                    "markers visible in sandbox a:\n{}\nmarkers visible in sandbox b:\n{}",
                    i.listing_a.trim(),
                    i.listing_b.trim()
                ));
                if let Some(e) = &i.error {
                    Verdict::fail(expected, e.clone())
                } else if i.a_sees_b || i.b_sees_a {
                    Verdict::fail(
                        expected,
                        format!(
                            "not isolated: a sees b's marker: {}, b sees a's: {}",
                            i.a_sees_b, i.b_sees_a
                        ),
                    )
                } else if !(i.own_marker_seen_by_a && i.own_marker_seen_by_b) {
                    Verdict::fail(expected, "a sandbox could not read back its own marker")
                } else {
                    Verdict::pass(expected, "isolated: neither sees the other's marker")
                }
            }
        });
    }
    for t in &facts.teardowns {
        evidence.push(format!("teardown: {t}"));
        let expected = "after teardown: no QEMU, overlay or forwarded port left";
        parts.push(if t.clean() {
            Verdict::pass(expected, "clean")
        } else {
            Verdict::fail(expected, format!("left behind: {t}"))
        });
    }
    if !facts.leftover_qemu.is_empty() {
        parts.push(Verdict::fail(
            "no sandbox QEMU process left",
            format!("QEMU still running: pids {:?}", facts.leftover_qemu),
        ));
    }
    evidence.push(format!(
        "tap devices left by the cycle: {} (user-mode networking creates none)",
        if facts.new_taps.is_empty() {
            "none".to_string()
        } else {
            facts.new_taps.join(", ")
        }
    ));
    if !facts.new_taps.is_empty() {
        parts.push(Verdict::fail(
            "no tap device left",
            format!("left: {}", facts.new_taps.join(", ")),
        ));
    }
    let mut verdict = all_of(parts).with_evidence(evidence.join("\n"));
    verdict = verdict.with_metric("sandbox_cycle_seconds", facts.cycle_seconds);
    if let Some(first) = facts.boot_to_ssh_seconds.first() {
        verdict = verdict.with_metric("sandbox_boot_to_ssh_seconds", *first);
    }
    if let Some(limits) = &facts.limits {
        if let Some(kib) = limits.mem_total_kib {
            verdict = verdict.with_metric("guest_mem_total_mib", kib as f64 / 1024.0);
        }
        if let Some(n) = limits.nproc {
            verdict = verdict.with_metric("guest_nproc", n as f64);
        }
    }
    if let Some(job) = &facts.job {
        verdict = verdict.with_metric("sandbox_job_seconds", job.seconds);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!(
            "image = \"/i\"\nkernel = \"/k\"\njob = [\"make\"]\njob_stdout_contains = [\"ok\"]\n{extra}"
        ))
        .unwrap()
    }

    fn clean_teardown() -> TeardownReport {
        TeardownReport {
            qemu_pid: 9,
            qemu_gone: true,
            overlay: "/tmp/o.qcow2".into(),
            overlay_removed: true,
            ssh_port: 4000,
            port_closed: true,
            helpers_killed: 0,
        }
    }

    fn facts() -> Facts {
        Facts {
            memory_bytes: 4 << 30,
            cpus: 2,
            accel: Some("accelerator TCG".into()),
            boot_to_ssh_seconds: vec![22.0],
            limits: Some(GuestLimits {
                mem_total_kib: Some(4_020_000),
                nproc: Some(2),
                raw: "MemTotal: 4020000 kB\n2\n".into(),
                error: None,
            }),
            job: Some(JobRun {
                command: "make".into(),
                exit_code: Some(0),
                stdout: "ok\n".into(),
                ..JobRun::default()
            }),
            teardowns: vec![clean_teardown()],
            cycle_seconds: 33.0,
            ..Facts::default()
        }
    }

    fn check(extra: &str, change: impl FnOnce(&mut Facts), pass: bool, found_has: &str) {
        let mut f = facts();
        change(&mut f);
        let v = judge(&spec(extra), &f);
        assert_eq!(v.pass, pass, "{v:?}");
        assert!(v.found.contains(found_has), "`{found_has}` not in {v:?}");
    }

    #[test]
    fn each_part_of_the_cycle_can_fail_on_its_own() {
        check("", |_| {}, true, "nproc 2");
        check(
            "",
            |f| f.limits.as_mut().unwrap().mem_total_kib = Some(2_000_000),
            false,
            "MemTotal 1.91 GiB",
        );
        check(
            "",
            |f| f.limits.as_mut().unwrap().nproc = Some(4),
            false,
            "nproc 4",
        );
        check(
            "",
            |f| f.job.as_mut().unwrap().exit_code = Some(2),
            false,
            "job exit code 2",
        );
        check(
            "",
            |f| f.job.as_mut().unwrap().stdout = "fail".into(),
            false,
            "stdout without `ok`",
        );
        check(
            "",
            |f| f.teardowns[0].overlay_removed = false,
            false,
            "removed: NO",
        );
        check(
            "",
            |f| f.teardowns[0].port_closed = false,
            false,
            "closed: NO",
        );
        check("", |f| f.leftover_qemu = vec![77], false, "pids [77]");
        check("", |f| f.new_taps = vec!["tap0".into()], false, "tap0");
        check(
            "",
            |f| f.boot_failures = vec!["QEMU exited".into()],
            false,
            "did not boot: QEMU exited",
        );
    }

    #[test]
    fn isolation_needs_own_markers_visible_and_foreign_ones_not() {
        let isolated = Isolation {
            own_marker_seen_by_a: true,
            own_marker_seen_by_b: true,
            ..Isolation::default()
        };
        let with = |i: Isolation| move |f: &mut Facts| f.isolation = Some(i);
        check("isolation = true", with(isolated.clone()), true, "isolated");
        check(
            "isolation = true",
            with(Isolation {
                a_sees_b: true,
                ..isolated.clone()
            }),
            false,
            "not isolated",
        );
        check(
            "isolation = true",
            with(Isolation {
                own_marker_seen_by_b: false,
                ..isolated
            }),
            false,
            "own marker",
        );
        check("isolation = true", |_| {}, false, "isolation not tested");
    }

    #[test]
    fn records_the_cycle_metrics() {
        let v = judge(&spec(""), &facts());
        assert_eq!(v.metrics["sandbox_cycle_seconds"], 33.0);
        assert_eq!(v.metrics["guest_nproc"], 2.0);
    }
}
