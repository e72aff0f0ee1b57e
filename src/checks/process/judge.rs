//! Judges the process table; parses /proc `stat` text and `cmdline` bytes.

use super::spec::Spec;
use crate::check::Verdict;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub comm: String,
    /// The state letter of /proc/<pid>/stat (R, S, D, Z...); zombies
    /// (exited, not yet reaped) never count as running.
    pub state: char,
    pub cmdline: String,
    /// The validator's own process: it may match by `name` (a self-test),
    /// never by `cmdline_contains` (its arguments may name the service a
    /// profile checks, e.g. `--profile health-checks/postgres.toml`).
    pub is_validator: bool,
}

/// Parses `/proc/<pid>/stat` into (pid, comm, state). The name sits in
/// parentheses and may itself hold spaces and parentheses, so it ends at
/// the last `)`.
pub fn parse_stat(text: &str) -> Option<(u32, String, char)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let state = text[close + 1..].trim_start().chars().next()?;
    Some((pid, text[open + 1..close].to_string(), state))
}

/// The kernel keeps 15 bytes of a name (`comm`); a longer `name` matches
/// by that prefix, so `prometheus-node-exporter` finds `prometheus-node`.
fn name_matches(want: &str, comm: &str) -> bool {
    want == comm || (want.len() > 15 && want.is_char_boundary(15) && &want[..15] == comm)
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
    p.state != 'Z'
        && !(p.is_validator && spec.cmdline_contains.is_some())
        && spec.name.as_ref().is_none_or(|n| name_matches(n, &p.comm))
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
                state: 'S',
                cmdline: "/sbin/init".into(),
                is_validator: false,
            },
            ProcessInfo {
                pid: 42,
                comm: "postgres".into(),
                state: 'S',
                cmdline: "postgres -D /var/lib/pg".into(),
                is_validator: false,
            },
            ProcessInfo {
                pid: 43,
                comm: "postgres".into(),
                state: 'R',
                cmdline: "postgres: checkpointer".into(),
                is_validator: false,
            },
            ProcessInfo {
                pid: 50,
                comm: "synapse".into(),
                state: 'Z',
                cmdline: String::new(),
                is_validator: false,
            },
            ProcessInfo {
                pid: 60,
                comm: "prometheus-node".into(),
                state: 'S',
                cmdline: "/usr/bin/prometheus-node-exporter".into(),
                is_validator: false,
            },
            ProcessInfo {
                pid: 70,
                comm: "spinup-smoke".into(),
                state: 'R',
                cmdline: "spinup-smoke run --profile health-checks/grafana.toml".into(),
                is_validator: true,
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
            "no process matches (of 6 running)",
        );
        check("name = \"nginx\"\nrunning = false", true, "");
        check("name = \"systemd\"\nrunning = false", false, "1 running");
        check("", false, "give `name`");
        assert_eq!(parse_cmdline(b"sleep\x0031\x00"), "sleep 31");
    }

    #[test]
    fn the_validator_matches_by_name_but_never_by_its_command_line() {
        check("name = \"spinup-smoke\"", true, "pids 70");
        check(
            "cmdline_contains = \"grafana\"",
            false,
            "no process matches",
        );
        check("cmdline_contains = \"grafana\"\nrunning = false", true, "");
    }

    #[test]
    fn zombies_do_not_count_as_running() {
        check("name = \"synapse\"", false, "no process matches");
        check("name = \"synapse\"\nrunning = false", true, "");
    }

    #[test]
    fn long_names_match_the_kernels_15_byte_prefix() {
        check("name = \"prometheus-node-exporter\"", true, "pids 60");
        check("name = \"prometheus-nod\"", false, "no process matches");
    }

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        assert_eq!(
            parse_stat("4242 (tmux: server) S 1 4242 4242 0 -1 4194560"),
            Some((4242, "tmux: server".to_string(), 'S'))
        );
        assert_eq!(
            parse_stat("17 (a) b)) Z 1 17"),
            Some((17, "a) b)".to_string(), 'Z'))
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("x (y) R"), None);
    }
}
