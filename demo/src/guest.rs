//! The demo guest: one image, built once by `scripts/build-guest-image.sh`
//! (debootstrap, a few minutes), cached under ~/.cache/spinup-smoke and
//! linked into the state directory, serving two purposes:
//!
//! - the build, boot and sandbox phases boot it themselves (`[check.vm]`,
//!   `[check.sandbox]`, from the target's `image.*` vars);
//! - `up` boots it once more as a long-lived demo service, the host the
//!   security phase examines over ssh (the target's `[hosts.guest]`): QEMU
//!   with user networking forwarding `127.0.0.1:<port>` to the guest's 22,
//!   booted from an overlay in `guest/` (the image is never written), its
//!   pid recorded in `run/guest.pid` like every other component, so `down`
//!   stops it (also after a killed `up`).
//!
//! The guest is hardened like a P6 host (see the build script). `up` makes
//! the key of its administrator `rave` (`secrets/guest_ssh_key`, passed as
//! a public key on the kernel command line with `spinup.ssh_user=rave`, so
//! the guest admits no root login), pins its host key (`guest/known_hosts`, from the
//! key the build made) and hands it its secrets: a tar that QEMU passes as
//! the fw_cfg file `opt/rave/secrets`, which the guest places under
//! /run/secrets at boot, each with its owner from rave-facts.json and mode
//! 0400, as sops-nix does; nginx's key is signed by the demo CA for
//! rave.local.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spinup_smoke::error::UserError;
use spinup_smoke::os::{CommandExecutor, CommandSpec, LocalExecutor};
use spinup_smoke::vm::accel::{self, AccelChoice};

use crate::assets::Assets;
use crate::ca::DemoCa;
use crate::process::{self, log_tail, spawn, Launch};
use crate::{random_secret, write_private};

/// The guest image's files, as the target's `image.*` vars name them.
#[derive(Debug, Clone)]
pub struct Guest {
    /// `image.build_dir`: where the files are.
    pub dir: PathBuf,
    /// `image.path`: the qcow2 root disk.
    pub image: PathBuf,
    /// `image.kernel`
    pub kernel: PathBuf,
    /// `image.initrd`
    pub initrd: PathBuf,
    /// The public half of the ssh host key the image's sshd presents.
    pub host_key: PathBuf,
}

impl Guest {
    /// The files of a guest image in `dir`.
    pub fn in_dir(dir: &Path) -> Guest {
        Guest {
            dir: dir.to_path_buf(),
            image: dir.join("guest.qcow2"),
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
            host_key: dir.join("ssh_host_ed25519_key.pub"),
        }
    }
}

/// A first build takes a few minutes, more under load; past this it is stuck.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// Builds (or reuses) the demo guest image into `dir`.
pub fn prepare(assets: &Assets, dir: &Path) -> Result<Guest, UserError> {
    println!("demo: guest image (built once with debootstrap, a few minutes; then cached)");
    let mut build = std::process::Command::new(assets.join("scripts/build-guest-image.sh"));
    build
        .arg(dir)
        .current_dir(assets.root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    // In its own process group, dying with `demo up`: a killed `up` leaves
    // no debootstrap writing into the state directory.
    let status = spinup_smoke::os::process::status_within(build, BUILD_TIMEOUT)
        .map_err(|e| UserError::new(format!("cannot run scripts/build-guest-image.sh: {e}")))?;
    if !status.success() {
        return Err(UserError::new(format!("building the demo guest image failed ({status})"))
            .hint("run scripts/build-guest-image.sh to see why; it needs root, debootstrap and the Debian mirror"));
    }
    let guest = Guest::in_dir(dir);
    if !guest.host_key.is_file() {
        return Err(UserError::new(format!(
            "the guest image in {} has no ssh host key ({} is missing)",
            dir.display(),
            guest.host_key.display()
        ))
        .hint("the cached image predates the hardened build: remove ~/.cache/spinup-smoke/guest and run `demo up` again"));
    }
    Ok(guest)
}

/// The long-lived guest's memory and vCPUs: one, leaving the other cores to
/// the services that start while it boots.
pub const MEMORY_MIB: u32 = 1024;
pub const CPUS: u32 = 1;
/// From QEMU's start to a guest whose systemd reports `running`; boots take
/// well under a minute under KVM, one or two under TCG on a busy machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// Who logs in to the guest: a key-only administrator with passwordless
/// sudo; with it on the kernel command line the guest admits no root login.
pub const USER: &str = "rave";
/// Mode of every secret placed in the guest (sops-nix's default).
pub const SECRET_MODE: &str = "0400";

/// The booted guest, as the target's `[hosts.guest]` names it.
#[derive(Debug, Clone)]
pub struct GuestHost {
    /// The host port QEMU forwards to the guest's 22.
    pub ssh_port: u16,
    /// The host port QEMU forwards to the guest's 3002 (its TLS front).
    pub tls_port: u16,
    /// [`USER`]'s private key (`secrets/guest_ssh_key`).
    pub key: PathBuf,
    /// `[127.0.0.1]:<ssh_port>` with the image's host key.
    pub known_hosts: PathBuf,
    /// The accelerator (`kvm` or `tcg`) and why.
    pub accel: &'static str,
    pub accel_reason: String,
}

/// The secrets placed in the guest: the names and owners of
/// `secrets.files` in rave-facts.json, plus nginx's certificate chain.
pub fn secret_owners(facts: &serde_json::Value) -> Result<Vec<(String, String)>, UserError> {
    let files = facts["secrets"]["files"].as_object().ok_or_else(|| {
        UserError::new("rave-facts.json has no secrets.files table (secret name -> owner)")
            .hint("regenerate it with scripts/gen-facts.sh")
    })?;
    let mut owners = Vec::new();
    for (name, owner) in files {
        let owner = owner.as_str().ok_or_else(|| {
            UserError::new(format!(
                "rave-facts.json secrets.files.{name} is not a user name"
            ))
        })?;
        owners.push((name.clone(), owner.to_string()));
    }
    if !files.contains_key("tls_key") {
        return Err(UserError::new(
            "rave-facts.json secrets.files has no tls_key: the guest's nginx needs it",
        ));
    }
    let nginx = files["tls_key"].as_str().unwrap_or("nginx").to_string();
    owners.push(("tls_cert".into(), nginx));
    Ok(owners)
}

/// The manifest the guest's spinup-secrets reads: `<name> <owner> <mode>`.
pub fn manifest(owners: &[(String, String)]) -> String {
    owners
        .iter()
        .map(|(name, owner)| format!("{name} {owner} {SECRET_MODE}\n"))
        .collect()
}

/// Writes the secrets bundle (a tar, mode 0600) QEMU hands to the guest:
/// random values, except nginx's key and certificate from the demo CA.
fn bundle(state: &Path, assets: &Assets, ca: &DemoCa) -> Result<PathBuf, UserError> {
    let facts_path = assets.join("health-checks/rave-facts.json");
    let facts: serde_json::Value = std::fs::read_to_string(&facts_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| UserError::new(format!("cannot read {}: {e}", facts_path.display())))?;
    let owners = secret_owners(&facts)?;
    let staging = state.join("guest/bundle");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&staging)
            .map_err(|e| UserError::new(format!("cannot create {}: {e}", staging.display())))?;
    }
    let (chain, key) = ca.leaf()?;
    for (name, _) in &owners {
        let value = match name.as_str() {
            "tls_key" => key.clone(),
            "tls_cert" => chain.clone(),
            _ => random_secret(),
        };
        write_private(&staging.join(name), &value)?;
    }
    write_private(&staging.join("manifest"), &manifest(&owners))?;
    let tar = state.join("guest/secrets.tar");
    write_private(&tar, "")?;
    let made = process::run_to_end(
        state,
        "guest",
        "tar",
        &[
            "-c",
            "-f",
            &tar.display().to_string(),
            "-C",
            &staging.display().to_string(),
            ".",
        ],
        Duration::from_secs(30),
    );
    let _ = std::fs::remove_dir_all(&staging);
    made?;
    Ok(tar)
}

fn free_port() -> Result<u16, UserError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| UserError::new(format!("cannot find a free port: {e}")))
}

/// Boots the guest as a demo service and waits (with a deadline) until ssh
/// answers with the pinned host key and systemd reports `running`.
pub async fn boot(
    state: &Path,
    assets: &Assets,
    guest: &Guest,
    ca: &DemoCa,
) -> Result<GuestHost, UserError> {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let dir = state.join("guest");
    let key = state.join("secrets/guest_ssh_key");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    process::run_to_end(
        state,
        "guest",
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "spinup-smoke-demo",
            "-f",
            &key.display().to_string(),
        ],
        Duration::from_secs(30),
    )?;
    let public = std::fs::read_to_string(key.with_extension("pub"))
        .map_err(|e| UserError::new(format!("ssh-keygen wrote no public key: {e}")))?;
    let mut words = public.split_whitespace();
    let (Some(kind), Some(base64)) = (words.next(), words.next()) else {
        return Err(UserError::new(format!(
            "unexpected public key format: {public}"
        )));
    };
    let cmdline_key = format!("{kind}:{base64}");

    let host_key = std::fs::read_to_string(&guest.host_key)
        .map_err(|e| UserError::new(format!("cannot read {}: {e}", guest.host_key.display())))?;
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    let ssh_port = free_port()?;
    let tls_port = free_port()?;
    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{ssh_port} {}\n", host_key.join(" ")),
    )
    .map_err(|e| UserError::new(format!("cannot write {}: {e}", known_hosts.display())))?;

    let secrets = bundle(state, assets, ca)?;
    let overlay = dir.join("overlay.qcow2");
    process::run_to_end(
        state,
        "guest",
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            &guest.image.display().to_string(),
            &overlay.display().to_string(),
        ],
        Duration::from_secs(60),
    )?;
    let decision = accel::decide(AccelChoice::Auto, &guest.kernel, deadline).await;
    let console = process::log_path(state, "guest-console");
    let mut args: Vec<String> = vec![
        "-name".into(),
        "spinup-smoke-demo-guest".into(),
        "-machine".into(),
        "q35".into(),
    ];
    args.extend(decision.accel.qemu_args().iter().map(|a| a.to_string()));
    for a in [
        "-m",
        &MEMORY_MIB.to_string(),
        "-smp",
        &CPUS.to_string(),
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-monitor",
        "none",
        "-serial",
        &format!("file:{}", console.display()),
        "-kernel",
        &guest.kernel.display().to_string(),
        "-initrd",
        &guest.initrd.display().to_string(),
        "-append",
        &format!("root=/dev/vda rw console=ttyS0 panic=-1 net.ifnames=0 spinup.ssh_key={cmdline_key} spinup.ssh_user={USER}"),
        "-drive",
        &format!("file={},if=virtio,format=qcow2,cache=unsafe", overlay.display()),
        "-netdev",
        &format!("user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22,hostfwd=tcp:127.0.0.1:{tls_port}-:3002"),
        "-device",
        "virtio-net-pci,netdev=net0",
        "-device",
        "virtio-rng-pci",
        "-fw_cfg",
        &format!("name=opt/rave/secrets,file={}", secrets.display()),
    ] {
        args.push(a.to_string());
    }
    let pid = spawn(
        state,
        &Launch {
            name: "guest",
            program: "qemu-system-x86_64".into(),
            args,
            env: vec![],
            cwd: Some(dir.clone()),
        },
    )?;
    let host = GuestHost {
        ssh_port,
        tls_port,
        key,
        known_hosts,
        accel: decision.accel.name(),
        accel_reason: decision.reason.clone(),
    };
    wait_until_running(state, &host, pid, deadline).await?;
    Ok(host)
}

/// The ssh invocation that runs `command` in the guest as [`USER`], with
/// the pinned host key (and nothing else) trusted.
pub fn ssh(host: &GuestHost, command: &str) -> CommandSpec {
    let key = host.key.display().to_string();
    let known = format!("UserKnownHostsFile={}", host.known_hosts.display());
    let port = host.ssh_port.to_string();
    CommandSpec::new(
        "ssh",
        &[
            "-F",
            "/dev/null",
            "-i",
            &key,
            "-p",
            &port,
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &known,
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            &format!("{USER}@127.0.0.1"),
            "--",
            command,
        ],
    )
}

/// Waits for ssh (host key pinned) and then for systemd to finish booting.
async fn wait_until_running(
    state: &Path,
    host: &GuestHost,
    pid: u32,
    deadline: Instant,
) -> Result<(), UserError> {
    let tails = || {
        format!(
            "console ({}):\n{}\nQEMU ({}):\n{}",
            process::log_path(state, "guest-console").display(),
            log_tail(state, "guest-console", 15),
            process::log_path(state, "guest").display(),
            log_tail(state, "guest", 5)
        )
    };
    let mut last = String::from("no attempt finished");
    loop {
        if !process::alive(pid) {
            return Err(UserError::new(format!(
                "the demo guest's QEMU exited before ssh answered ({last}); {}",
                tails()
            ))
            .hint("fix the cause above, then `spinup-smoke demo down` and try again"));
        }
        if Instant::now() >= deadline {
            return Err(UserError::new(format!(
                "the demo guest did not boot to a running system within {}s ({last}); {}",
                BOOT_TIMEOUT.as_secs(),
                tails()
            ))
            .hint("is the machine overloaded (TCG is slow)? `spinup-smoke demo down` cleans up"));
        }
        let attempt = deadline.min(Instant::now() + Duration::from_secs(60));
        // `--wait` returns once boot has finished: running or degraded.
        let spec = ssh(host, "systemctl is-system-running --wait");
        match LocalExecutor.run(&spec, attempt).await {
            Ok(out) => {
                let said = out.stdout_text().trim().to_string();
                let err = out.stderr_text();
                if said == "running" {
                    return Ok(());
                }
                if err.contains("Host key verification failed")
                    || err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                {
                    return Err(UserError::new(format!(
                        "the demo guest presented a host key other than the image's ({}): {}",
                        host.known_hosts.display(),
                        err.trim()
                    ))
                    .hint("`spinup-smoke demo down`, then `up` again; if it persists, remove ~/.cache/spinup-smoke/guest to rebuild the image"));
                }
                if said == "degraded" {
                    let failed = LocalExecutor
                        .run(
                            &ssh(host, "systemctl --failed --no-legend --plain"),
                            deadline.min(Instant::now() + Duration::from_secs(20)),
                        )
                        .await
                        .map(|o| o.stdout_text())
                        .unwrap_or_default();
                    return Err(UserError::new(format!(
                        "the demo guest booted degraded; failed units:\n{}",
                        failed.trim()
                    ))
                    .hint("read the console log in logs/guest-console.log"));
                }
                last = if said.is_empty() {
                    format!("ssh: {}", err.trim().lines().last().unwrap_or("no answer"))
                } else {
                    format!("systemd: {said}")
                };
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_of_the_facts_goes_to_the_guest_with_its_owner_and_0400() {
        let facts = serde_json::json!({
            "secrets": { "files": { "tls_key": "nginx", "gitlab_db_password": "gitlab" } }
        });
        let owners = secret_owners(&facts).unwrap();
        assert_eq!(
            manifest(&owners),
            "gitlab_db_password gitlab 0400\ntls_key nginx 0400\ntls_cert nginx 0400\n"
        );
    }

    #[test]
    fn facts_without_the_tls_key_or_owners_are_refused() {
        let no_tls = serde_json::json!({ "secrets": { "files": { "a": "root" } } });
        assert!(secret_owners(&no_tls)
            .unwrap_err()
            .to_string()
            .contains("tls_key"));
        let bad_owner = serde_json::json!({ "secrets": { "files": { "tls_key": 3 } } });
        assert!(secret_owners(&bad_owner)
            .unwrap_err()
            .to_string()
            .contains("secrets.files.tls_key"));
        assert!(secret_owners(&serde_json::json!({}))
            .unwrap_err()
            .to_string()
            .contains("secrets.files"));
    }
}
