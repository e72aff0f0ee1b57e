//! `SshHost`: a host reached with the system OpenSSH client over ONE
//! multiplexed connection per run. The master (`ssh -M -N`, a child of
//! this process in its own process group, dying with it) is opened on
//! first use and closed (`ssh -O exit`) when the run ends; every command and
//! forward is a client of it (`-S <control socket>`), so a run makes one
//! handshake however many checks it holds.
//!
//! The connection's files (the control socket, the identity when it came
//! from an environment variable, the known_hosts file of a pinned
//! fingerprint, forwarded unix sockets) live in a private 0700 directory
//! removed at the end. Host keys are always checked: against the target's
//! known_hosts file only (`StrictHostKeyChecking=yes`, or `accept-new` when
//! the target trusts on first use), or against a pinned SHA256 fingerprint
//! (the presented keys are read with `ssh-keyscan` and fingerprinted here;
//! the matching key becomes the only known one). A mismatch fails every
//! command with both fingerprints.
//!
//! Each remote command is wrapped in `timeout` (and `sudo -n` when the
//! host says so) so it dies on the remote side at its deadline. When the
//! connection drops while a command runs (ssh exits 255 and the master is
//! gone), it reconnects once and runs the command once more, and says so
//! in the command's stderr.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use super::hosts::Host;
use super::keys;
use super::remote::remote_line;
use crate::os::exec::ExecFuture;
use crate::os::{
    CommandExecutor, CommandOutput, CommandSpec, ExecError, LocalExecutor, Tunnel, TunnelFuture,
};

/// How to reach and authenticate to a host.
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// What the identity is called in messages (its secret's name).
    pub identity_name: String,
    pub identity: Identity,
    pub pin: HostKeyPin,
    /// Every command runs as root through `sudo -n`.
    pub sudo: bool,
    pub connect_timeout: Duration,
    /// Network kinds without `via` go through this host.
    pub via_host: bool,
}

/// The private key.
#[derive(Clone)]
pub enum Identity {
    /// A key file (the secret's file).
    File(PathBuf),
    /// The key itself (from an environment variable): written to a 0600
    /// file in the connection's private directory while the run lasts.
    Key(String),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::File(path) => write!(f, "File({})", path.display()),
            Identity::Key(_) => f.write_str("Key([REDACTED])"),
        }
    }
}

/// How the host's key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPin {
    /// Keys from this file only; with `trust_on_first_use` an unknown host's
    /// key is recorded there on first contact.
    KnownHosts {
        path: PathBuf,
        trust_on_first_use: bool,
    },
    /// The `SHA256:...` fingerprint the host's key must have.
    Fingerprint(String),
}

/// A host over ssh; cheap to clone (one connection behind).
#[derive(Clone)]
pub struct SshHost {
    conn: Arc<Connection>,
}

impl SshHost {
    pub fn new(config: SshConfig) -> SshHost {
        SshHost {
            conn: Arc::new(Connection {
                config,
                state: Mutex::new(State::default()),
                handshakes: AtomicU32::new(0),
                sessions: tokio::sync::Semaphore::new(MAX_SESSIONS),
            }),
        }
    }

    /// Masters started so far (1 for a run without a dropped connection).
    pub fn handshakes(&self) -> u32 {
        self.conn.handshakes.load(Ordering::SeqCst)
    }
}

impl Host for SshHost {
    fn executor(&self) -> Arc<dyn CommandExecutor> {
        self.conn.clone()
    }
    fn tunnel(&self) -> Option<Arc<dyn Tunnel>> {
        Some(self.conn.clone())
    }
    fn via_host(&self) -> bool {
        self.conn.config.via_host
    }
    fn describe(&self) -> String {
        self.conn.describe()
    }
    fn close(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.conn.close())
    }
}

struct Connection {
    config: SshConfig,
    state: Mutex<State>,
    handshakes: AtomicU32,
    /// Commands in flight over the one connection, bounded below sshd's
    /// `MaxSessions` (10 by default): past it sshd refuses the session
    /// ("Session open refused by peer").
    sessions: tokio::sync::Semaphore,
}

/// Commands run at once over one connection (sshd's default `MaxSessions`
/// is 10; the rest wait their turn, within their deadline).
pub const MAX_SESSIONS: usize = 8;

#[derive(Default)]
struct State {
    dir: Option<RunDir>,
    master: Option<Master>,
    tcp: HashMap<(String, u16), SocketAddr>,
    unix: HashMap<String, PathBuf>,
    socks: Option<SocketAddr>,
    /// A failure that repeats on every attempt (a host key mismatch).
    fatal: Option<String>,
    closed: bool,
    sockets: u32,
}

/// The connection's private directory, removed when dropped.
struct RunDir {
    path: PathBuf,
}

impl RunDir {
    fn create() -> Result<RunDir, String> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let mut last = None;
        for _ in 0..8 {
            let path = base.join(format!(
                "spinup-ssh-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(RunDir { path }),
                Err(e) => last = Some(e),
            }
        }
        Err(format!(
            "cannot create a private directory for the ssh connection in {}: {}",
            base.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        ))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

struct Master {
    child: tokio::process::Child,
    stderr: Arc<std::sync::Mutex<Vec<u8>>>,
    control: PathBuf,
}

impl Master {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.control.exists()
    }
    /// What the master said last, or that it exited.
    fn last_words(&self) -> String {
        let text = self
            .stderr
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        last_lines(&text, 2).unwrap_or_else(|| "the ssh master process exited".into())
    }
}

fn last_lines(text: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines[lines.len().saturating_sub(n)..].join("; "))
}

/// How a refused identity is reported (never retried: it would repeat).
const AUTH_REFUSED: &str = "authentication was refused";

/// The pause before connection attempt `refusals + 2`: short at first (an
/// sshd re-executing on SIGHUP is back within a second), at most a second.
fn reconnect_pause(refusals: u32) -> Duration {
    Duration::from_millis((200u64 << refusals.min(3)).min(1000))
}

/// Stops at the deadline even for a far one (one connection attempt).
const MAX_CLOSE_WAIT: Duration = Duration::from_secs(3);

impl Connection {
    fn describe(&self) -> String {
        format!(
            "ssh {}@{}:{}",
            self.config.user, self.config.address, self.config.port
        )
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.config.address, self.config.port)
    }

    /// Options every ssh invocation of this connection shares.
    fn base_args(&self, control: &Path) -> Vec<String> {
        [
            "-F",
            "/dev/null",
            "-S",
            &control.display().to_string(),
            "-p",
            &self.config.port.to_string(),
            "-l",
            &self.config.user,
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// A client of the master: never a connection of its own (should the
    /// control socket be gone, the `false` proxy fails it at once).
    fn client_args(&self, control: &Path) -> Vec<String> {
        let mut args = self.base_args(control);
        args.extend(
            ["-T", "-o", "ControlMaster=no", "-o", "ProxyCommand=false"]
                .iter()
                .map(|s| s.to_string()),
        );
        args
    }

    /// `ssh -O <op> ...` on the master.
    fn control_command(&self, control: &Path, op: &str, extra: &[String]) -> CommandSpec {
        let mut args = self.client_args(control);
        args.push("-O".into());
        args.push(op.into());
        args.extend(extra.iter().cloned());
        args.push(self.config.address.clone());
        CommandSpec {
            program: "ssh".into(),
            args,
            ..CommandSpec::default()
        }
    }

    /// The control socket of a live master: the one running, else a new
    /// one (with a note when an earlier one had dropped).
    async fn ready(&self, deadline: Instant) -> Result<(PathBuf, Option<String>), String> {
        let mut st = self.state.lock().await;
        if st.closed {
            return Err(format!(
                "{}: the run has ended and the connection is closed",
                self.describe()
            ));
        }
        if let Some(fatal) = &st.fatal {
            return Err(fatal.clone());
        }
        let mut note = None;
        if let Some(master) = st.master.as_mut() {
            if master.alive() {
                return Ok((master.control.clone(), None));
            }
            note = Some(format!(
                "the connection to {} had dropped ({})",
                self.describe(),
                master.last_words()
            ));
            st.master = None;
            st.tcp.clear();
            st.unix.clear();
            st.socks = None;
        }
        // A host whose sshd is restarting (or a VM's forwarder whose guest
        // has not answered yet) refuses for a moment: try again within the
        // connect timeout, unless the refusal would repeat (a host key that
        // does not match, a refused identity).
        let until = deadline.min(Instant::now() + self.config.connect_timeout);
        let mut refusals = 0u32;
        let control = loop {
            match self.connect(&mut st, until).await {
                Ok(control) => break control,
                Err(message) => {
                    let pause = reconnect_pause(refusals);
                    let again = st.fatal.is_none()
                        && !message.contains(AUTH_REFUSED)
                        && Instant::now() + pause < until;
                    if !again {
                        let tried = if refusals > 0 {
                            format!(" ({} attempts)", refusals + 1)
                        } else {
                            String::new()
                        };
                        return Err(match note {
                            Some(dropped) => {
                                format!("{dropped}, but reconnecting failed{tried}: {message}")
                            }
                            None => format!("{message}{tried}"),
                        });
                    }
                    refusals += 1;
                    tokio::time::sleep(pause).await;
                }
            }
        };
        let retried = (refusals > 0).then(|| {
            format!(
                "{} refused {refusals} time(s) before it admitted the connection",
                self.endpoint()
            )
        });
        note = match (note, retried) {
            (Some(dropped), Some(retried)) => {
                Some(format!("{dropped}; reconnected after {retried}"))
            }
            (Some(dropped), None) => Some(format!("{dropped}; reconnected")),
            (None, retried) => retried,
        };
        Ok((control, note))
    }

    /// Whether the master is gone (waits briefly: a master that lost its
    /// connection exits a moment after its clients notice).
    async fn master_lost(&self) -> bool {
        for _ in 0..20 {
            {
                let mut st = self.state.lock().await;
                match st.master.as_mut() {
                    None => return true,
                    Some(m) => {
                        if !m.alive() {
                            return true;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    async fn connect(&self, st: &mut State, deadline: Instant) -> Result<PathBuf, String> {
        let connect_deadline = deadline.min(Instant::now() + self.config.connect_timeout);
        if st.dir.is_none() {
            st.dir = Some(RunDir::create()?);
        }
        let dir = st.dir.as_ref().map(|d| d.path.clone()).unwrap_or_default();
        let identity = match &self.config.identity {
            Identity::File(path) => path.clone(),
            Identity::Key(key) => {
                let path = dir.join("identity");
                if !path.exists() {
                    write_private(&path, key).map_err(|e| {
                        format!("cannot write the identity into the private directory: {e}")
                    })?;
                }
                path
            }
        };
        let (known_hosts, strict) = match &self.config.pin {
            HostKeyPin::KnownHosts {
                path,
                trust_on_first_use,
            } => (
                path.clone(),
                if *trust_on_first_use {
                    "accept-new"
                } else {
                    "yes"
                },
            ),
            HostKeyPin::Fingerprint(pin) => {
                match self.pinned_known_hosts(&dir, pin, connect_deadline).await {
                    Ok(path) => (path, "yes"),
                    Err((message, fatal)) => {
                        if fatal {
                            st.fatal = Some(message.clone());
                        }
                        return Err(message);
                    }
                }
            }
        };
        let control = dir.join("ctl");
        let _ = std::fs::remove_file(&control);
        let connect_secs = connect_deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64;
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(["-M", "-N", "-T"])
            .args(self.base_args(&control))
            .arg("-i")
            .arg(&identity)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
                "-o",
            ])
            .arg(format!("StrictHostKeyChecking={strict}"))
            .arg("-o")
            .arg(format!("UserKnownHostsFile=\"{}\"", known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "UpdateHostKeys=no",
                "-o",
                "HashKnownHosts=no",
                "-o",
                "CheckHostIP=no",
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=no",
                "-o",
                "StreamLocalBindUnlink=yes",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=6",
                "-o",
            ])
            .arg(format!("ConnectTimeout={connect_secs}"))
            .arg(&self.config.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; the master dies with this process.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start ssh (the OpenSSH client): {e}"))?;
        let stderr = Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = child.stderr.take().map(|mut pipe| {
            let buf = stderr.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut b) = buf.lock() {
                        if b.len() < 64 * 1024 {
                            b.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
            })
        });
        loop {
            if control.exists() {
                self.handshakes.fetch_add(1, Ordering::SeqCst);
                st.master = Some(Master {
                    child,
                    stderr,
                    control: control.clone(),
                });
                return Ok(control);
            }
            if let Ok(Some(_status)) = child.try_wait() {
                if let Some(reader) = reader {
                    let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
                }
                let said = stderr
                    .lock()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let (message, fatal) = self.why_not(&said, deadline).await;
                if fatal {
                    st.fatal = Some(message.clone());
                }
                return Err(message);
            }
            if Instant::now() >= connect_deadline {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(format!(
                    "{}: no answer from {} within the connect timeout ({}s)",
                    self.describe(),
                    self.endpoint(),
                    connect_secs
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Why the master exited, from what ssh said; `true` when every later
    /// attempt would fail the same way (a host key that does not match).
    async fn why_not(&self, said: &str, deadline: Instant) -> (String, bool) {
        let words = last_lines(said, 3).unwrap_or_else(|| "ssh exited without a word".into());
        if said.contains("Host key verification failed")
            || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || said.contains("host key for")
        {
            let scan_deadline = deadline.min(Instant::now() + Duration::from_secs(5));
            let presented = self.scan(scan_deadline).await.unwrap_or_default();
            let HostKeyPin::KnownHosts { path, .. } = &self.config.pin else {
                return (
                    format!("{}: host key verification failed: {words}", self.describe()),
                    true,
                );
            };
            let name = keys::known_hosts_name(&self.config.address, self.config.port);
            let expected =
                keys::keys_for(&std::fs::read_to_string(path).unwrap_or_default(), &name);
            let message = if expected.is_empty() {
                format!(
                    "host key unknown: {} holds no key for {name}; {} presented {} (check the fingerprint with the host's owner, then add its key to the file, or set trust_on_first_use = true for the first contact)",
                    path.display(),
                    self.endpoint(),
                    keys::list(&presented)
                )
            } else {
                format!(
                    "{} (from {})",
                    keys::mismatch(&keys::list(&expected), &self.endpoint(), &presented),
                    path.display()
                )
            };
            return (message, true);
        }
        if said.contains("Permission denied") || said.contains("Too many authentication failures") {
            return (
                format!(
                    "{}: {AUTH_REFUSED}: the host did not accept identity `{}` for user `{}` ({words})",
                    self.describe(),
                    self.config.identity_name,
                    self.config.user
                ),
                false,
            );
        }
        (
            format!("{}: cannot connect: {words}", self.describe()),
            false,
        )
    }

    /// The keys the host presents (ssh-keyscan, bounded by `deadline`).
    async fn scan(&self, deadline: Instant) -> Result<Vec<keys::HostKey>, String> {
        let secs = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64;
        let spec = CommandSpec::new(
            "ssh-keyscan",
            &[
                "-T",
                &secs.to_string(),
                "-p",
                &self.config.port.to_string(),
                "--",
                &self.config.address,
            ],
        );
        match LocalExecutor.run(&spec, deadline).await {
            Ok(out) => {
                let found = keys::keys_in(&out.stdout_text());
                if found.is_empty() {
                    let said = out
                        .stderr_text()
                        .lines()
                        .filter(|l| !l.starts_with('#'))
                        .collect::<Vec<_>>()
                        .join("; ");
                    Err(format!(
                        "{}: no answer from {} within the connect timeout ({secs}s){}",
                        self.describe(),
                        self.endpoint(),
                        if said.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", said.trim())
                        }
                    ))
                } else {
                    Ok(found)
                }
            }
            Err(ExecError::TimedOut { .. }) => Err(format!(
                "{}: no answer from {} within the connect timeout ({secs}s)",
                self.describe(),
                self.endpoint()
            )),
            Err(e) => Err(format!("cannot read the host key with ssh-keyscan: {e}")),
        }
    }

    /// A known_hosts file holding only the presented key with the pinned
    /// fingerprint; `Err((message, fatal))` when none has it.
    async fn pinned_known_hosts(
        &self,
        dir: &Path,
        pin: &str,
        deadline: Instant,
    ) -> Result<PathBuf, (String, bool)> {
        let path = dir.join("known_hosts");
        if path.exists() {
            return Ok(path);
        }
        let presented = self.scan(deadline).await.map_err(|e| (e, false))?;
        let Some(key) = presented.iter().find(|k| k.fingerprint == pin) else {
            return Err((keys::mismatch(pin, &self.endpoint(), &presented), true));
        };
        let line = format!(
            "{} {}\n",
            keys::known_hosts_name(&self.config.address, self.config.port),
            key.key
        );
        std::fs::write(&path, line).map_err(|e| {
            (
                format!("cannot write the pinned known_hosts file: {e}"),
                false,
            )
        })?;
        Ok(path)
    }

    /// Ends the master (`-O exit`, then a kill) and removes the directory.
    async fn close(&self) {
        let mut st = self.state.lock().await;
        st.closed = true;
        if let Some(mut master) = st.master.take() {
            if master.alive() {
                let exit = self.control_command(&master.control, "exit", &[]);
                let _ = LocalExecutor
                    .run(&exit, Instant::now() + MAX_CLOSE_WAIT)
                    .await;
            }
            if tokio::time::timeout(MAX_CLOSE_WAIT, master.child.wait())
                .await
                .is_err()
            {
                let _ = master.child.start_kill();
                let _ = master.child.wait().await;
            }
        }
        st.tcp.clear();
        st.unix.clear();
        st.socks = None;
        st.dir = None;
    }

    /// Asks the master for a forward (`-L`/`-D` spec), before `deadline`.
    async fn forward(&self, what: &str, arg: &str, deadline: Instant) -> Result<(), String> {
        let (control, _) = self.ready(deadline).await?;
        let spec = self.control_command(&control, "forward", &[what.into(), arg.into()]);
        match LocalExecutor.run(&spec, deadline).await {
            Ok(out) if out.exit_code == Some(0) => Ok(()),
            Ok(out) => Err(format!(
                "{}: the forward {what} {arg} was refused: {}",
                self.describe(),
                last_lines(&out.stderr_text(), 2).unwrap_or_else(|| "no reason given".into())
            )),
            Err(e) => Err(format!(
                "{}: the forward {what} {arg} failed: {e}",
                self.describe()
            )),
        }
    }
}

impl CommandExecutor for Connection {
    fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: Instant) -> ExecFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let _session =
                match tokio::time::timeout_at(deadline.into(), self.sessions.acquire()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => {
                        return Err(ExecError::Connection(format!(
                            "the connection to {} is closed",
                            self.describe()
                        )))
                    }
                    Err(_) => {
                        return Err(ExecError::TimedOut {
                            after: started.elapsed(),
                            partial: Default::default(),
                        })
                    }
                };
            let mut notes = Vec::new();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let (control, note) = self.ready(deadline).await.map_err(ExecError::Connection)?;
                notes.extend(note);
                // The remote side outlives the local deadline by a second at
                // most: the local client is killed at the deadline first.
                let remote_secs = deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64()
                    + 1.0;
                let mut args = self.client_args(&control);
                args.push(self.config.address.clone());
                args.push("--".into());
                args.push(remote_line(spec, remote_secs, self.config.sudo));
                let client = CommandSpec {
                    program: "ssh".into(),
                    args,
                    env: Default::default(),
                    cwd: None,
                    stdin: spec.stdin.clone(),
                };
                let result = LocalExecutor.run(&client, deadline).await;
                match result {
                    Ok(out) if out.exit_code == Some(255) && attempt == 1 => {
                        if self.master_lost().await {
                            notes.push(format!(
                                "the connection to {} dropped while the command ran ({}); reconnecting once and running it again",
                                self.describe(),
                                last_lines(&out.stderr_text(), 1).unwrap_or_else(|| "ssh exited 255".into())
                            ));
                            continue;
                        }
                        return Ok(with_notes(out, &notes));
                    }
                    Ok(out) => return Ok(with_notes(out, &notes)),
                    Err(ExecError::TimedOut { after, partial }) => {
                        return Err(ExecError::TimedOut {
                            after,
                            partial: with_notes(partial, &notes),
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn describe(&self) -> String {
        Connection::describe(self)
    }
}

/// The connection's notes ahead of the command's own stderr.
fn with_notes(mut out: CommandOutput, notes: &[String]) -> CommandOutput {
    if notes.is_empty() {
        return out;
    }
    let mut stderr: Vec<u8> = notes
        .iter()
        .flat_map(|n| format!("spinup-smoke: {n}\n").into_bytes())
        .collect();
    stderr.extend_from_slice(&out.stderr);
    out.stderr = stderr;
    out
}

impl Tunnel for Connection {
    fn forward_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
        deadline: Instant,
    ) -> TunnelFuture<'a, SocketAddr> {
        Box::pin(async move {
            let key = (host.to_string(), port);
            // Make sure the master is up first: a reconnect forgets forwards.
            self.ready(deadline).await?;
            if let Some(addr) = self.state.lock().await.tcp.get(&key) {
                return Ok(*addr);
            }
            let local = free_port()?;
            let remote = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            self.forward(
                "-L",
                &format!("127.0.0.1:{}:{remote}:{port}", local.port()),
                deadline,
            )
            .await?;
            self.state.lock().await.tcp.insert(key, local);
            Ok(local)
        })
    }

    fn forward_unix<'a>(&'a self, path: &'a str, deadline: Instant) -> TunnelFuture<'a, PathBuf> {
        Box::pin(async move {
            self.ready(deadline).await?;
            let local = {
                let mut st = self.state.lock().await;
                if let Some(local) = st.unix.get(path) {
                    return Ok(local.clone());
                }
                st.sockets += 1;
                let dir = st.dir.as_ref().map(|d| d.path.clone()).unwrap_or_default();
                dir.join(format!("fwd-{}.sock", st.sockets))
            };
            self.forward("-L", &format!("{}:{path}", local.display()), deadline)
                .await?;
            self.state
                .lock()
                .await
                .unix
                .insert(path.to_string(), local.clone());
            Ok(local)
        })
    }

    fn socks_proxy(&self, deadline: Instant) -> TunnelFuture<'_, SocketAddr> {
        Box::pin(async move {
            self.ready(deadline).await?;
            if let Some(addr) = self.state.lock().await.socks {
                return Ok(addr);
            }
            let local = free_port()?;
            self.forward("-D", &format!("127.0.0.1:{}", local.port()), deadline)
                .await?;
            self.state.lock().await.socks = Some(local);
            Ok(local)
        })
    }

    fn describe(&self) -> String {
        Connection::describe(self)
    }
}

/// A loopback port free right now (the master binds it next).
fn free_port() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free local port for a forward: {e}"))
}

/// Writes `key` to a new file only this user can read (0600).
fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key.as_bytes())?;
    if !key.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pin: HostKeyPin) -> SshConfig {
        SshConfig {
            address: "p6.example.org".into(),
            port: 22,
            user: "rave".into(),
            identity_name: "host_ssh_key".into(),
            identity: Identity::Key("-----BEGIN OPENSSH PRIVATE KEY-----".into()),
            pin,
            sudo: false,
            connect_timeout: Duration::from_secs(10),
            via_host: false,
        }
    }

    #[test]
    fn describe_and_debug_never_show_the_key() {
        let host = SshHost::new(config(HostKeyPin::Fingerprint("SHA256:x".into())));
        assert_eq!(host.describe(), "ssh rave@p6.example.org:22");
        let debug = format!("{:?}", host.conn.config);
        assert!(!debug.contains("BEGIN"), "{debug}");
    }

    #[test]
    fn clients_never_open_a_connection_of_their_own() {
        let host = SshHost::new(config(HostKeyPin::Fingerprint("SHA256:x".into())));
        let spec = host
            .conn
            .control_command(Path::new("/tmp/d/ctl"), "exit", &[]);
        let line = spec.display();
        assert!(line.contains("-S /tmp/d/ctl"), "{line}");
        assert!(line.contains("ControlMaster=no"), "{line}");
        assert!(line.contains("ProxyCommand=false"), "{line}");
        assert!(line.ends_with("-O exit p6.example.org"), "{line}");
    }

    #[test]
    fn the_private_key_file_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = RunDir::create().unwrap();
        let mode = std::fs::metadata(&dir.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let key = dir.path.join("identity");
        write_private(&key, "k").unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "k\n");
        let path = dir.path.clone();
        drop(dir);
        assert!(!path.exists(), "the private directory outlived the run");
    }

    #[tokio::test]
    async fn a_closed_host_refuses_commands() {
        let host = SshHost::new(config(HostKeyPin::Fingerprint("SHA256:x".into())));
        host.close().await;
        let err = host
            .executor()
            .run(
                &CommandSpec::new("true", &[]),
                Instant::now() + Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("connection is closed"), "{err}");
    }
}
