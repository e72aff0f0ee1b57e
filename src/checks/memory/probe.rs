//! Reads peaks: a cgroup's peak file or /proc/meminfo with `cat` through
//! the check's executor (this machine, or a host over ssh: a guest
//! measured from inside); or, on this machine only, /proc (each process's
//! parent, name, start time and `VmHWM`) for the selected processes and
//! their descendants, off the async runtime and bounded by the deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::judge::{vm_hwm_kib, Facts, Process};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::os::CommandSpec;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let selects_processes = !spec.pid_files.is_empty() || !spec.names.is_empty() || spec.include_validator;
    match (&spec.cgroup, spec.meminfo, selects_processes) {
        (Some(dir), false, false) => cgroup_peak(dir, ctx).await,
        (None, true, false) => meminfo(ctx).await,
        (None, false, true) => processes_here(spec, ctx).await,
        _ => Err("give one of `cgroup`, `meminfo = true` or processes (`pid_files`, `names`, `include_validator`)".into()),
    }
}

/// Processes are read from this machine's /proc: on another host they
/// would be the wrong machine's, so nothing is claimed there.
async fn processes_here(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    if !ctx.executor.is_local() {
        return Err(format!(
            "processes are read from this machine's /proc, but the check's host is {}: measure it from inside with `cgroup = \"/sys/fs/cgroup/system.slice\"` (its peak) or `meminfo = true`, or run this profile on the host itself",
            ctx.executor.describe()
        ));
    }
    let spec2 = spec.clone();
    let measured = tokio::time::timeout(
        ctx.remaining(),
        tokio::task::spawn_blocking(move || processes(&spec2)),
    )
    .await;
    match measured {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("reading /proc did not finish before the deadline".into()),
    }
}

/// `cat FILE` on the check's host: its text, or why not.
async fn read_on_host(file: &str, ctx: &ProbeContext) -> Result<String, String> {
    let cmd = CommandSpec::new("cat", &[file]);
    match ctx.executor.run(&cmd, ctx.deadline).await {
        Ok(out) if out.exit_code == Some(0) => Ok(out.stdout_text()),
        Ok(out) => Err(out.stderr_text().trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn cgroup_peak(dir: &Path, ctx: &ProbeContext) -> Result<Facts, String> {
    let mut why = Vec::new();
    for name in ["memory.peak", "memory.max_usage_in_bytes"] {
        let file = dir.join(name).display().to_string();
        match read_on_host(&file, ctx).await {
            Ok(text) => {
                let peak_bytes = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{file} holds no byte count"))?;
                return Ok(Facts::Cgroup { file, peak_bytes });
            }
            Err(e) => why.push(e),
        }
    }
    Err(format!(
        "{} has neither memory.peak (cgroup v2, Linux 5.19+) nor memory.max_usage_in_bytes (v1) on {} ({})",
        dir.display(),
        ctx.executor.describe(),
        why.join("; ")
    ))
}

async fn meminfo(ctx: &ProbeContext) -> Result<Facts, String> {
    let text = read_on_host("/proc/meminfo", ctx)
        .await
        .map_err(|e| format!("cannot read /proc/meminfo on {}: {e}", ctx.executor.describe()))?;
    super::judge::parse_meminfo(&text).ok_or_else(|| {
        format!(
            "/proc/meminfo on {} has no MemTotal and MemAvailable",
            ctx.executor.describe()
        )
    })
}

/// A process as /proc shows it.
struct Entry {
    ppid: u32,
    comm: String,
    start_time: Option<u64>,
}

/// `(ppid, comm, start time)` of a /proc/<pid>/stat text.
fn parse_stat(stat: &str) -> Option<(u32, String, Option<u64>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state (3), ppid (4) ... starttime (22).
    let ppid = fields.get(1)?.parse().ok()?;
    Some((ppid, comm, fields.get(19).and_then(|s| s.parse().ok())))
}

fn processes(spec: &Spec) -> Result<Facts, String> {
    let mut table: BTreeMap<u32, Entry> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| format!("cannot read /proc: {e}"))? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some((ppid, comm, start_time)) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        else {
            continue;
        };
        table.insert(pid, Entry { ppid, comm, start_time });
    }
    let mut roots = BTreeSet::new();
    let mut gone = Vec::new();
    for path in pid_files(&spec.pid_files, &mut gone) {
        match std::fs::read_to_string(&path) {
            Err(e) => gone.push(format!("{}: cannot read: {e}", path.display())),
            Ok(text) => {
                let mut words = text.split_whitespace();
                let pid = words.next().and_then(|w| w.parse::<u32>().ok());
                let started = words.next().and_then(|w| w.parse::<u64>().ok());
                match pid.and_then(|p| table.get(&p).map(|e| (p, e))) {
                    Some((p, e)) if started.is_none() || e.start_time == started => {
                        roots.insert(p);
                    }
                    _ => gone.push(format!(
                        "{}: process {} is not running",
                        path.display(),
                        pid.map_or("?".into(), |p| p.to_string())
                    )),
                }
            }
        }
    }
    for name in &spec.names {
        let matching: Vec<u32> = table.iter().filter(|(_, e)| e.comm == *name).map(|(p, _)| *p).collect();
        if matching.is_empty() {
            gone.push(format!("no process named `{name}` is running"));
        }
        roots.extend(matching);
    }
    if spec.include_validator {
        roots.insert(std::process::id());
    }
    // Every root and its descendants.
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (pid, e) in &table {
        children.entry(e.ppid).or_default().push(*pid);
    }
    let mut selected = BTreeSet::new();
    let mut stack: Vec<u32> = roots.into_iter().collect();
    while let Some(pid) = stack.pop() {
        if selected.insert(pid) {
            stack.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    let processes = selected
        .into_iter()
        .filter_map(|pid| {
            let hwm_kib = vm_hwm_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)?;
            Some(Process {
                pid,
                comm: table.get(&pid)?.comm.clone(),
                hwm_kib,
            })
        })
        .collect();
    Ok(Facts::Processes { processes, gone })
}

/// The listed files, and the `*.pid` files of listed directories.
fn pid_files(listed: &[PathBuf], gone: &mut Vec<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in listed {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        gone.push(format!("{}: no *.pid file", path.display()));
                    }
                    out.extend(found);
                }
                Err(e) => gone.push(format!("{}: cannot list: {e}", path.display())),
            }
        } else {
            out.push(path.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::memory::run;

    #[test]
    fn stat_lines_with_spaces_in_the_name() {
        let stat = "42 (my (odd) proc) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(stat), Some((7, "my (odd) proc".into(), Some(98765))));
    }

    /// A real child (`sleep`) under a pid file: its peak counts; a budget
    /// below the measured sum fails; a stale pid file fails.
    #[tokio::test]
    async fn measures_a_real_process_tree() {
        let ctx = ProbeContext::for_tests(10);
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(dir.path().join("sleeper.pid"), format!("{}\n", child.id())).unwrap();
        let spec = |extra: &str| -> Spec {
            toml::from_str(&format!("pid_files = [{:?}]\n{extra}", dir.path().display().to_string())).unwrap()
        };
        let v = run(&spec("max_gib = 8"), &ctx).await;
        assert!(v.pass && v.found.contains("of 1 processes, largest sleep"), "{v:?}");
        let measured = v.metrics["peak_memory_gib"];
        assert!(measured > 0.0, "{v:?}");

        let v = run(&spec("max_gib = 0.0001"), &ctx).await;
        assert!(!v.pass && v.found.contains("sleep"), "{v:?}");

        // The validator's own tree includes the child.
        let v = run(&toml::from_str("include_validator = true\nmax_gib = 100").unwrap(), &ctx).await;
        assert!(v.pass && v.evidence.contains(&format!("{} sleep", child.id())), "{v:?}");

        child.kill().unwrap();
        child.wait().unwrap();
        let v = run(&spec("max_gib = 8"), &ctx).await;
        assert!(!v.pass && v.found.contains("sleeper.pid: process") && v.found.contains("is not running"), "{v:?}");

        let v = run(&toml::from_str("names = [\"no-such-proc-x\"]\nmax_gib = 8").unwrap(), &ctx).await;
        assert!(!v.pass && v.found.contains("no process named `no-such-proc-x`"), "{v:?}");
        let v = run(&toml::from_str(&format!("cgroup = {:?}\nmax_gib = 8", dir.path().display().to_string())).unwrap(), &ctx).await;
        assert!(!v.pass && v.found.contains("neither memory.peak"), "{v:?}");
        let v = run(&toml::from_str("max_gib = 8").unwrap(), &ctx).await;
        assert!(!v.pass && v.found.contains("give one of `cgroup`, `meminfo = true` or processes"), "{v:?}");
        // This machine's memory in use, a sample.
        let v = run(&toml::from_str("meminfo = true\nmax_gib = 100000").unwrap(), &ctx).await;
        assert!(v.pass && v.found.contains("memory in use"), "{v:?}");
    }

    #[tokio::test]
    async fn another_hosts_memory_is_not_claimed_from_this_machine() {
        struct Remote;
        impl crate::os::CommandExecutor for Remote {
            fn run<'a>(
                &'a self,
                _spec: &'a crate::os::CommandSpec,
                _deadline: std::time::Instant,
            ) -> crate::os::exec::ExecFuture<'a> {
                Box::pin(async { Err(crate::os::ExecError::Spawn("not here".into())) })
            }
            fn describe(&self) -> String {
                "ssh rave@p6:22".into()
            }
            fn is_local(&self) -> bool {
                false
            }
        }
        let spec: Spec = toml::from_str("include_validator = true\nmax_gib = 8").unwrap();
        let mut ctx = ProbeContext::for_tests(5);
        ctx.executor = std::sync::Arc::new(Remote);
        let err = probe(&spec, &ctx).await.unwrap_err();
        assert!(err.contains("ssh rave@p6:22") && err.contains("measure it from inside"), "{err}");
    }

    /// A guest measured from inside, through its executor: its cgroup's
    /// peak (v2, else v1), or its memory in use; each fails for its reason.
    #[tokio::test]
    async fn a_guest_is_measured_from_inside_through_its_executor() {
        let cgroup: Spec = toml::from_str("cgroup = \"/sys/fs/cgroup/system.slice\"\nmax_gib = 8").unwrap();
        let meminfo: Spec = toml::from_str("meminfo = true\nmax_gib = 1").unwrap();
        let guest = |stdout: &str, code: i32| {
            let fake = crate::os::FakeExecutor::new();
            fake.answer("cat", code, stdout, if code == 0 { "" } else { "cat: No such file or directory" });
            let mut ctx = ProbeContext::for_tests(5);
            ctx.executor = std::sync::Arc::new(fake);
            ctx
        };
        let v = run(&cgroup, &guest("1610612736\n", 0)).await;
        assert!(v.pass && v.found == "1.50 GiB: cgroup peak (/sys/fs/cgroup/system.slice/memory.peak)", "{v:?}");
        let v = run(&cgroup, &guest("9663676416\n", 0)).await;
        assert!(!v.pass && v.found.starts_with("9.00 GiB"), "{v:?}");
        let v = run(&cgroup, &guest("", 1)).await;
        assert!(!v.pass && v.found.contains("has neither memory.peak") && v.found.contains("on fake"), "{v:?}");
        let v = run(&cgroup, &guest("max\n", 0)).await;
        assert!(!v.pass && v.found.contains("holds no byte count"), "{v:?}");

        let info = "MemTotal:        2000000 kB\nMemFree:          100000 kB\nMemAvailable:    1000000 kB\n";
        let v = run(&meminfo, &guest(info, 0)).await;
        assert!(v.pass && v.found.contains("memory in use (MemTotal - MemAvailable"), "{v:?}");
        let over: Spec = toml::from_str("meminfo = true\nmax_gib = 0.5").unwrap();
        let v = run(&over, &guest(info, 0)).await;
        assert!(!v.pass && v.found.starts_with("0.95 GiB"), "{v:?}");
        let v = run(&meminfo, &guest("MemTotal: 1 kB\n", 0)).await;
        assert!(!v.pass && v.found.contains("no MemTotal and MemAvailable"), "{v:?}");
        let both: Spec = toml::from_str("meminfo = true\ncgroup = \"/c\"\nmax_gib = 1").unwrap();
        let v = run(&both, &guest(info, 0)).await;
        assert!(!v.pass && v.found.contains("give one of"), "{v:?}");
    }
}
