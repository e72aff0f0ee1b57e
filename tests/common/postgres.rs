//! A throwaway PostgreSQL cluster, one per test binary, stopped and removed
//! when the binary exits: admin `rave_admin`, databases and roles `gitlab`,
//! `synapse` (collation C) and `grafana`, a NOLOGIN role `locked`, and a
//! database `utf8_collation` (C.UTF-8).
//!
//! The programs come from `detect::pg_bin_dir` (PG_BIN,
//! /usr/lib/postgresql/*/bin, PATH). As root the cluster runs as the
//! `postgres` user (via runuser); otherwise as the current user (a Nix
//! build sandbox).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::detect::{self, Server};

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    pub admin_password: String,
    pub role_password: String,
}

/// The shared cluster, started by the first test that asks.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    super::shared(&CLUSTER, "cluster", start)
}

fn bin_dir() -> &'static Path {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(detect::pg_bin_dir)
        .as_deref()
        .unwrap_or_else(|| super::missing(Server::Postgres))
}

fn pg_bin(tool: &str) -> String {
    bin_dir().join(tool).display().to_string()
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A PostgreSQL program, run as `postgres` when we are root (the server
/// refuses to run as root).
fn as_postgres(args: &[&str]) -> Command {
    if running_as_root() {
        let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .unwrap_or("runuser");
        let mut command = Command::new(runuser);
        command.args(["-u", "postgres", "--"]).args(args);
        command
    } else {
        let mut command = Command::new(args[0]);
        command.args(&args[1..]);
        command
    }
}

fn give_to_postgres(path: &Path) {
    if running_as_root() {
        let mut c = Command::new("chown");
        c.arg("postgres:postgres").arg(path);
        run(c, "chown to postgres");
    }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "{what}: cannot start {}: {e}",
            command.get_program().to_string_lossy()
        )
    });
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn start() -> Cluster {
    let initdb = pg_bin("initdb");
    let pg_ctl = pg_bin("pg_ctl");
    let scratch = tempfile::Builder::new()
        .prefix("spinup-smoke-pg-")
        .tempdir()
        .unwrap();
    let dir = scratch.path().to_path_buf();
    let data = dir.join("data");
    // Kept before initdb: a half-started cluster is stopped and removed too.
    super::keep_until_exit(scratch);
    super::keep_until_exit(super::OnDrop::new({
        let (pg_ctl, data) = (pg_ctl.clone(), data.clone());
        move || {
            let _ = as_postgres(&[
                &pg_ctl,
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        }
    }));
    give_to_postgres(&dir);
    let admin_password = super::random_hex(16);
    let role_password = super::random_hex(16);
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, &admin_password).unwrap();
    give_to_postgres(&pwfile);
    run(
        as_postgres(&[
            &initdb,
            "-D",
            data.to_str().unwrap(),
            "-U",
            "rave_admin",
            "--auth=scram-sha-256",
            &format!("--pwfile={}", pwfile.display()),
            "--locale=C.UTF-8",
            "-E",
            "UTF8",
            "--no-sync",
        ]),
        "initdb",
    );
    let port = super::free_port();
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} -c max_connections=20 -c fsync=off",
        dir.display()
    );
    run(
        as_postgres(&[
            &pg_ctl,
            "-D",
            data.to_str().unwrap(),
            "-l",
            dir.join("log").to_str().unwrap(),
            "-w",
            "-t",
            "60",
            "-o",
            &options,
            "start",
        ]),
        "pg_ctl start",
    );
    let cluster = Cluster {
        dir,
        port,
        admin_password,
        role_password,
    };
    let rp = &cluster.role_password;
    let sql = format!(
        "CREATE ROLE gitlab LOGIN PASSWORD '{rp}';
         CREATE ROLE synapse LOGIN PASSWORD '{rp}';
         CREATE ROLE grafana LOGIN PASSWORD '{rp}';
         CREATE ROLE locked NOLOGIN PASSWORD '{rp}';
         CREATE DATABASE gitlab OWNER gitlab;
         CREATE DATABASE synapse OWNER synapse TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
         CREATE DATABASE grafana OWNER grafana;
         CREATE DATABASE utf8_collation;"
    );
    let mut psql = Command::new(pg_bin("psql"));
    psql.args([
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "rave_admin",
        "-d",
        "postgres",
        "-q",
        "-f",
        "-",
    ])
    .env("PGPASSWORD", &cluster.admin_password)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = psql.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "setup SQL failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster
}
