//! Where the servers that the tests need are installed, or that they are
//! not. One copy serves two readers: `build.rs`, which marks the tests of a
//! missing server ignored (with the reason) unless SPINUP_SMOKE_REQUIRE_ALL=1,
//! and `tests/common`, which starts the servers.
//!
//! Plain std only: build scripts compile it too.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A server the tests need, as named in `#[cfg_attr(missing = "...")]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Synapse,
    Prometheus,
    Idp,
    /// The whole demo stack: the servers above plus nginx, podman and
    /// what builds and boots the guest image.
    Demo,
    Podman,
    Qemu,
    Sshd,
    /// Network namespaces of the test's own: root and `ip` (iproute2).
    Netns,
}

impl Server {
    pub const ALL: [Server; 9] = [
        Server::Postgres,
        Server::Synapse,
        Server::Prometheus,
        Server::Idp,
        Server::Demo,
        Server::Podman,
        Server::Qemu,
        Server::Sshd,
        Server::Netns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Server::Postgres => "postgres",
            Server::Synapse => "synapse",
            Server::Prometheus => "prometheus",
            Server::Idp => "idp",
            Server::Demo => "demo",
            Server::Podman => "podman",
            Server::Qemu => "qemu",
            Server::Sshd => "sshd",
            Server::Netns => "netns",
        }
    }

    /// Why the server is missing (`None`: it is here). `repo` is the checkout.
    pub fn missing(self, repo: &Path) -> Option<String> {
        let what = match self {
            Server::Postgres => pg_bin_dir().is_none().then(|| {
                "no initdb and pg_ctl in PG_BIN, /usr/lib/postgresql/*/bin or PATH".to_string()
            }),
            Server::Synapse => synapse_python(repo).is_none().then(|| {
                "no Python that imports synapse and authlib (SYNAPSE_PYTHON, or .venv/bin/python)"
                    .to_string()
            }),
            Server::Prometheus => prometheus_bin()
                .is_none()
                .then(|| "no prometheus (PROMETHEUS_BIN, /usr/bin/prometheus)".to_string()),
            Server::Idp => idp_missing(repo),
            Server::Demo => {
                let parts: Vec<String> = [
                    Server::Postgres,
                    Server::Synapse,
                    Server::Prometheus,
                    Server::Idp,
                    Server::Podman,
                    Server::Qemu,
                ]
                .into_iter()
                .filter_map(|s| s.missing(repo))
                .chain(
                    on_path("nginx")
                        .is_none()
                        .then(|| "no nginx on PATH".to_string()),
                )
                .collect();
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            Server::Podman => {
                let missing: Vec<&str> = ["podman", "runc"]
                    .into_iter()
                    .filter(|p| on_path(p).is_none())
                    .chain((!Path::new("/bin/busybox").exists()).then_some("/bin/busybox"))
                    .collect();
                (!missing.is_empty()).then(|| format!("missing: {}", missing.join(", ")))
            }
            Server::Qemu => {
                let missing: Vec<&str> = ["qemu-system-x86_64", "qemu-img", "ssh"]
                    .into_iter()
                    .filter(|p| on_path(p).is_none())
                    .chain(
                        (std::env::var_os("SPINUP_SMOKE_GUEST_DIR").is_none()
                            && on_path("debootstrap").is_none())
                        .then_some("debootstrap (or SPINUP_SMOKE_GUEST_DIR)"),
                    )
                    .collect();
                (!missing.is_empty()).then(|| format!("missing: {}", missing.join(", ")))
            }
            Server::Sshd => sshd(repo)
                .is_none()
                .then(|| "no sshd (SSHD, .cache/sshd/usr/sbin/sshd, /usr/sbin/sshd)".to_string()),
            Server::Netns => {
                let missing: Vec<&str> = [
                    on_path("ip").is_none().then_some("ip (iproute2)"),
                    (!is_root()).then_some("root"),
                ]
                .into_iter()
                .flatten()
                .collect();
                (!missing.is_empty()).then(|| format!("missing: {}", missing.join(", ")))
            }
        };
        what.map(|w| format!("{w}; ./scripts/setup.sh installs it"))
    }
}

/// Whether this process runs as root (from /proc, plain std).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The first executable `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The directory of initdb and pg_ctl.
pub fn pg_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl")))
}

/// A Python interpreter that imports synapse and authlib.
pub fn synapse_python(repo: &Path) -> Option<PathBuf> {
    let python = std::env::var_os("SYNAPSE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv/bin/python"));
    if !python.exists() {
        return None;
    }
    let ok = Command::new(&python)
        .args(["-c", "import synapse, authlib, psycopg2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(python)
}

/// The Prometheus server binary.
pub fn prometheus_bin() -> Option<PathBuf> {
    let binary = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    is_executable(&binary).then_some(binary)
}

fn idp_missing(repo: &Path) -> Option<String> {
    if on_path("node").is_none() {
        return Some("no node on PATH".into());
    }
    if !repo.join("demo/idp/node_modules/oidc-provider").exists() {
        return Some("demo/idp/node_modules is not installed (npm ci in demo/idp)".into());
    }
    None
}

/// An sshd binary for tests that start their own.
pub fn sshd(repo: &Path) -> Option<PathBuf> {
    std::env::var_os("SSHD")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            repo.join(".cache/sshd/usr/sbin/sshd"),
            PathBuf::from("/usr/sbin/sshd"),
        ])
        .find(|p| is_executable(p))
}

/// For build scripts: declares the `missing` cfg, names what makes cargo
/// look again (the environment, installed packages, the venv, the IdP's
/// packages), and marks each of `servers` that is missing here, unless
/// SPINUP_SMOKE_REQUIRE_ALL=1 (then a missing server fails its tests).
pub fn emit_cargo_gate(repo: &Path, servers: &[Server]) {
    let names: Vec<String> = Server::ALL
        .iter()
        .map(|s| format!("\"{}\"", s.name()))
        .collect();
    println!(
        "cargo::rustc-check-cfg=cfg(missing, values({}))",
        names.join(", ")
    );
    println!("cargo::rerun-if-changed=build.rs");
    println!(
        "cargo::rerun-if-changed={}",
        repo.join("tests/common/detect.rs").display()
    );
    for var in [
        "SPINUP_SMOKE_REQUIRE_ALL",
        "PATH",
        "PG_BIN",
        "SYNAPSE_PYTHON",
        "PROMETHEUS_BIN",
        "SSHD",
        "SPINUP_SMOKE_GUEST_DIR",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    // Installing a server changes one of these; only existing paths are
    // named (a missing one would make every build rebuild the crate).
    for watched in [
        Path::new("/var/lib/dpkg/status").to_path_buf(),
        repo.join(".venv/bin"),
        repo.join("demo/idp/node_modules/.package-lock.json"),
        repo.join(".cache/sshd/usr/sbin/sshd"),
    ] {
        if watched.exists() {
            println!("cargo::rerun-if-changed={}", watched.display());
        }
    }
    if std::env::var("SPINUP_SMOKE_REQUIRE_ALL").as_deref() == Ok("1") {
        return;
    }
    for server in servers {
        if server.missing(repo).is_some() {
            println!("cargo::rustc-cfg=missing=\"{}\"", server.name());
        }
    }
}
