//! Processes: the one place that signals a process group, a guard that
//! kills a group when dropped, liveness from /proc, and a blocking run with
//! a deadline for the few synchronous callers (host facts, helper scripts).

use std::io;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Sends `signal` to the process group `pgid` (a group leader's pid).
/// Signalling a group that is gone is harmless.
pub fn signal_group(pgid: u32, signal: i32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Kills a process group when dropped (cancellation, timeout, panic).
#[derive(Debug)]
pub struct GroupGuard(Option<u32>);

impl GroupGuard {
    /// Guards the group led by `leader` (a child spawned with `process_group(0)`).
    pub fn new(leader: Option<u32>) -> GroupGuard {
        GroupGuard(leader)
    }
    /// Stops guarding: the group outlives the guard.
    pub fn disarm(&mut self) -> Option<u32> {
        self.0.take()
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            signal_group(pgid, libc::SIGKILL);
        }
    }
}

/// Whether a live (not zombie) process has this pid.
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// For a child's `pre_exec`, with `parent` the spawning process's pid: the
/// child gets SIGKILL when the thread that spawned it ends
/// (`PR_SET_PDEATHSIG`, which no drop guard needs: it holds on SIGKILL
/// too), and exits at once if its parent died between fork and this call
/// (then no signal would ever come). Only async-signal-safe calls.
pub fn die_with_parent(parent: u32) -> io::Result<()> {
    // SAFETY: prctl, getppid and _exit are async-signal-safe.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() as u32 != parent {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// Starts `command` as the leader of a new process group that dies with
/// this thread (`PR_SET_PDEATHSIG`): a validator or demo killed mid-step
/// leaves no helper behind. The guard kills the group when dropped.
fn spawn_guarded(command: &mut Command) -> io::Result<(Child, GroupGuard)> {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    let parent = std::process::id();
    // SAFETY: die_with_parent makes only async-signal-safe calls; nothing
    // else runs in the child between fork and exec.
    unsafe {
        command.pre_exec(move || die_with_parent(parent));
    }
    let child = command.spawn()?;
    let guard = GroupGuard::new(Some(child.id()));
    Ok((child, guard))
}

/// Waits for `child` until `deadline`; past it the group goes (the guard).
fn wait_until(child: &mut Child, guard: GroupGuard, timeout: Duration) -> io::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            drop(guard);
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no exit within {:.1}s; its process group was killed",
                    timeout.as_secs_f64()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The leader exited; whatever it left in its group goes too.
    drop(guard);
    Ok(status)
}

/// Runs `command` (with the stdio the caller set) in a process group of its
/// own and kills the whole group if it has not finished within `timeout`.
pub fn status_within(mut command: Command, timeout: Duration) -> io::Result<ExitStatus> {
    let (mut child, guard) = spawn_guarded(&mut command)?;
    wait_until(&mut child, guard, timeout)
}

/// Runs `command` in a process group of its own, capturing its output, and
/// kills the whole group if it has not finished within `timeout`.
pub fn output_within(mut command: Command, timeout: Duration) -> io::Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut child, guard) = spawn_guarded(&mut command)?;
    // Readers on threads, so a chatty child cannot block on a full pipe.
    let read = |pipe: Option<Box<dyn io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn io::Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn io::Read + Send>),
    );
    let status = wait_until(&mut child, guard, timeout)?;
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_within_its_deadline_returns_its_output() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = output_within(c, Duration::from_secs(10)).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_command_past_its_deadline_is_killed_with_its_group() {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & echo $!; wait"]);
        let started = Instant::now();
        let err = output_within(c, Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
