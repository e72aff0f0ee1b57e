//! Starting, finding and stopping the demo's processes. Each child runs in
//! its own process group with its output in `logs/<name>.log`; its pid and
//! start time go to `run/<name>.pid`, so `down` (even after a crash) stops
//! exactly what `up` started and never a process that reused the pid.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spinup_smoke::error::UserError;
use spinup_smoke::os::process::signal_group;

/// What to start.
pub struct Launch<'a> {
    pub name: &'a str,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

pub fn log_path(state: &Path, name: &str) -> PathBuf {
    state.join("logs").join(format!("{name}.log"))
}

/// The last `lines` lines of a component's log, for error messages.
pub fn log_tail(state: &Path, name: &str, lines: usize) -> String {
    let text = std::fs::read_to_string(log_path(state, name)).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n    ");
    if tail.is_empty() {
        "(the log is empty)".into()
    } else {
        format!("    {tail}")
    }
}

/// Field 22 of /proc/<pid>/stat: the start time, which tells a process
/// from a later one with the same pid.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

pub use spinup_smoke::os::process::process_alive as alive;

pub fn spawn(state: &Path, launch: &Launch) -> Result<u32, UserError> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(state, launch.name))
        .map_err(|e| UserError::new(format!("cannot open the log of {}: {e}", launch.name)))?;
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| UserError::new(e.to_string()))?)
        .stderr(log)
        .process_group(0);
    if let Some(dir) = &launch.cwd {
        cmd.current_dir(dir);
    }
    let child = cmd.spawn().map_err(|e| {
        UserError::new(format!(
            "cannot start {} ({}): {e}",
            launch.name,
            launch.program.display()
        ))
        .hint("run ./scripts/setup.sh to install the demo's components")
    })?;
    let pid = child.id();
    // The child outlives this handle; `down` stops it by pid.
    drop(child);
    let record = format!("{pid} {}\n", start_time(pid).unwrap_or(0));
    std::fs::write(
        state.join("run").join(format!("{}.pid", launch.name)),
        record,
    )
    .map_err(|e| UserError::new(format!("cannot record the pid of {}: {e}", launch.name)))?;
    Ok(pid)
}

/// Stops every recorded process group: SIGTERM, then SIGKILL after `grace`.
pub fn stop_recorded(state: &Path, grace: Duration) -> Vec<String> {
    let mut stopped = Vec::new();
    let Ok(entries) = std::fs::read_dir(state.join("run")) else {
        return stopped;
    };
    let mut targets = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut fields = text.split_whitespace();
        let (Some(pid), Some(started)) = (
            fields.next().and_then(|p| p.parse::<u32>().ok()),
            fields.next().and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        // Only the process we started: same pid and same start time.
        if alive(pid) && start_time(pid) == Some(started) {
            signal_group(pid, libc::SIGTERM);
            targets.push((name, pid));
        }
    }
    let deadline = Instant::now() + grace;
    while targets.iter().any(|(_, pid)| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (name, pid) in targets {
        if alive(pid) {
            signal_group(pid, libc::SIGKILL);
        }
        stopped.push(name);
    }
    stopped
}

/// Kills what a crashed `up` left running unrecorded: every process whose
/// command line names `state` or that works inside it (a setup step such
/// as `initdb` and its bootstrap backend, orphaned when the `runuser` above
/// them died), except this process and its ancestors.
/// Waits up to `grace` for them to go; returns how many there were.
pub fn stop_strays(state: &Path, grace: Duration) -> usize {
    let names: Vec<String> = [Some(state.to_path_buf()), state.canonicalize().ok()]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let mut spared = Vec::new();
    let mut pid = std::process::id();
    while pid > 1 && !spared.contains(&pid) {
        spared.push(pid);
        pid = parent_of(pid).unwrap_or(0);
    }
    let mut strays = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if spared.contains(&pid) || !alive(pid) {
            continue;
        }
        let line = std::fs::read(entry.path().join("cmdline"))
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(entry.path().join("cwd"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if names
            .iter()
            .any(|n| names_path(&line, n) || names_path(&cwd, n))
        {
            // SAFETY: kill(2) on a process that names this stack's state.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            strays.push(pid);
        }
    }
    let deadline = Instant::now() + grace;
    while strays.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    strays.len()
}

/// Whether `text` (a command line) holds `path` as a whole path or the
/// start of one (`/x/state`, `/x/state/pg`, `-D=/x/state`), not as part of
/// another name (`/x/state-keys`).
fn names_path(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + path.len()..].chars().next();
        matches!(before, None | Some(' ' | '=' | '"' | '\''))
            && matches!(after, None | Some('/' | ' ' | '"' | '\''))
    })
}

/// The parent of `pid`, from /proc.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs a short setup command to completion (initdb, key generation...).
pub fn run_to_end(
    state: &Path,
    name: &str,
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<(), UserError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(state, name))
        .map_err(|e| UserError::new(format!("cannot open the log of {name}: {e}")))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| UserError::new(e.to_string()))?)
        .stderr(log);
    match spinup_smoke::os::process::status_within(command, timeout) {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(UserError::new(format!(
            "{name}: `{program} {}` failed ({status}); log tail:\n{}",
            args.join(" "),
            log_tail(state, name, 15)
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(UserError::new(format!(
            "{name}: `{program}` did not finish within {}s",
            timeout.as_secs()
        ))),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Err(UserError::new(format!("{name}: cannot run {program}: {e}"))
                .hint("run ./scripts/setup.sh first"))
        }
        Err(e) => Err(UserError::new(format!("{name}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::names_path;

    #[test]
    fn a_path_is_named_whole_or_as_a_prefix_of_one() {
        for (text, path, named) in [
            ("initdb -D /x/state/postgres/data -U a", "/x/state", true),
            ("postgres --config=/x/state", "/x/state", true),
            ("/x/state", "/x/state", true),
            ("verify --pubkey /x/state-keys/demo.pub", "/x/state", false),
            ("cat /y/x/state/f", "/x/state", false),
            ("sh -c 'ls .demo'", ".demo", true),
            ("spinup-smoke-demo up --state .demo-2", ".demo", false),
        ] {
            assert_eq!(names_path(text, path), named, "{text} / {path}");
        }
    }
}
