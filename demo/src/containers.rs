//! The demo's container engine: Debian's podman serving the Docker API on a
//! Unix socket under the state directory (`podman system service`), with
//! its own storage (vfs), runtime runc and the cgroupfs manager, and one
//! image imported from a busybox-static root filesystem. Nothing of it lives
//! outside the state directory; containers use no network by default, so
//! no netavark firewall rules are made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{run_to_end, spawn, Launch};
use spinup_smoke::error::UserError;

/// The image `up` imports; `containers.image` in the target.
pub const IMAGE: &str = "localhost/spinup-smoke/busybox:demo";

/// Busybox applets linked into the image's /bin.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "id", "hostname", "sleep", "true", "false", "env", "uname", "head",
    "grep", "wc", "test", "[",
];

/// Where the engine keeps its parts.
pub fn dir(state: &Path) -> PathBuf {
    state.join("containers")
}

/// The API socket.
pub fn socket(state: &Path) -> PathBuf {
    dir(state).join("podman.sock")
}

/// podman's global flags: storage, runtime state and config of our own.
fn global_args(state: &Path) -> Vec<String> {
    let d = dir(state);
    let p = |name: &str| d.join(name).display().to_string();
    vec![
        "--root".into(),
        p("storage"),
        "--runroot".into(),
        p("run"),
        "--tmpdir".into(),
        p("tmp"),
        "--storage-driver".into(),
        "vfs".into(),
        // crun refuses hosts with hybrid cgroups; runc runs there.
        "--runtime".into(),
        "runc".into(),
        "--cgroup-manager".into(),
        "cgroupfs".into(),
        "--events-backend".into(),
        "file".into(),
    ]
}

/// How to run the demo's podman from outside (the runner): the program and
/// its global flags, and the environment it needs (CONTAINERS_CONF, written
/// by [`start`]).
pub fn podman_command(state: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let mut argv = vec!["podman".to_string()];
    argv.extend(global_args(state));
    let env = vec![(
        "CONTAINERS_CONF".to_string(),
        conf_path(state).display().to_string(),
    )];
    (argv, env)
}

/// The engine's containers.conf.
fn conf_path(state: &Path) -> PathBuf {
    dir(state).join("containers.conf")
}

/// Engine settings podman reads from CONTAINERS_CONF: its default
/// RLIMIT_NOFILE (1048576) is above this host's hard limit, so containers
/// get what the host allows.
fn containers_conf() -> String {
    let nofile = hard_limit(libc::RLIMIT_NOFILE)
        .unwrap_or(20000)
        .min(1 << 20);
    let nproc = hard_limit(libc::RLIMIT_NPROC).unwrap_or(32768).min(32768);
    format!(
        "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n"
    )
}

fn hard_limit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    (rc == 0 && limit.rlim_max != libc::RLIM_INFINITY).then_some(limit.rlim_max)
}

/// Tells whether an ELF file has no program interpreter (is static).
pub fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return false; // not a 64-bit little-endian ELF
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        match bytes.get(at..at + 4) {
            Some(t) => u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP,
            None => false,
        }
    })
}

/// A static busybox: SPINUP_SMOKE_BUSYBOX, else Debian's busybox-static.
fn static_busybox() -> Result<PathBuf, UserError> {
    let path = std::env::var_os("SPINUP_SMOKE_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"));
    let bytes = std::fs::read(&path).map_err(|e| {
        UserError::new(format!("cannot read {}: {e}", path.display()))
            .hint("install busybox-static (./scripts/setup.sh does), or set SPINUP_SMOKE_BUSYBOX to a static busybox")
    })?;
    if !is_static_elf(&bytes) {
        return Err(UserError::new(format!(
            "{} is dynamically linked; the container image needs a static busybox",
            path.display()
        ))
        .hint("apt-get install busybox-static, or set SPINUP_SMOKE_BUSYBOX"));
    }
    Ok(path)
}

/// Imports the busybox image and starts the API service; returns the pid
/// of `podman system service` once its socket accepts connections.
pub async fn start(state: &Path) -> Result<u32, UserError> {
    let d = dir(state);
    let sock = socket(state);
    if sock.as_os_str().len() > 100 {
        return Err(UserError::new(format!(
            "the engine's socket path {} is too long for a Unix socket",
            sock.display()
        ))
        .hint("pass a shorter --state directory"));
    }
    let rootfs = d.join("rootfs");
    for sub in [
        "rootfs/bin",
        "rootfs/etc",
        "rootfs/tmp",
        "storage",
        "run",
        "tmp",
    ] {
        std::fs::create_dir_all(d.join(sub))
            .map_err(|e| UserError::new(format!("cannot create {}: {e}", d.join(sub).display())))?;
    }
    std::fs::copy(static_busybox()?, rootfs.join("bin/busybox"))
        .map_err(|e| UserError::new(format!("cannot copy busybox: {e}")))?;
    for applet in APPLETS {
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)
                .map_err(|e| UserError::new(format!("cannot link {}: {e}", link.display())))?;
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")
        .map_err(|e| UserError::new(format!("cannot write the image's /etc/passwd: {e}")))?;
    let tarball = d.join("busybox-rootfs.tar");
    let (rootfs_s, tarball_s) = (rootfs.display().to_string(), tarball.display().to_string());
    run_to_end(
        state,
        "podman-import",
        "tar",
        &["-C", &rootfs_s, "-cf", &tarball_s, "."],
        Duration::from_secs(30),
    )?;
    let mut args = global_args(state);
    args.extend(["import", "--change", "CMD=[\"/bin/sh\"]", &tarball_s, IMAGE].map(String::from));
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    run_to_end(
        state,
        "podman-import",
        "podman",
        &args_ref,
        Duration::from_secs(60),
    )
    .map_err(|e| e.hint("install podman and runc (./scripts/setup.sh does)"))?;

    let conf = conf_path(state);
    std::fs::write(&conf, containers_conf())
        .map_err(|e| UserError::new(format!("cannot write {}: {e}", conf.display())))?;
    let mut args = global_args(state);
    args.extend([
        "system".into(),
        "service".into(),
        "--time=0".into(),
        format!("unix://{}", sock.display()),
    ]);
    let pid = spawn(
        state,
        &Launch {
            name: "podman",
            program: "podman".into(),
            args,
            env: vec![("CONTAINERS_CONF".into(), conf.display().to_string())],
            cwd: None,
        },
    )?;
    super::wait_ready(state, "podman", Some(pid), Duration::from_secs(30), || {
        let sock = sock.clone();
        async move {
            tokio::net::UnixStream::connect(&sock)
                .await
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", sock.display()))
        }
    })
    .await?;
    Ok(pid)
}

/// Removes every container of the demo engine and unmounts whatever the
/// engine left mounted under `state` (best effort; `down` then removes the
/// directory).
pub fn stop(state: &Path) {
    let d = dir(state);
    if !d.join("storage").exists() {
        return;
    }
    let mut args = global_args(state);
    args.extend(["rm", "--all", "--force", "--time", "0"].map(String::from));
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let _ = run_to_end(
        state,
        "podman-cleanup",
        "podman",
        &args_ref,
        Duration::from_secs(30),
    );
    unmount_under(&d);
}

/// Lazily unmounts every mount point below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        if let Ok(c) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) {
            // SAFETY: a valid C string; MNT_DETACH never blocks.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic_executables() {
        // The test binary itself is dynamically linked.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(
            b"#!/bin/sh\necho not an ELF file at all, just text"
        ));
        if let Ok(bytes) = std::fs::read("/bin/busybox") {
            // Debian's busybox-static, when installed, is static.
            let dynamic = bytes.windows(14).any(|w| w == b"/lib64/ld-linu");
            assert_eq!(is_static_elf(&bytes), !dynamic);
        }
    }

    #[test]
    fn the_engine_config_stays_within_the_hosts_limits() {
        let conf = containers_conf();
        let hard = hard_limit(libc::RLIMIT_NOFILE);
        if let Some(hard) = hard {
            assert!(
                conf.contains(&format!("nofile={}:", hard.min(1 << 20))),
                "{conf}"
            );
        }
        assert!(conf.starts_with("[containers]\ndefault_ulimits = ["));
    }
}
