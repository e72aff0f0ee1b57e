//! Lists the processes of the check's host from /proc, bounded by the
//! deadline: on this machine directly, off the async runtime; on another
//! host through its executor, with one `sh -c` that prints every
//! `/proc/<pid>/stat` and `/proc/<pid>/cmdline` (no `ps`), parsed the same
//! way. The listing's own processes there are left out.

use super::judge;
use super::judge::ProcessInfo;
use super::spec::Spec;
use crate::check::ProbeContext;

/// Every process of this host, or why the table could not be read. The
/// spec selects nothing here: the judge matches.
pub async fn probe(_spec: &Spec, ctx: &ProbeContext) -> Result<Vec<ProcessInfo>, String> {
    if !ctx.executor.is_local() {
        return list_remote(ctx).await;
    }
    let listed =
        tokio::time::timeout(ctx.remaining(), tokio::task::spawn_blocking(list_processes)).await;
    match listed {
        Ok(Ok(Ok(processes))) => Ok(processes),
        Ok(Ok(Err(e))) => Err(format!("cannot read /proc: {e}")),
        _ => Err("listing /proc did not finish before the deadline".into()),
    }
}

/// Every process of this host (pid, comm, state, cmdline), this one marked
/// as the validator; vanished ones are skipped.
pub fn list_processes() -> std::io::Result<Vec<ProcessInfo>> {
    let own = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, comm, state)) = judge::parse_stat(&stat) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        out.push(ProcessInfo {
            pid,
            comm,
            state,
            cmdline: judge::parse_cmdline(&cmdline),
            is_validator: pid == own,
        });
    }
    Ok(out)
}

/// Marks the listing's own processes (the shell and, through its command
/// line, the wrappers that started it).
const LISTING_MARK: &str = "spinup-smoke-process-listing";
const CMDLINES: &str = "@@spinup-smoke-cmdlines@@";

/// The shell's pid, every stat line, a separator, then one NUL-ended
/// `/proc/<pid>/cmdline:<arg>` record per argument (GNU grep -z).
fn listing_script() -> String {
    format!(
        "# {LISTING_MARK}\necho $$\ncat /proc/[0-9]*/stat 2>/dev/null\nprintf '\\0{CMDLINES}\\0'\ngrep -a -z -H '' /proc/[0-9]*/cmdline 2>/dev/null\ntrue\n"
    )
}

async fn list_remote(ctx: &ProbeContext) -> Result<Vec<ProcessInfo>, String> {
    let script = listing_script();
    let spec = crate::os::CommandSpec::new("sh", &["-c", &script]);
    let out = ctx
        .executor
        .run(&spec, ctx.deadline)
        .await
        .map_err(|e| format!("cannot list the processes of {}: {e}", ctx.executor.describe()))?;
    if out.exit_code != Some(0) {
        return Err(format!(
            "listing /proc on {} failed (exit code {:?}): {}",
            ctx.executor.describe(),
            out.exit_code,
            out.stderr_text().trim()
        ));
    }
    Ok(parse_listing(&out.stdout))
}

/// Pure: the processes of a remote listing (`listing_script`'s output).
fn parse_listing(output: &[u8]) -> Vec<ProcessInfo> {
    let separator = format!("\0{CMDLINES}\0");
    let split = output
        .windows(separator.len())
        .position(|w| w == separator.as_bytes());
    let (stats, cmdlines) = match split {
        Some(at) => (&output[..at], &output[at + separator.len()..]),
        None => (output, &[][..]),
    };
    let stats = String::from_utf8_lossy(stats);
    let mut lines = stats.lines();
    let own: Option<u32> = lines.next().and_then(|l| l.trim().parse().ok());
    let mut args: std::collections::HashMap<u32, Vec<u8>> = std::collections::HashMap::new();
    for record in cmdlines.split(|b| *b == 0) {
        let Some(rest) = record.strip_prefix(b"/proc/") else {
            continue;
        };
        let Some(slash) = rest.iter().position(|b| *b == b'/') else {
            continue;
        };
        let Some(pid) = std::str::from_utf8(&rest[..slash])
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(arg) = rest[slash..].strip_prefix(b"/cmdline:") else {
            continue;
        };
        let line = args.entry(pid).or_default();
        line.extend_from_slice(arg);
        line.push(0);
    }
    let mut out = Vec::new();
    for stat in lines {
        let Some((pid, comm, state)) = judge::parse_stat(stat) else {
            continue;
        };
        let ppid: Option<u32> = stat
            .rfind(')')
            .and_then(|close| stat[close + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        let cmdline = judge::parse_cmdline(args.get(&pid).map_or(&[][..], Vec::as_slice));
        let ours = own.is_some() && (Some(pid) == own || ppid == own);
        if ours || cmdline.contains(LISTING_MARK) {
            continue;
        }
        out.push(ProcessInfo {
            pid,
            comm,
            state,
            cmdline,
            is_validator: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::process::run;
    use crate::os::exec::ExecFuture;
    use crate::os::{CommandExecutor, CommandSpec, LocalExecutor};

    /// Runs here but is not local: the probe takes the executor's path.
    struct ThroughExecutor;
    impl CommandExecutor for ThroughExecutor {
        fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: std::time::Instant) -> ExecFuture<'a> {
            LocalExecutor.run(spec, deadline)
        }
        fn describe(&self) -> String {
            "through the executor".into()
        }
    }

    /// The listing through an executor finds a real process with its exact
    /// command line and leaves its own processes out.
    #[tokio::test]
    async fn the_listing_through_an_executor_reads_proc_like_the_direct_one() {
        let marker = format!("5{}.75", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg(&marker)
            .spawn()
            .unwrap();
        let mut ctx = ProbeContext::for_tests(10);
        ctx.executor = std::sync::Arc::new(ThroughExecutor);
        let listed = probe(&toml::from_str("name = \"x\"").unwrap(), &ctx).await.unwrap();
        let direct = list_processes().unwrap();
        let mine = listed.iter().find(|p| p.pid == child.id()).expect("the sleeper is listed");
        let want = direct.iter().find(|p| p.pid == child.id()).unwrap();
        // The state letter may change between the two listings (a sleeper
        // just started is R, then S); everything else must agree.
        let same = |p: &ProcessInfo| (p.pid, p.comm.clone(), p.cmdline.clone(), p.is_validator);
        assert_eq!(same(mine), same(want));
        assert_ne!(mine.state, 'Z', "{mine:?}");
        assert_eq!(mine.cmdline, format!("sleep {marker}"));
        assert!(listed.iter().all(|p| !p.cmdline.contains(LISTING_MARK)));
        assert!(listed.iter().any(|p| p.pid == 1), "pid 1 is listed");
        let v = run(&toml::from_str(&format!("cmdline_contains = \"{marker}\"")).unwrap(), &ctx).await;
        assert!(v.pass, "{v:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let v = run(&toml::from_str(&format!("cmdline_contains = \"{marker}\"")).unwrap(), &ctx).await;
        assert!(!v.pass, "{v:?}");
    }

    #[test]
    fn listings_parse_with_odd_names_and_arguments() {
        let out = b"100\n1 (init) S 0 1\n7 (a) b) c) R 1 7\n100 (sh) S 1 100\n101 (cat) R 100 100\n9 (tmux: server) S 1 9\n\0@@spinup-smoke-cmdlines@@\0/proc/1/cmdline:/sbin/init\0/proc/7/cmdline:x\0/proc/7/cmdline:a b\0/proc/100/cmdline:sh\0/proc/9/cmdline:tmux\0/proc/9/cmdline:# spinup-smoke-process-listing\0";
        let got = parse_listing(out);
        let seen: Vec<(u32, &str, char, &str)> = got
            .iter()
            .map(|p| (p.pid, p.comm.as_str(), p.state, p.cmdline.as_str()))
            .collect();
        assert_eq!(seen, vec![(1, "init", 'S', "/sbin/init"), (7, "a) b) c", 'R', "x a b")]);
        assert!(parse_listing(b"").is_empty());
    }

    #[tokio::test]
    async fn finds_a_real_process_and_misses_an_absent_one() {
        // A duration unique to this test process, so a parallel run's
        // sleeper cannot be mistaken for ours.
        let marker = format!("3{}.5", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg(&marker)
            .spawn()
            .unwrap();
        let ctx = ProbeContext::for_tests(5);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        let v = run(
            &spec(&format!(
                "name = \"sleep\"\ncmdline_contains = \"{marker}\""
            )),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.contains(&child.id().to_string()), "{v:?}");
        let v = run(&spec("name = \"spinup-no-such\""), &ctx).await;
        assert!(!v.pass && v.found.contains("no process"), "{v:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let v = run(
            &spec(&format!(
                "cmdline_contains = \"sleep {marker}\"\nrunning = false"
            )),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
    }

    #[tokio::test]
    async fn the_validator_matches_by_name_but_not_by_its_command_line() {
        // This test binary's own command line holds its path; no other
        // process does, so nothing may match it.
        let own = std::env::current_exe().unwrap().display().to_string();
        let spec = toml::from_str::<Spec>(&format!("cmdline_contains = \"{own}\"")).unwrap();
        let ctx = ProbeContext::for_tests(5);
        let v = run(&spec, &ctx).await;
        assert!(!v.pass && v.found.contains("no process"), "{v:?}");
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let spec = toml::from_str::<Spec>(&format!("name = \"{}\"", comm.trim())).unwrap();
        let v = run(&spec, &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(
            v.evidence.contains(&format!("pid {} ", std::process::id())),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn an_exited_unreaped_child_is_not_running() {
        let marker = format!("2{}.25", std::process::id());
        let mut child = std::process::Command::new("sleep")
            .arg(&marker)
            .spawn()
            .unwrap();
        let spec = toml::from_str::<Spec>(&format!("cmdline_contains = \"{marker}\"")).unwrap();
        let ctx = ProbeContext::for_tests(5);
        assert!(run(&spec, &ctx).await.pass);
        // SAFETY: plain signal to our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        // Not reaped yet: the child is a zombie whose cmdline is empty but
        // whose comm is still `sleep`.
        let by_name = toml::from_str::<Spec>("name = \"sleep\"").unwrap();
        let zombie = child.id();
        let mut seen_zombie = false;
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{zombie}/stat")).unwrap_or_default();
            if judge::parse_stat(&stat).is_some_and(|(_, _, s)| s == 'Z') {
                seen_zombie = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(seen_zombie, "the killed child never became a zombie");
        let v = run(&by_name, &ctx).await;
        assert!(
            !v.evidence.contains(&format!("pid {zombie} ")),
            "a zombie was counted as running: {v:?}"
        );
        child.wait().unwrap();
    }
}
