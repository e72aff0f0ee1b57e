//! Booting one guest under QEMU and owning it until teardown.
//!
//! `boot` validates the inputs, decides the accelerator, generates a fresh
//! ed25519 keypair (`ssh-keygen`), creates a qcow2 overlay backed by the
//! image (the image itself is never written), picks a free localhost port,
//! and starts QEMU with direct kernel boot:
//!
//! - the serial console goes to `<artifacts>/vm-<name>-<n>-console.log`
//!   (evidence), QEMU's own messages to `...-qemu.log`;
//! - the public key rides on the kernel command line
//!   (`spinup.ssh_key=ssh-ed25519:<base64>`); the guest image installs it
//!   for root before sshd starts (see scripts/build-guest-image.sh);
//! - user-mode networking forwards `127.0.0.1:<port>` to the guest's port 22;
//! - `-no-reboot`: a guest that panics or reboots makes QEMU exit.
//!
//! Then it waits for `ssh root@127.0.0.1 true` to succeed before the
//! deadline, watching QEMU: if QEMU exits first, or the deadline passes, the
//! VM is torn down and `BootFailure` carries the reason and the console tail.
//!
//! A `RunningVm` kills its QEMU (the whole process group) and its ssh
//! forwards and removes its work directory in `teardown`, and again in
//! `Drop` if teardown never ran (cancelled check, panic). QEMU also gets
//! `PR_SET_PDEATHSIG`, so it dies with this process even on SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::accel::{self, AccelChoice, AccelDecision};
use super::ssh::SshExecutor;
use super::units::{ByteSize, ImageFormat};
use crate::os::exec::{CommandExecutor, CommandSpec, LocalExecutor};
use crate::os::process::{process_alive, signal_group};

/// What to boot and how.
#[derive(Debug, Clone, PartialEq)]
pub struct VmConfig {
    /// Names the VM in the registry and in artifact file names.
    pub name: String,
    pub image: PathBuf,
    pub format: ImageFormat,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// Appended to the kernel command line.
    pub extra_kernel_args: String,
    pub memory: ByteSize,
    pub cpus: u32,
    pub accel: AccelChoice,
    /// Where the console log and QEMU's log are kept.
    pub artifacts_dir: PathBuf,
}

/// Why a boot did not reach ssh.
#[derive(Debug, Clone)]
pub struct BootFailure {
    pub reason: String,
    /// The last lines of the serial console (empty when QEMU never ran).
    pub console_tail: String,
    /// QEMU's own stderr (bad image, bad options).
    pub qemu_log: String,
    pub console_log: Option<PathBuf>,
    pub accel: Option<AccelDecision>,
    pub elapsed: Duration,
    /// How the VM was cleaned up after the failure.
    pub teardown: Option<TeardownReport>,
}

/// What `teardown` found after killing the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeardownReport {
    pub qemu_pid: u32,
    /// No process with QEMU's pid is left (or only a reaped one).
    pub qemu_gone: bool,
    pub overlay: PathBuf,
    pub overlay_removed: bool,
    pub ssh_port: u16,
    /// Connecting to the forwarded port is refused.
    pub port_closed: bool,
    /// ssh forward processes this VM started, all killed.
    pub helpers_killed: usize,
}

impl TeardownReport {
    pub fn clean(&self) -> bool {
        self.qemu_gone && self.overlay_removed && self.port_closed
    }
}

impl std::fmt::Display for TeardownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "NO" };
        write!(
            f,
            "qemu pid {} gone: {}; overlay {} removed: {}; port {} closed: {}; ssh forwards killed: {}",
            self.qemu_pid,
            yes_no(self.qemu_gone),
            self.overlay.display(),
            yes_no(self.overlay_removed),
            self.ssh_port,
            yes_no(self.port_closed),
            self.helpers_killed
        )
    }
}

/// A booted guest reachable over ssh.
#[derive(Debug)]
pub struct RunningVm {
    pub name: String,
    pub accel: AccelDecision,
    pub ssh_port: u16,
    pub qemu_pid: u32,
    pub work_dir: PathBuf,
    pub overlay: PathBuf,
    pub private_key: PathBuf,
    pub console_log: PathBuf,
    pub qemu_log: PathBuf,
    pub memory: ByteSize,
    pub cpus: u32,
    /// From QEMU's start to the first successful ssh command.
    pub boot_to_ssh: Duration,
    child: Mutex<Option<tokio::process::Child>>,
    helpers: Mutex<Vec<tokio::process::Child>>,
    /// The local end of the system bus forward, once made (see `bus`).
    pub(crate) bus_socket: tokio::sync::Mutex<Option<PathBuf>>,
    torn_down: AtomicBool,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Bytes of console kept as evidence.
pub const CONSOLE_TAIL_BYTES: u64 = 3000;

/// Boots `config` and waits until ssh answers, or fails by `deadline`.
pub async fn boot(config: &VmConfig, deadline: Instant) -> Result<RunningVm, BootFailure> {
    let started = Instant::now();
    let fail = |reason: String| BootFailure {
        reason,
        console_tail: String::new(),
        qemu_log: String::new(),
        console_log: None,
        accel: None,
        elapsed: started.elapsed(),
        teardown: None,
    };
    check_inputs(config).map_err(fail)?;
    let accel = accel::decide(config.accel, &config.kernel, deadline).await;

    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}-{}-{n}", sanitize(&config.name), std::process::id());
    let work_dir = std::env::temp_dir().join(format!("spinup-smoke-vm-{tag}"));
    let prepared = prepare_work_dir(config, &work_dir, deadline).await;
    let (private_key, public_key, overlay) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work_dir);
            let mut f = fail(e);
            f.accel = Some(accel);
            return Err(f);
        }
    };

    let _ = std::fs::create_dir_all(&config.artifacts_dir);
    let console_log = config
        .artifacts_dir
        .join(format!("vm-{}-{n}-console.log", sanitize(&config.name)));
    let qemu_log = config
        .artifacts_dir
        .join(format!("vm-{}-{n}-qemu.log", sanitize(&config.name)));
    let spawned = free_port().and_then(|port| {
        spawn_qemu(
            config,
            &accel,
            &overlay,
            &public_key,
            port,
            &console_log,
            &qemu_log,
        )
        .map(|child| (port, child))
    });
    let (ssh_port, child) = match spawned {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work_dir);
            let mut f = fail(e);
            f.accel = Some(accel);
            f.qemu_log = read_text(&qemu_log);
            return Err(f);
        }
    };
    let qemu_started = Instant::now();
    let mut vm = RunningVm {
        name: config.name.clone(),
        accel,
        ssh_port,
        qemu_pid: child.id().unwrap_or(0),
        work_dir,
        overlay,
        private_key,
        console_log,
        qemu_log,
        memory: config.memory,
        cpus: config.cpus,
        boot_to_ssh: Duration::ZERO,
        child: Mutex::new(Some(child)),
        helpers: Mutex::new(Vec::new()),
        bus_socket: tokio::sync::Mutex::new(None),
        torn_down: AtomicBool::new(false),
    };
    match vm.wait_for_ssh(deadline).await {
        Ok(()) => {
            vm.boot_to_ssh = qemu_started.elapsed();
            Ok(vm)
        }
        Err(reason) => {
            let report = vm.teardown().await;
            Err(BootFailure {
                reason,
                console_tail: vm.console_tail(CONSOLE_TAIL_BYTES),
                qemu_log: read_text(&vm.qemu_log),
                console_log: Some(vm.console_log.clone()),
                accel: Some(vm.accel.clone()),
                elapsed: started.elapsed(),
                teardown: Some(report),
            })
        }
    }
}

fn check_inputs(config: &VmConfig) -> Result<(), String> {
    let must_exist = |what: &str, path: &Path, fix: &str| -> Result<(), String> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(format!("{what} {} is not a file; {fix}", path.display())),
            Err(e) => Err(format!(
                "{what} {} cannot be read ({e}); {fix}",
                path.display()
            )),
        }
    };
    let fix = "build the guest image (scripts/build-guest-image.sh) and set image.path, image.kernel and image.initrd in the target";
    must_exist("image", &config.image, fix)?;
    must_exist("kernel", &config.kernel, fix)?;
    if let Some(initrd) = &config.initrd {
        must_exist("initrd", initrd, fix)?;
    }
    if config.cpus == 0 {
        return Err("cpus must be at least 1".into());
    }
    if config.memory.mib() < 128 {
        return Err(format!(
            "memory {} is too small to boot a guest; give at least 512MiB",
            config.memory
        ));
    }
    Ok(())
}

/// Creates the work directory with a fresh keypair and the overlay.
async fn prepare_work_dir(
    config: &VmConfig,
    work_dir: &Path,
    deadline: Instant,
) -> Result<(PathBuf, String, PathBuf), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(work_dir)
        .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
    let key = work_dir.join("id_ed25519");
    let keygen = CommandSpec::new(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "spinup-smoke",
            "-f",
            &key.display().to_string(),
        ],
    );
    run_ok(&keygen, deadline, "install openssh-client").await?;
    let public = std::fs::read_to_string(key.with_extension("pub"))
        .map_err(|e| format!("ssh-keygen wrote no public key: {e}"))?;
    let mut words = public.split_whitespace();
    let public_key = match (words.next(), words.next()) {
        (Some(kind), Some(base64)) => format!("{kind}:{base64}"),
        _ => return Err(format!("unexpected public key format: {public}")),
    };
    let image = std::fs::canonicalize(&config.image)
        .map_err(|e| format!("image {}: {e}", config.image.display()))?;
    let overlay = work_dir.join("overlay.qcow2");
    let create = CommandSpec::new(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            config.format.as_str(),
            "-b",
            &image.display().to_string(),
            &overlay.display().to_string(),
        ],
    );
    run_ok(
        &create,
        deadline,
        "is the image a valid, readable disk image?",
    )
    .await?;
    Ok((key, public_key, overlay))
}

async fn run_ok(spec: &CommandSpec, deadline: Instant, hint: &str) -> Result<(), String> {
    match LocalExecutor.run(spec, deadline).await {
        Ok(out) if out.exit_code == Some(0) => Ok(()),
        Ok(out) => Err(format!(
            "`{}` failed ({}): {} ({hint})",
            spec.display(),
            out.exit_code
                .map_or("killed".to_string(), |c| format!("exit {c}")),
            out.stderr_text().trim()
        )),
        Err(e) => Err(format!("`{}`: {e} ({hint})", spec.display())),
    }
}

/// A localhost port nothing listens on right now.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free localhost port for ssh forwarding: {e}"))
}

#[allow(clippy::too_many_arguments)]
fn spawn_qemu(
    config: &VmConfig,
    accel: &AccelDecision,
    overlay: &Path,
    public_key: &str,
    ssh_port: u16,
    console_log: &Path,
    qemu_log: &Path,
) -> Result<tokio::process::Child, String> {
    let log = std::fs::File::create(qemu_log)
        .map_err(|e| format!("cannot create {}: {e}", qemu_log.display()))?;
    let mut append = format!(
        "root=/dev/vda rw console=ttyS0 panic=-1 net.ifnames=0 spinup.ssh_key={public_key}"
    );
    if !config.extra_kernel_args.trim().is_empty() {
        append.push(' ');
        append.push_str(config.extra_kernel_args.trim());
    }
    let mut cmd = tokio::process::Command::new("qemu-system-x86_64");
    cmd.args(["-name", &qemu_name(&config.name)])
        .args(["-machine", "q35"])
        .args(accel.accel.qemu_args())
        .args(["-m", &config.memory.mib().to_string()])
        .args(["-smp", &config.cpus.to_string()])
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .args(["-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", console_log.display()))
        .arg("-kernel")
        .arg(&config.kernel);
    if let Some(initrd) = &config.initrd {
        cmd.arg("-initrd").arg(initrd);
    }
    cmd.args(["-append", &append])
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=qcow2,cache=unsafe",
            overlay.display()
        ))
        .arg("-netdev")
        .arg(format!("user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"))
        .args(["-device", "virtio-net-pci,netdev=net0"])
        .args(["-device", "virtio-rng-pci"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(true);
    let parent = std::process::id();
    // SAFETY: die_with_parent makes only async-signal-safe calls; nothing
    // else runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || crate::os::process::die_with_parent(parent));
    }
    cmd.spawn().map_err(|e| {
        format!("cannot start qemu-system-x86_64: {e} (install it: apt-get install -t bookworm-backports qemu-system-x86)")
    })
}

impl RunningVm {
    /// Runs commands in the guest as root.
    pub fn executor(&self) -> SshExecutor {
        SshExecutor::new("root", "127.0.0.1", self.ssh_port, &self.private_key)
    }

    /// Whether QEMU is still running.
    pub fn is_running(&self) -> bool {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// QEMU's exit status if it has exited.
    fn exit_status(&self) -> Option<String> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let child = guard.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    async fn wait_for_ssh(&self, deadline: Instant) -> Result<(), String> {
        let ssh = self.executor();
        let probe = CommandSpec::new("true", &[]);
        let mut last_error = String::from("no attempt finished");
        loop {
            if let Some(status) = self.exit_status() {
                return Err(format!(
                    "QEMU exited ({status}) before ssh answered; last ssh error: {last_error}"
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "ssh on 127.0.0.1:{} did not answer before the deadline; last ssh error: {last_error}",
                    self.ssh_port
                ));
            }
            let attempt_deadline = deadline.min(now + Duration::from_secs(15));
            match ssh.run(&probe, attempt_deadline).await {
                Ok(out) if out.exit_code == Some(0) => return Ok(()),
                Ok(out) => {
                    last_error = format!(
                        "exit {:?}: {}",
                        out.exit_code,
                        out.stderr_text().trim().lines().last().unwrap_or("")
                    )
                }
                Err(e) => last_error = e.to_string(),
            }
            let pause = Duration::from_millis(700);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// The last `bytes` of the serial console, control characters removed.
    pub fn console_tail(&self, bytes: u64) -> String {
        tail_of_file(&self.console_log, bytes)
    }

    /// Keeps `child` (an ssh forward) alive until teardown.
    pub(crate) fn adopt_helper(&self, child: tokio::process::Child) {
        self.helpers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
    }

    /// Kills QEMU and the ssh forwards, removes the work directory (overlay,
    /// key, sockets) and reports what is left. Safe to call twice.
    pub async fn teardown(&self) -> TeardownReport {
        self.torn_down.store(true, Ordering::SeqCst);
        let helpers: Vec<_> =
            std::mem::take(&mut *self.helpers.lock().unwrap_or_else(|e| e.into_inner()));
        let helpers_killed = helpers.len();
        for mut helper in helpers {
            kill_group(helper.id());
            let _ = helper.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), helper.wait()).await;
        }
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = child {
            kill_group(child.id());
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
        let port_closed = matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(("127.0.0.1", self.ssh_port)),
            )
            .await,
            Ok(Err(_))
        );
        TeardownReport {
            qemu_pid: self.qemu_pid,
            qemu_gone: !process_alive(self.qemu_pid),
            overlay: self.overlay.clone(),
            overlay_removed: !self.overlay.exists(),
            ssh_port: self.ssh_port,
            port_closed,
            helpers_killed,
        }
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        if self.torn_down.load(Ordering::SeqCst) {
            return;
        }
        for helper in self
            .helpers
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            kill_group(helper.id());
            let _ = helper.start_kill();
        }
        if let Some(child) = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            kill_group(child.id());
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}

/// Kills the process group `pid` leads (the child was spawned with
/// `process_group(0)`, so the group is its own).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        signal_group(pid, libc::SIGKILL);
    }
}

/// QEMU's `-name` for a VM (how leftover processes are found).
pub fn qemu_name(vm_name: &str) -> String {
    format!("spinup-smoke-{}", sanitize(vm_name))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn read_text(path: &Path) -> String {
    tail_of_file(path, CONSOLE_TAIL_BYTES)
}

/// The last `bytes` of a file as text without control characters (the
/// serial console is full of escape sequences and carriage returns).
pub fn tail_of_file(path: &Path, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    strip_control(&String::from_utf8_lossy(&buf))
}

fn strip_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI sequence: ESC [ params final-byte.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Pids of live processes whose command line contains `-name <name>`.
pub fn qemu_processes_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                    args.windows(2)
                        .any(|w| w[0] == b"-name" && w[1] == name.as_bytes())
                })
                .unwrap_or(false)
        })
        .filter(|pid| crate::os::process_alive(*pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_text_loses_escape_sequences_and_carriage_returns() {
        let raw = "\u{1b}[0;32m  OK  \u{1b}[0m] Started ssh.service\r\nlogin: ";
        assert_eq!(strip_control(raw), "  OK  ] Started ssh.service\nlogin: ");
    }

    #[tokio::test]
    async fn a_missing_image_fails_before_qemu_starts_and_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let config = VmConfig {
            name: "t".into(),
            image: dir.path().join("absent.qcow2"),
            format: ImageFormat::Qcow2,
            kernel: dir.path().join("vmlinuz"),
            initrd: None,
            extra_kernel_args: String::new(),
            memory: ByteSize::parse("1GiB").unwrap(),
            cpus: 1,
            accel: AccelChoice::Tcg,
            artifacts_dir: dir.path().into(),
        };
        let err = boot(&config, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.reason.contains("absent.qcow2"), "{err:?}");
        assert!(err.reason.contains("build-guest-image.sh"), "{err:?}");
    }
}
