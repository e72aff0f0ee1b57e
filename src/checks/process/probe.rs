//! Lists the processes of this host from /proc, off the async runtime and
//! bounded by the deadline.

use super::judge;
use super::judge::ProcessInfo;
use super::spec::Spec;
use crate::check::ProbeContext;

/// Every process of this host, or why the table could not be read. The
/// spec selects nothing here: the judge matches.
pub async fn probe(_spec: &Spec, ctx: &ProbeContext) -> Result<Vec<ProcessInfo>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::process::run;

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
