//! The one door through which checks run programs: the `CommandExecutor`
//! trait. `LocalExecutor` runs on this host in its own process group and
//! kills the whole group at the deadline; tests use `FakeExecutor`; remote
//! targets (ssh, a VM) implement the same trait.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

pub use super::process::process_alive;
use super::process::GroupGuard;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<Vec<u8>>,
}

impl CommandSpec {
    pub fn new(program: impl Into<String>, args: &[&str]) -> CommandSpec {
        CommandSpec {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..CommandSpec::default()
        }
    }
    /// The command line as a person would type it (for evidence).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    /// `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
}

impl CommandOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The program could not be started (not found, not executable).
    Spawn(String),
    /// The host cannot be reached or refused us (host key, authentication,
    /// no answer): the command never started there.
    Connection(String),
    /// The deadline passed; the process group was killed.
    TimedOut {
        after: Duration,
        partial: CommandOutput,
    },
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Spawn(e) => write!(f, "could not start: {e}"),
            ExecError::Connection(e) => f.write_str(e),
            ExecError::TimedOut { after, .. } => write!(
                f,
                "timed out after {:.1}s; the process group was killed",
                after.as_secs_f64()
            ),
        }
    }
}

pub type ExecFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CommandOutput, ExecError>> + Send + 'a>>;

/// Runs commands somewhere: here, over ssh, inside a VM, or in a test fake.
pub trait CommandExecutor: Send + Sync {
    /// Runs `spec` to completion or until `deadline`, whichever is first.
    fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: Instant) -> ExecFuture<'a>;
    /// Where commands run, for evidence ("local", "ssh root@10.0.2.15").
    fn describe(&self) -> String;
    /// Whether commands run on this machine as this process's user, so a
    /// probe may read the same facts directly (files, /proc).
    fn is_local(&self) -> bool {
        false
    }
}

/// Runs commands on this host.
#[derive(Debug, Default, Clone)]
pub struct LocalExecutor;

impl CommandExecutor for LocalExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: Instant) -> ExecFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let mut cmd = tokio::process::Command::new(&spec.program);
            cmd.args(&spec.args)
                .envs(&spec.env)
                .stdin(if spec.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            if let Some(dir) = &spec.cwd {
                cmd.current_dir(dir);
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| ExecError::Spawn(format!("`{}`: {e}", spec.program)))?;
            let guard = GroupGuard::new(child.id());
            if let (Some(input), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = stdin.write_all(&input).await;
                });
            }
            let mut stdout = child.stdout.take();
            let mut stderr = child.stderr.take();
            let out_buf = std::sync::Arc::new(Mutex::new(Vec::new()));
            let err_buf = std::sync::Arc::new(Mutex::new(Vec::new()));
            let read_out = read_into(stdout.take(), out_buf.clone());
            let read_err = read_into(stderr.take(), err_buf.clone());
            let wait = async {
                let (status, _, _) = tokio::join!(child.wait(), read_out, read_err);
                status
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let taken = |b: &std::sync::Arc<Mutex<Vec<u8>>>| {
                b.lock().map(|v| v.clone()).unwrap_or_default()
            };
            match tokio::time::timeout(remaining, wait).await {
                Ok(status) => {
                    // The leader exited; make sure nothing it started lingers.
                    drop(guard);
                    let status = status.map_err(|e| ExecError::Spawn(e.to_string()))?;
                    Ok(CommandOutput {
                        exit_code: status.code(),
                        stdout: taken(&out_buf),
                        stderr: taken(&err_buf),
                        duration: started.elapsed(),
                    })
                }
                Err(_) => {
                    drop(guard);
                    Err(ExecError::TimedOut {
                        after: started.elapsed(),
                        partial: CommandOutput {
                            exit_code: None,
                            stdout: taken(&out_buf),
                            stderr: taken(&err_buf),
                            duration: started.elapsed(),
                        },
                    })
                }
            }
        })
    }

    fn describe(&self) -> String {
        "local".into()
    }

    fn is_local(&self) -> bool {
        true
    }
}

/// Output is capped so a chatty command cannot exhaust memory.
const MAX_CAPTURE: usize = 4 << 20;

async fn read_into<R: tokio::io::AsyncRead + Unpin>(
    reader: Option<R>,
    buf: std::sync::Arc<Mutex<Vec<u8>>>,
) {
    let Some(mut reader) = reader else { return };
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Ok(mut b) = buf.lock() {
                    let room = MAX_CAPTURE.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
    }
}

/// A scripted executor for unit tests: answers by program name.
#[derive(Debug, Default)]
pub struct FakeExecutor {
    answers: Mutex<BTreeMap<String, Result<CommandOutput, ExecError>>>,
    calls: Mutex<Vec<CommandSpec>>,
}

impl FakeExecutor {
    pub fn new() -> FakeExecutor {
        FakeExecutor::default()
    }
    /// Answers `program` with this exit code and output.
    pub fn answer(&self, program: &str, exit_code: i32, stdout: &str, stderr: &str) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                program.to_string(),
                Ok(CommandOutput {
                    exit_code: Some(exit_code),
                    stdout: stdout.as_bytes().to_vec(),
                    stderr: stderr.as_bytes().to_vec(),
                    duration: Duration::from_millis(1),
                }),
            );
    }
    pub fn answer_error(&self, program: &str, error: ExecError) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(program.to_string(), Err(error));
    }
    pub fn calls(&self) -> Vec<CommandSpec> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl CommandExecutor for FakeExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec, _deadline: Instant) -> ExecFuture<'a> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(spec.clone());
            self.answers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&spec.program)
                .cloned()
                .unwrap_or_else(|| {
                    Err(ExecError::Spawn(format!(
                        "`{}`: not scripted",
                        spec.program
                    )))
                })
        })
    }
    fn describe(&self) -> String {
        "fake".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn local_runs_and_captures() {
        let spec = CommandSpec::new("sh", &["-c", "echo out; echo err >&2; exit 3"]);
        let out = LocalExecutor.run(&spec, soon(10)).await.unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout_text(), "out\n");
        assert_eq!(out.stderr_text(), "err\n");
    }

    #[tokio::test]
    async fn local_missing_program_is_a_spawn_error() {
        let spec = CommandSpec::new("/nonexistent/spinup-smoke-test", &[]);
        let err = LocalExecutor.run(&spec, soon(10)).await.unwrap_err();
        assert!(matches!(err, ExecError::Spawn(_)), "{err:?}");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The shell starts a grandchild that would outlive a plain kill.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let spec = CommandSpec::new("sh", &["-c", &script]);
        let deadline = Instant::now() + Duration::from_millis(500);
        let err = LocalExecutor.run(&spec, deadline).await.unwrap_err();
        assert!(matches!(err, ExecError::TimedOut { .. }), "{err:?}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Give the kernel a moment to reap, then the grandchild must be gone.
        let mut alive = true;
        for _ in 0..50 {
            alive = process_alive(pid as u32);
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive, "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn fake_answers_by_program_and_records_calls() {
        let fake = FakeExecutor::new();
        fake.answer("uname", 0, "Linux\n", "");
        let out = fake
            .run(&CommandSpec::new("uname", &["-s"]), soon(1))
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "Linux\n");
        assert!(fake
            .run(&CommandSpec::new("other", &[]), soon(1))
            .await
            .is_err());
        assert_eq!(fake.calls().len(), 2);
    }

    #[test]
    fn display_quotes_what_needs_quoting() {
        let spec = CommandSpec::new("sh", &["-c", "echo it's"]);
        assert_eq!(spec.display(), "sh -c 'echo it'\\''s'");
    }
}
