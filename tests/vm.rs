//! The build, boot and sandbox phases against a real guest under QEMU.
//!
//! Needs root, `qemu-system-x86_64`, `qemu-img`, `ssh` and the guest image.
//! The image comes from `SPINUP_SMOKE_GUEST_DIR` (a directory holding
//! guest.qcow2, vmlinuz and initrd.img) or else from
//! `scripts/build-guest-image.sh`, which builds it once (about 4 minutes on
//! an idle machine; more under load) into ~/.cache/spinup-smoke/guest/<key>/
//! and answers from that cache afterwards. Where QEMU or debootstrap is
//! missing the tests are reported ignored with the reason (build.rs),
//! unless SPINUP_SMOKE_REQUIRE_ALL=1.
//!
//! Boots are expensive under TCG, so the tests run one at a time (a shared
//! lock) and one booted guest serves every assertion of the boot phase.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::RunSoFar;
use spinup_smoke::check::Verdict;
use spinup_smoke::check::{Check, Outcome, Phase, RetryPolicy, Severity};
use spinup_smoke::checks;
use spinup_smoke::checks::testutil::RelayTunnel;
use spinup_smoke::checks::ProbeSpec;
use spinup_smoke::error::Location;
use spinup_smoke::os::process_alive;
use spinup_smoke::os::LocalExecutor;
use spinup_smoke::plan::Plan;
use spinup_smoke::run::{self, NoEvents, RunOptions};
use spinup_smoke::vm::registry::Registry;

static ONE_VM_TEST_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Guest {
    image: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-guest-image.sh")
}

/// The guest image: from SPINUP_SMOKE_GUEST_DIR, else built (or found in
/// the cache) by the script.
fn guest() -> Guest {
    let dir = match std::env::var_os("SPINUP_SMOKE_GUEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let out = std::process::Command::new(script())
                .output()
                .expect("scripts/build-guest-image.sh runs");
            assert!(
                out.status.success(),
                "building the guest image failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let image = text
                .lines()
                .find_map(|l| l.strip_prefix("image="))
                .expect("the script prints image=<path>");
            Path::new(image).parent().unwrap().to_path_buf()
        }
    };
    Guest {
        image: dir.join("guest.qcow2"),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
    }
}

/// A probe context whose VMs live in `vms` (the run's registry).
fn ctx(secs: u64, artifacts: &Path, vms: &Arc<Registry>) -> ProbeContext {
    ProbeContext {
        executor: Arc::new(LocalExecutor),
        tunnel: None,
        via_host: false,
        deadline: Instant::now() + Duration::from_secs(secs),
        artifacts_dir: artifacts.to_path_buf(),
        so_far: Arc::new(RunSoFar::default()),
        vms: vms.clone(),
        sessions: Default::default(),
    }
}

fn boot_spec(name: &str, image: &Path, guest: &Guest, extra: &str) -> checks::vm::Spec {
    toml::from_str(&format!(
        "name = {name:?}\nimage = {:?}\nkernel = {:?}\ninitrd = {:?}\n{extra}",
        image.display().to_string(),
        guest.kernel.display().to_string(),
        guest.initrd.display().to_string()
    ))
    .unwrap()
}

/// Retries like the runner does ("wait until ready" is a retry policy).
async fn until_pass<F, Fut>(secs: u64, mut attempt: F) -> Verdict
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Verdict>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = attempt().await;
        if v.pass || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Live processes whose argv has `-name <name>`.
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn build_and_image_checks_on_the_real_guest_image() {
    let _one = ONE_VM_TEST_AT_A_TIME.lock().await;
    let guest = guest();
    let artifacts = tempfile::tempdir().unwrap();
    let vms = Arc::new(Registry::new());
    let out = tempfile::tempdir().unwrap();
    // The script answers from its cache here: this proves the command,
    // exit code and the published files, not the 4-minute build.
    let build: checks::build::Spec = toml::from_str(&format!(
        "command = [{:?}, {:?}]\nmax_duration = \"30m\"",
        script().display().to_string(),
        out.path().display().to_string()
    ))
    .unwrap();
    let v = checks::build::run(&build, &ctx(1800, artifacts.path(), &vms)).await;
    assert!(v.pass, "{v:?}");
    assert!(v.metrics.contains_key("build_seconds"));
    assert!(out.path().join("guest.qcow2").exists());

    let image: checks::image::Spec = toml::from_str(&format!(
        "path = {:?}\nformat = \"qcow2\"\nmin_virtual_size = \"3GiB\"",
        guest.image.display().to_string()
    ))
    .unwrap();
    let v = checks::image::run(&image, &ctx(300, artifacts.path(), &vms)).await;
    assert!(v.pass, "{v:?}");
    let digest = spinup_smoke::digest::sha256_file(&guest.image).unwrap();
    assert!(v.evidence.starts_with(&digest), "{v:?}");
    eprintln!("guest image digest {digest}");

    let too_big: checks::image::Spec = toml::from_str(&format!(
        "path = {:?}\nmin_virtual_size = \"8GiB\"",
        guest.image.display().to_string()
    ))
    .unwrap();
    let v = checks::image::run(&too_big, &ctx(300, artifacts.path(), &vms)).await;
    assert!(
        !v.pass && v.found.contains("virtual size 3.00 GiB"),
        "{v:?}"
    );
}

/// The guest script's cache hit, from a cache directory laid out as a build
/// leaves it (under the script's own key): the build check says "cached,
/// built at <time>" and judges the recorded build's time, here 20 minutes
/// against the 15-minute SAFE budget. No debootstrap runs.
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn the_guest_script_reports_a_cache_hit_with_the_real_build_time() {
    let cache = tempfile::tempdir().unwrap();
    let key = &spinup_smoke::digest::sha256_file(&script()).unwrap()["sha256:".len()..][..16];
    let dir = cache.path().join("guest").join(key);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "guest.qcow2",
        "vmlinuz",
        "initrd.img",
        "ssh_host_ed25519_key.pub",
        "complete",
    ] {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    std::fs::write(
        dir.join("build_info"),
        "build_started=2026-12-01T10:00:00Z\nbuild_finished=2026-12-01T10:20:00Z\nbuild_seconds=1200\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let build = |budget: &str| -> checks::build::Spec {
        toml::from_str(&format!(
            "command = [{:?}, {:?}]\nmax_duration = {budget:?}\nenv = {{ SPINUP_SMOKE_CACHE_DIR = {:?} }}",
            script().display().to_string(),
            out.path().display().to_string(),
            cache.path().display().to_string()
        ))
        .unwrap()
    };
    let vms = Arc::new(Registry::new());
    let v = checks::build::run(&build("900s"), &ctx(60, out.path(), &vms)).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("cached, built at 2026-12-01T10:20:00Z (the build ran 1200s from 2026-12-01T10:00:00Z), over the 900s budget"),
        "{v:?}"
    );
    assert_eq!(v.metrics["build_seconds"], 1200.0);
    let v = checks::build::run(&build("30m"), &ctx(60, out.path(), &vms)).await;
    assert!(v.pass && v.found.contains("cached, built at"), "{v:?}");
    assert!(out.path().join("guest.qcow2").exists());
}

/// One boot serves the boot phase: the boot check, commands over ssh, the
/// systemd checks over D-Bus (each passing and failing for a real reason),
/// the same guest read as "the check's host" through a relaying tunnel (a
/// flapping service failing `max_restarts`), then the registry's
/// `teardown_all` leaves nothing behind.
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn a_booted_guest_answers_ssh_and_systemd_over_dbus_and_is_torn_down() {
    let _one = ONE_VM_TEST_AT_A_TIME.lock().await;
    let guest = guest();
    let artifacts = tempfile::tempdir().unwrap();
    let vms = Arc::new(Registry::new());
    let rss_before = rss_kib();
    let boot = boot_spec("itest-guest", &guest.image, &guest, "");
    let v = checks::vm::run(&boot, &ctx(900, artifacts.path(), &vms)).await;
    assert!(v.pass, "{v:?}");
    eprintln!(
        "boot: {} / {}",
        v.found,
        v.evidence.lines().next().unwrap_or("")
    );
    assert!(v.evidence.contains("accelerator"), "{v:?}");
    let vm = vms.get("itest-guest").expect("registered");
    assert!(vm.console_log.exists());
    let image_digest_before = spinup_smoke::digest::sha256_file(&guest.image).unwrap();

    let command = |text: &str| -> checks::vm_command::Spec {
        toml::from_str(&format!("vm = \"itest-guest\"\n{text}")).unwrap()
    };
    let c = ctx(120, artifacts.path(), &vms);
    let v =
        checks::vm_command::run(&command("run = [\"nproc\"]\nstdout_equals = \"2\\n\""), &c).await;
    assert!(v.pass, "{v:?}");
    assert!(v.evidence.contains("ssh root@127.0.0.1"), "{v:?}");
    // A guest with another CPU count fails the same check, saying what it has.
    let v =
        checks::vm_command::run(&command("run = [\"nproc\"]\nstdout_equals = \"3\\n\""), &c).await;
    assert!(!v.pass && v.found.contains("stdout is \"2\\n\""), "{v:?}");
    let v = checks::vm_command::run(&command("script = \"echo in-guest >&2; exit 7\""), &c).await;
    assert!(!v.pass && v.found.contains("exit code 7"), "{v:?}");
    assert!(v.evidence.contains("in-guest"), "{v:?}");

    let systemd = |text: &str| -> checks::systemd::Spec {
        toml::from_str(&format!("vm = \"itest-guest\"\n{text}")).unwrap()
    };
    // The runner retries until the deadline: the guest may still be starting.
    let running = systemd("assert = \"system_running\"");
    let v = until_pass(600, || checks::systemd::run(&running, &c)).await;
    assert!(v.pass, "{v:?}");
    assert!(v.metrics.contains_key("boot_userspace_seconds"), "{v:?}");
    assert!(v.metrics.contains_key("boot_kernel_seconds"), "{v:?}");
    eprintln!("systemd: {v:?}");
    let v = checks::systemd::run(&systemd("assert = \"no_failed_units\""), &c).await;
    assert!(v.pass, "{v:?}");
    let v = checks::systemd::run(
        &systemd("assert = \"unit_active\"\nunit = \"ssh.service\""),
        &c,
    )
    .await;
    assert!(v.pass && v.metrics.contains_key("n_restarts"), "{v:?}");
    let v = checks::systemd::run(
        &systemd("assert = \"unit_active\"\nunit = \"postgresql@15-main.service\""),
        &c,
    )
    .await;
    assert!(v.pass, "{v:?}");
    // A oneshot unit is active but `exited`, not `running`.
    let v = checks::systemd::run(
        &systemd("assert = \"unit_active\"\nunit = \"spinup-ssh-key.service\""),
        &c,
    )
    .await;
    assert!(!v.pass && v.found.contains("active/exited"), "{v:?}");
    let v = checks::systemd::run(
        &systemd("assert = \"unit_active\"\nunit = \"no-such.service\""),
        &c,
    )
    .await;
    assert!(!v.pass && v.found.contains("not found"), "{v:?}");

    // A unit fails for real: the system is degraded and the unit is named.
    let v = checks::vm_command::run(
        &command("run = [\"systemd-run\", \"--unit=spinup-breaks\", \"--wait\", \"false\"]\nexit_code = 1"),
        &c,
    )
    .await;
    assert!(v.pass, "{v:?}");
    let v = checks::systemd::run(&running, &c).await;
    assert!(!v.pass && v.found.contains("degraded"), "{v:?}");
    assert!(v.evidence.contains("spinup-breaks.service"), "{v:?}");
    let v = checks::systemd::run(&systemd("assert = \"no_failed_units\""), &c).await;
    assert!(
        !v.pass && v.found.contains("spinup-breaks.service"),
        "{v:?}"
    );

    // The same guest as "the check's host": no `vm`, the host's system bus
    // through its tunnel (here a relay to the guest's forwarded bus), the
    // target's commands over ssh. A service that keeps exiting under
    // Restart=always is flapping: NRestarts over max_restarts fails it.
    let v = checks::vm_command::run(
        &command("run = [\"systemd-run\", \"--unit=spinup-flaps\", \"-p\", \"Restart=always\", \"-p\", \"RestartSec=500ms\", \"-p\", \"StartLimitIntervalSec=0\", \"/bin/sh\", \"-c\", \"sleep 0.2; exit 3\"]"),
        &c,
    )
    .await;
    assert!(v.pass, "{v:?}");
    let tunnel = Arc::new(RelayTunnel::new().map_socket(
        "/run/dbus/system_bus_socket",
        &vm.work_dir.join("system_bus.sock"),
    ));
    let mut host = ctx(120, artifacts.path(), &vms);
    host.executor = Arc::new(vm.executor());
    host.tunnel = Some(tunnel.clone());
    let on_host = |text: &str| -> checks::systemd::Spec { toml::from_str(text).unwrap() };
    let v = checks::systemd::run(
        &on_host("assert = \"units_active\"\nunits = [\"ssh.service\", \"postgresql@15-main.service\"]\nmax_restarts = 0"),
        &host,
    )
    .await;
    assert!(v.pass, "{v:?}");
    assert!(v.expected.contains("on ssh relay@test-host:22"), "{v:?}");
    assert!(tunnel.connections() >= 1);
    let flapping = on_host(
        "assert = \"units_active\"\nunits = [\"ssh.service\", \"spinup-flaps.service\"]\nmax_restarts = 1\nsub_state = \"running\"",
    );
    let v = until_pass(60, || async {
        let v = checks::systemd::run(&flapping, &host).await;
        // Passes (the loop stops) once the restart count has shown.
        Verdict {
            pass: v.found.contains("more than max_restarts = 1"),
            ..v
        }
    })
    .await;
    assert!(v.pass, "never over the limit: {v:?}");
    let v = checks::systemd::run(&flapping, &host).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("spinup-flaps.service") && v.found.contains("(flapping)"),
        "{v:?}"
    );
    assert!(!v.found.contains("ssh.service"), "{v:?}");
    eprintln!("flapping: {}", v.found);

    let rss_during = rss_kib();
    eprintln!("validator RSS with a VM running: {rss_during} KiB (before boot {rss_before} KiB)");

    let (pid, overlay, port) = (vm.qemu_pid, vm.overlay.clone(), vm.ssh_port);
    drop(vm);
    let reports = vms.teardown_all().await;
    assert_eq!(reports.len(), 1);
    let (name, report) = &reports[0];
    assert_eq!(name, "itest-guest");
    assert!(report.clean(), "{report}");
    assert!(!process_alive(pid));
    assert!(!overlay.exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(vms.get("itest-guest").is_none());
    // The image under test was never written.
    assert_eq!(
        spinup_smoke::digest::sha256_file(&guest.image).unwrap(),
        image_digest_before
    );
    let v = checks::systemd::run(&running, &c).await;
    assert!(!v.pass && v.found.contains("no running VM"), "{v:?}");
}

/// A disk with no filesystem: the kernel boots, the initramfs cannot mount
/// root and panics, QEMU exits (-no-reboot): FAIL with the console tail.
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn a_corrupt_image_fails_the_boot_with_the_console_tail_and_leaves_nothing() {
    let _one = ONE_VM_TEST_AT_A_TIME.lock().await;
    let guest = guest();
    let artifacts = tempfile::tempdir().unwrap();
    let disks = tempfile::tempdir().unwrap();
    let corrupt = disks.path().join("corrupt.qcow2");
    let status = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&corrupt)
        .arg("1G")
        .status()
        .unwrap();
    assert!(status.success());
    let vms = Arc::new(Registry::new());
    let boot = boot_spec("itest-corrupt", &corrupt, &guest, "");
    let v = checks::vm::run(&boot, &ctx(600, artifacts.path(), &vms)).await;
    assert!(!v.pass, "{v:?}");
    assert!(v.evidence.contains("console tail:"), "{v:?}");
    assert!(
        v.evidence.contains("Linux version") || v.evidence.contains("/dev/vda"),
        "{v:?}"
    );
    assert!(v.evidence.contains("teardown: qemu pid"), "{v:?}");
    assert!(!v.evidence.contains("gone: NO"), "{v:?}");
    assert!(
        spinup_smoke::vm::machine::qemu_processes_named("spinup-smoke-itest-corrupt").is_empty()
    );
    assert!(vms.get("itest-corrupt").is_none());
    eprintln!("corrupt image: {}", v.found);
}

/// sshd masked: the guest boots but never answers ssh; the check fails at
/// its deadline and the VM is torn down.
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn a_guest_that_never_answers_ssh_fails_at_the_deadline() {
    let _one = ONE_VM_TEST_AT_A_TIME.lock().await;
    let guest = guest();
    let artifacts = tempfile::tempdir().unwrap();
    let boot = boot_spec(
        "itest-nossh",
        &guest.image,
        &guest,
        "kernel_args = \"systemd.mask=ssh.service\"",
    );
    let vms = Arc::new(Registry::new());
    let v = checks::vm::run(&boot, &ctx(90, artifacts.path(), &vms)).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("did not answer before the deadline"),
        "{v:?}"
    );
    assert!(v.evidence.contains("console tail:"), "{v:?}");
    assert!(!v.evidence.contains("gone: NO"), "{v:?}");
    assert!(spinup_smoke::vm::machine::qemu_processes_named("spinup-smoke-itest-nossh").is_empty());
}

/// QEMU killed while the kernel boots: the check fails at once (it does not
/// wait for the deadline) with the console tail, and nothing is left.
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn qemu_dying_mid_boot_fails_the_boot_with_the_console_tail() {
    let _one = ONE_VM_TEST_AT_A_TIME.lock().await;
    let guest = guest();
    let artifacts = tempfile::tempdir().unwrap();
    let boot = boot_spec("itest-dies", &guest.image, &guest, "accel = \"tcg\"");
    let context = ctx(900, artifacts.path(), &Arc::new(Registry::new()));
    let booting = tokio::spawn(async move { checks::vm::run(&boot, &context).await });
    let artifacts_path = artifacts.path().to_path_buf();
    // Wait for the kernel's banner on the console, then kill QEMU.
    let killer = async {
        loop {
            let console = std::fs::read_dir(&artifacts_path)
                .unwrap()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with("console.log"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .unwrap_or_default();
            let pids = spinup_smoke::vm::machine::qemu_processes_named("spinup-smoke-itest-dies");
            if console.contains("Linux version") && !pids.is_empty() {
                for pid in pids {
                    // SAFETY: plain kill(2) of the QEMU this test started.
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(600), killer)
        .await
        .expect("QEMU started and printed the kernel banner");
    let v = booting.await.unwrap();
    assert!(!v.pass, "{v:?}");
    assert!(v.found.contains("QEMU exited"), "{v:?}");
    // The console tail is there (the banner itself may have scrolled out).
    assert!(v.evidence.contains("console tail:\n"), "{v:?}");
    assert!(
        !v.evidence.contains("nothing on the serial console"),
        "{v:?}"
    );
    assert!(!v.evidence.contains("gone: NO"), "{v:?}");
}

/// A direct caller of `run::run` (not the CLI) gets the run's VMs torn
/// down: after a one-check plan that boots a guest returns, no QEMU of that
/// VM is left (by the pid in the evidence and by its `-name` in /proc).
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn run_tears_down_the_vms_it_booted_before_it_returns() {
    let _one = ONE_VM_TEST_AT_A_TIME.lock().await;
    let guest = guest();
    let artifacts = tempfile::tempdir().unwrap();
    let name = "itest-run-owned";
    let check = Check {
        id: "boot.run_owned".into(),
        phase: Phase::Boot,
        description: "the guest boots".into(),
        service: "guest".into(),
        severity: Severity::Fail,
        timeout: Duration::from_secs(900),
        retry: RetryPolicy::ONCE,
        needs: Vec::new(),
        hint: None,
        stand_in: false,
        probe: ProbeSpec::Vm(boot_spec(name, &guest.image, &guest, "")).into_probe(),
        logs: None,
        when: Default::default(),
        smoke: false,
        location: Location {
            file: "vm.toml".into(),
            line: 1,
            column: 1,
        },
    };
    let plan = Plan::build(vec![check], &[]).unwrap();
    let options = RunOptions {
        jobs: 1,
        global_timeout: Duration::from_secs(1200),
        artifacts_dir: artifacts.path().to_path_buf(),
        hosts: Arc::new(spinup_smoke::host::Hosts::local()),
        redact: Arc::new(|s: &str| s.to_string()),
        safe_mode: true,
        so_far: Default::default(),
    };
    let report = run::run(&plan, &options, Arc::new(NoEvents), std::future::pending()).await;
    let result = &report.results[0];
    assert_eq!(result.status, Outcome::Pass, "{result:?}");
    let pid: u32 = result
        .evidence
        .split("qemu pid ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no qemu pid in the evidence: {result:?}"));
    assert!(!process_alive(pid), "QEMU pid {pid} outlived run::run");
    assert!(
        spinup_smoke::vm::machine::qemu_processes_named(&format!("spinup-smoke-{name}")).is_empty()
    );
}

/// Two 4 GiB / 2 vCPU sandboxes at once: limits proven inside each guest,
/// isolation proven with markers, the job's output and exit code collected
/// (exit 3 here, so the check fails for exactly that reason), and a clean
/// teardown proven (no QEMU, overlay, port or tap left).
#[tokio::test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-system-x86_64, qemu-img, ssh and debootstrap (or SPINUP_SMOKE_GUEST_DIR): ./scripts/setup.sh installs them"
)]
async fn sandbox_cycle_proves_limits_isolation_job_result_and_cleanup() {
    let _one = ONE_VM_TEST_AT_A_TIME.lock().await;
    let guest = guest();
    let artifacts = tempfile::tempdir().unwrap();
    let spec: checks::sandbox::Spec = toml::from_str(&format!(
        "image = {:?}\nkernel = {:?}\ninitrd = {:?}\nisolation = true\njob = [\"sh\", \"-c\", \"echo job-ran-in-$(hostname); exit 3\"]\njob_stdout_contains = [\"job-ran-in-spinup-guest\"]",
        guest.image.display().to_string(),
        guest.kernel.display().to_string(),
        guest.initrd.display().to_string()
    ))
    .unwrap();
    let v = checks::sandbox::run(
        &spec,
        &ctx(1200, artifacts.path(), &Arc::new(Registry::new())),
    )
    .await;
    eprintln!("sandbox: {v:?}");
    assert!(!v.pass, "{v:?}");
    // The only failure is the job's exit code.
    assert_eq!(v.found, "job exit code 3", "{v:?}");
    assert!(v.evidence.contains("job-ran-in-spinup-guest"), "{v:?}");
    assert!(v.evidence.contains("MemTotal:"), "{v:?}");
    assert!(v.evidence.contains("markers visible in sandbox a"), "{v:?}");
    assert_eq!(v.metrics["guest_nproc"], 2.0);
    assert!(v.metrics["guest_mem_total_mib"] > 3400.0, "{v:?}");
    assert!(v.metrics.contains_key("sandbox_cycle_seconds"));
    assert_eq!(v.evidence.matches("teardown: qemu pid").count(), 2, "{v:?}");
    assert!(!v.evidence.contains(": NO"), "{v:?}");
    assert!(!v.evidence.contains("QEMU still running"), "{v:?}");
}

#[test]
fn the_vm_scenario_loads_with_the_real_loader() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.toml");
    std::fs::write(
        &target,
        "name = \"vm\"\nrave_version = \"test\"\n[vars]\nimage.build_dir = \"/g\"\nimage.path = \"/g/guest.qcow2\"\nimage.kernel = \"/g/vmlinuz\"\nimage.initrd = \"/g/initrd.img\"\n",
    )
    .unwrap();
    let target = spinup_smoke::profile::target::load(&target).unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/vm.toml");
    let profiles = spinup_smoke::profile::load(&[scenario], &target, Default::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let kinds: Vec<&str> = profiles.checks.iter().map(|c| c.probe.kind()).collect();
    for kind in ["build", "image", "vm", "systemd", "vm_command", "sandbox"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // The build budget is the facts' SAFE one: 15 minutes.
    let build = profiles
        .checks
        .iter()
        .find(|c| c.id == "vm.image-builds")
        .unwrap();
    let Some(ProbeSpec::Build(spec)) = build.probe.as_any().downcast_ref::<ProbeSpec>() else {
        panic!("vm.image-builds is not a build check");
    };
    assert_eq!(spec.max_duration.0, Duration::from_secs(900));
}
