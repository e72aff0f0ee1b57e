//! `[check.process]`: whether processes matching a name or command line are
//! running on this host, from /proc.

use serde::Deserialize;

use crate::judge::{self, process::ProcessInfo, Verdict};
use crate::probe::ProbeContext;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Exact process name (`/proc/<pid>/comm`, at most 15 characters).
    #[serde(default)]
    pub name: Option<String>,
    /// A substring of the full command line.
    #[serde(default)]
    pub cmdline_contains: Option<String>,
    /// Expect it running (default) or not running.
    #[serde(default = "yes")]
    pub running: bool,
    /// At least this many matching processes (default 1).
    #[serde(default)]
    pub min_count: Option<usize>,
}

fn yes() -> bool {
    true
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let listed =
        tokio::time::timeout(ctx.remaining(), tokio::task::spawn_blocking(list_processes)).await;
    match listed {
        Ok(Ok(Ok(processes))) => judge::process::judge(spec, &processes),
        Ok(Ok(Err(e))) => Verdict::probe_error(
            "the process table can be read",
            format!("cannot read /proc: {e}"),
        ),
        _ => Verdict::probe_error(
            "the process table can be read",
            "listing /proc did not finish before the deadline",
        ),
    }
}

/// Every process of this host (pid, comm, cmdline); vanished ones are skipped.
pub fn list_processes() -> std::io::Result<Vec<ProcessInfo>> {
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
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        out.push(ProcessInfo {
            pid,
            comm: comm.trim_end().to_string(),
            cmdline: judge::process::parse_cmdline(&cmdline),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = probe(
            &spec(&format!(
                "name = \"sleep\"\ncmdline_contains = \"{marker}\""
            )),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.contains(&child.id().to_string()), "{v:?}");
        let v = probe(&spec("name = \"spinup-no-such\""), &ctx).await;
        assert!(!v.pass && v.found.contains("no process"), "{v:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let v = probe(
            &spec(&format!(
                "cmdline_contains = \"sleep {marker}\"\nrunning = false"
            )),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
    }
}
