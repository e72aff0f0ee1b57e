//! Chooses QEMU's accelerator. `/dev/kvm` existing is not enough: on a
//! nested paravirtual KVM (this kind of cloud machine) stock kernels hang
//! before printing a line. So `auto` runs a *KVM boot probe*: the guest's
//! own kernel under `-accel kvm` with no root disk must print its banner
//! ("Linux version") on the serial console within `KVM_PROBE_WINDOW`;
//! if it does, KVM is used, otherwise TCG. The decision and its reason are
//! recorded in the boot check's evidence, and cached per kernel for the
//! rest of the process (the probe costs at most the window once).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::os::process::GroupGuard;

/// How long a KVM-booted kernel gets to print its banner.
pub const KVM_PROBE_WINDOW: Duration = Duration::from_secs(8);

/// What the profile asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    /// KVM when the boot probe shows it really works, else TCG.
    #[default]
    Auto,
    /// KVM, no probe (fails the boot when KVM is unusable).
    Kvm,
    /// Software emulation (TCG), always works, about 5-10x slower.
    Tcg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    Kvm,
    Tcg,
}

impl Accelerator {
    /// QEMU's `-accel` and `-cpu` arguments.
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accelerator::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accelerator::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max"],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Accelerator::Kvm => "kvm",
            Accelerator::Tcg => "tcg",
        }
    }
}

/// The accelerator used and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelDecision {
    pub accel: Accelerator,
    pub reason: String,
}

impl std::fmt::Display for AccelDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accelerator {} ({})",
            self.accel.name().to_uppercase(),
            self.reason
        )
    }
}

fn cache() -> &'static tokio::sync::Mutex<HashMap<PathBuf, AccelDecision>> {
    static CACHE: OnceLock<tokio::sync::Mutex<HashMap<PathBuf, AccelDecision>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Decides the accelerator for booting `kernel`.
pub async fn decide(choice: AccelChoice, kernel: &Path, deadline: Instant) -> AccelDecision {
    match choice {
        AccelChoice::Tcg => AccelDecision {
            accel: Accelerator::Tcg,
            reason: "asked for by the profile (accel = \"tcg\")".into(),
        },
        AccelChoice::Kvm => AccelDecision {
            accel: Accelerator::Kvm,
            reason: "asked for by the profile (accel = \"kvm\"), not probed".into(),
        },
        AccelChoice::Auto => {
            // Held across the probe so concurrent boots probe only once.
            let mut cached = cache().lock().await;
            if let Some(decision) = cached.get(kernel) {
                return decision.clone();
            }
            let decision = probe_kvm(kernel, deadline).await;
            cached.insert(kernel.to_path_buf(), decision.clone());
            decision
        }
    }
}

/// Whether this process may open /dev/kvm read-write.
fn kvm_device_usable() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| format!("/dev/kvm cannot be opened read-write: {e}"))
}

async fn probe_kvm(kernel: &Path, deadline: Instant) -> AccelDecision {
    let tcg = |reason: String| AccelDecision {
        accel: Accelerator::Tcg,
        reason,
    };
    if let Err(e) = kvm_device_usable() {
        return tcg(e);
    }
    let window = KVM_PROBE_WINDOW.min(deadline.saturating_duration_since(Instant::now()));
    let mut cmd = tokio::process::Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1"])
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .args(["-serial", "stdio", "-monitor", "none"])
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1 loglevel=4"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // The probe dies with this process, also when it is killed (SIGKILL
    // runs no drop guard): a KVM that does not boot spins a core until it
    // is stopped.
    let parent = std::process::id();
    // SAFETY: die_with_parent makes only async-signal-safe calls; nothing
    // else runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || crate::os::process::die_with_parent(parent));
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return tcg(format!("KVM boot probe could not start QEMU: {e}")),
    };
    // Kills QEMU's group when the probe ends, also when it is cancelled.
    let group = GroupGuard::new(child.id());
    let mut stdout = child.stdout.take();
    let started = Instant::now();
    let mut seen = Vec::new();
    let banner = async {
        use tokio::io::AsyncReadExt;
        let Some(out) = stdout.as_mut() else {
            return false;
        };
        let mut chunk = [0u8; 4096];
        loop {
            match out.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    seen.extend_from_slice(&chunk[..n]);
                    if String::from_utf8_lossy(&seen).contains("Linux version") {
                        return true;
                    }
                }
            }
        }
    };
    let printed = tokio::time::timeout(window, banner).await.unwrap_or(false);
    drop(group);
    let _ = child.wait().await;
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ =
            tokio::time::timeout(Duration::from_millis(200), err.read_to_string(&mut stderr)).await;
    }
    if printed {
        AccelDecision {
            accel: Accelerator::Kvm,
            reason: format!(
                "KVM boot probe: the kernel printed its banner after {:.1}s",
                started.elapsed().as_secs_f64()
            ),
        }
    } else {
        let why = stderr.lines().find(|l| !l.trim().is_empty()).map_or_else(
            || {
                format!(
                    "no kernel banner on the serial console within {}s",
                    window.as_secs()
                )
            },
            |l| format!("QEMU said: {}", l.trim()),
        );
        tcg(format!(
            "/dev/kvm exists but KVM does not boot this kernel ({why}); nested paravirtual KVM?"
        ))
    }
}
