//! Judges the process table; parses /proc cmdline bytes.

use super::Verdict;
use crate::probe::process::Spec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub comm: String,
    pub cmdline: String,
}

/// NUL-separated argv -> a space-separated line.
pub fn parse_cmdline(bytes: &[u8]) -> String {
    bytes
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn matches(spec: &Spec, p: &ProcessInfo) -> bool {
    spec.name.as_ref().is_none_or(|n| &p.comm == n)
        && spec
            .cmdline_contains
            .as_ref()
            .is_none_or(|c| p.cmdline.contains(c.as_str()))
}

pub fn judge(spec: &Spec, processes: &[ProcessInfo]) -> Verdict {
    let what = match (&spec.name, &spec.cmdline_contains) {
        (Some(n), Some(c)) => format!("process `{n}` with {c:?} in its command line"),
        (Some(n), None) => format!("process `{n}`"),
        (None, Some(c)) => format!("a process with {c:?} in its command line"),
        (None, None) => {
            return Verdict::fail("a process selector", "give `name` or `cmdline_contains`")
        }
    };
    let found: Vec<&ProcessInfo> = processes.iter().filter(|p| matches(spec, p)).collect();
    let evidence = found
        .iter()
        .take(20)
        .map(|p| format!("pid {} {}: {}", p.pid, p.comm, p.cmdline))
        .collect::<Vec<_>>()
        .join("\n");
    let found_text = if found.is_empty() {
        format!("no process matches (of {} running)", processes.len())
    } else {
        format!(
            "{} running (pids {})",
            found.len(),
            found
                .iter()
                .take(8)
                .map(|p| p.pid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let v = if spec.running {
        let min = spec.min_count.unwrap_or(1).max(1);
        let expected = format!("at least {min} {what} running");
        if found.len() >= min {
            Verdict::pass(expected, found_text)
        } else {
            Verdict::fail(expected, found_text)
        }
    } else {
        let expected = format!("no {what} running");
        if found.is_empty() {
            Verdict::pass(expected, found_text)
        } else {
            Verdict::fail(expected, found_text)
        }
    };
    v.with_evidence(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn procs() -> Vec<ProcessInfo> {
        vec![
            ProcessInfo {
                pid: 1,
                comm: "systemd".into(),
                cmdline: "/sbin/init".into(),
            },
            ProcessInfo {
                pid: 42,
                comm: "postgres".into(),
                cmdline: "postgres -D /var/lib/pg".into(),
            },
            ProcessInfo {
                pid: 43,
                comm: "postgres".into(),
                cmdline: "postgres: checkpointer".into(),
            },
        ]
    }

    fn check(spec_text: &str, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(spec_text).unwrap();
        let v = judge(&spec, &procs());
        assert_eq!(v.pass, pass, "{spec_text}: {v:?}");
        assert!(v.found.contains(found), "{spec_text}: {:?}", v.found);
    }

    #[test]
    fn cases() {
        check("name = \"postgres\"", true, "2 running (pids 42, 43)");
        check("name = \"postgres\"\nmin_count = 3", false, "2 running");
        check("cmdline_contains = \"checkpointer\"", true, "pids 43");
        check(
            "name = \"nginx\"",
            false,
            "no process matches (of 3 running)",
        );
        check("name = \"nginx\"\nrunning = false", true, "");
        check("name = \"systemd\"\nrunning = false", false, "1 running");
        check("", false, "give `name`");
        assert_eq!(parse_cmdline(b"sleep\x0031\x00"), "sleep 31");
    }
}
