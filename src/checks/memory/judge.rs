//! Judges peak memory against its budget. A sum of per-process peaks is at
//! least the peak of their total (the peaks need not coincide), so staying
//! within the budget by it proves the total stayed within it too.

use super::spec::Spec;
use crate::check::Verdict;

/// One measured process.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
    pub hwm_kib: u64,
}

/// What the probe measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    /// A cgroup's peak counter, in bytes (and the file it came from).
    Cgroup { file: String, peak_bytes: u64 },
    /// The selected processes; `gone` names selectors that matched nothing
    /// running (a pid file of an exited process, a name not found).
    Processes { processes: Vec<Process>, gone: Vec<String> },
    /// /proc/meminfo's MemTotal and MemAvailable: memory in use now.
    InUse { total_kib: u64, available_kib: u64 },
}

/// MemTotal and MemAvailable of a /proc/meminfo text.
pub fn parse_meminfo(text: &str) -> Option<Facts> {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(Facts::InUse {
        total_kib: field("MemTotal:")?,
        available_kib: field("MemAvailable:")?,
    })
}

const GIB: f64 = (1u64 << 30) as f64;

/// `VmHWM` of a /proc/<pid>/status text, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn judge(spec: &Spec, facts: &Result<Facts, String>) -> Verdict {
    let expected = format!("peak memory at most {} GiB", spec.max_gib);
    let (bytes, what, evidence, problems) = match facts {
        Err(e) => return Verdict::fail(expected, e.clone()),
        Ok(Facts::Cgroup { file, peak_bytes }) => (*peak_bytes, format!("cgroup peak ({file})"), String::new(), Vec::new()),
        Ok(Facts::InUse { total_kib, available_kib }) => (
            total_kib.saturating_sub(*available_kib) * 1024,
            "memory in use (MemTotal - MemAvailable; a sample, not a peak)".to_string(),
            format!("MemTotal {total_kib} kB, MemAvailable {available_kib} kB"),
            Vec::new(),
        ),
        Ok(Facts::Processes { processes, gone }) => {
            let total: u64 = processes.iter().map(|p| p.hwm_kib * 1024).sum();
            let mut by_size: Vec<&Process> = processes.iter().collect();
            by_size.sort_by(|a, b| b.hwm_kib.cmp(&a.hwm_kib).then(a.pid.cmp(&b.pid)));
            let largest: Vec<String> = by_size
                .iter()
                .take(3)
                .map(|p| format!("{} {} MiB", p.comm, p.hwm_kib / 1024))
                .collect();
            let evidence = by_size
                .iter()
                .map(|p| format!("{} {} VmHWM {} KiB", p.pid, p.comm, p.hwm_kib))
                .collect::<Vec<_>>()
                .join("\n");
            let mut problems: Vec<String> = gone.to_vec();
            if processes.is_empty() {
                problems.push("no process selected (check `pid_files`, `names`)".into());
            }
            (
                total,
                format!("sum of the peaks (VmHWM) of {} processes, largest {}", processes.len(), largest.join(", ")),
                evidence,
                problems,
            )
        }
    };
    let gib = bytes as f64 / GIB;
    let found = format!("{gib:.2} GiB: {what}");
    let verdict = if !problems.is_empty() {
        Verdict::fail(expected, format!("{found}; {}", problems.join("; ")))
    } else if gib <= spec.max_gib {
        Verdict::pass(expected, found)
    } else {
        Verdict::fail(expected, found)
    };
    verdict
        .with_evidence(evidence)
        .with_metric("peak_memory_bytes", bytes as f64)
        .with_metric("peak_memory_gib", (gib * 1000.0).round() / 1000.0)
        .with_metric("budget_gib", spec.max_gib)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(max_gib: f64) -> Spec {
        toml::from_str(&format!("include_validator = true\nmax_gib = {max_gib}")).unwrap()
    }

    fn procs(kib: &[u64], gone: &[&str]) -> Result<Facts, String> {
        Ok(Facts::Processes {
            processes: kib
                .iter()
                .enumerate()
                .map(|(i, k)| Process { pid: i as u32 + 1, comm: format!("p{i}"), hwm_kib: *k })
                .collect(),
            gone: gone.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn the_sum_of_peaks_against_the_budget() {
        let gib = 1 << 20;
        for (facts, max, pass, found_has) in [
            (procs(&[3 * gib, 4 * gib], &[]), 8.0, true, "7.00 GiB: sum of the peaks (VmHWM) of 2 processes, largest p1 4096 MiB, p0 3072 MiB"),
            (procs(&[5 * gib, 4 * gib], &[]), 8.0, false, "9.00 GiB"),
            (procs(&[5 * gib, 4 * gib], &[]), 16.0, true, "9.00 GiB"),
            (procs(&[1024], &["run/synapse.pid: process 42 is not running"]), 8.0, false, "run/synapse.pid: process 42 is not running"),
            (procs(&[], &[]), 8.0, false, "no process selected"),
            (Ok(Facts::Cgroup { file: "/sys/fs/cgroup/rave/memory.peak".into(), peak_bytes: 9 << 30 }), 8.0, false, "9.00 GiB: cgroup peak (/sys/fs/cgroup/rave/memory.peak)"),
            (Ok(Facts::Cgroup { file: "m".into(), peak_bytes: 1 << 30 }), 8.0, true, "1.00 GiB"),
            (Err("cannot read /proc".into()), 8.0, false, "cannot read /proc"),
        ] {
            let v = judge(&spec(max), &facts);
            assert_eq!(v.pass, pass, "{v:?}");
            assert!(v.found.contains(found_has), "`{found_has}` not in {v:?}");
        }
        assert_eq!(vm_hwm_kib("Name:\tx\nVmHWM:\t  12345 kB\nVmRSS: 1 kB\n"), Some(12345));
        assert_eq!(vm_hwm_kib("Name:\tkthreadd\n"), None);
    }
}
