//! The `postgres` probe against a real PostgreSQL 15 cluster: each assertion
//! passes, and fails for the right reason. One throwaway cluster serves the
//! whole test binary; it is stopped and removed when the binary exits.
//!
//! The cluster is `common::postgres`'s. Where PostgreSQL is not installed
//! the tests that need it are reported ignored, with the reason, unless
//! SPINUP_SMOKE_REQUIRE_ALL=1, which makes them fail.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::free_port;
use common::postgres::cluster;
use spinup_smoke::check::Outcome;
use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::Verdict;
use spinup_smoke::checks::postgres::{self, Spec};
use spinup_smoke::checks::testutil::RelayTunnel;

/// A spec for the shared cluster from the TOML body of a `[check.postgres]`.
fn spec(body: &str) -> Spec {
    let c = cluster();
    let text = format!(
        "host = \"127.0.0.1\"\nport = {}\n{}",
        c.port,
        body.replace("ADMIN_PASSWORD", &c.admin_password)
            .replace("ROLE_PASSWORD", &c.role_password)
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{body}: {e}"))
}

const ADMIN: &str = "user = \"rave_admin\"\npassword = \"ADMIN_PASSWORD\"\n";

async fn check(body: &str) -> Verdict {
    let spec = spec(body);
    let verdict = postgres::run(&spec, &ProbeContext::for_tests(20)).await;
    let c = cluster();
    for secret in [&c.admin_password, &c.role_password] {
        let all = format!(
            "{} {} {}",
            verdict.expected, verdict.found, verdict.evidence
        );
        assert!(
            !all.contains(secret.as_str()),
            "a password leaked: {verdict:?}"
        );
    }
    verdict
}

fn assert_pass(v: &Verdict) {
    assert!(v.pass, "expected a pass: {v:?}");
}

fn assert_fail_with(v: &Verdict, text: &str) {
    assert!(!v.pass, "expected a failure: {v:?}");
    assert!(v.found.contains(text), "expected `{text}` in found: {v:?}");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn connect_passes_and_records_the_server_version() {
    let v = check(&format!("{ADMIN}assert = \"connect\"")).await;
    assert_pass(&v);
    assert!(v.evidence.contains("server_version = 15."), "{v:?}");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn connect_over_a_unix_socket_directory() {
    let c = cluster();
    let text = format!(
        "host = \"{}\"\nport = {}\nuser = \"rave_admin\"\npassword = \"{}\"\nassert = \"connect\"",
        c.dir.display(),
        c.port,
        c.admin_password
    );
    let spec: Spec = toml::from_str(&text).unwrap();
    let v = postgres::run(&spec, &ProbeContext::for_tests(20)).await;
    assert_pass(&v);
    // A socket directory counts as this host: disk is measured with statvfs.
    let spec: Spec =
        toml::from_str(&text.replace("\"connect\"", "\"disk\"\nmax_ratio = 1.0")).unwrap();
    let v = postgres::run(&spec, &ProbeContext::for_tests(20)).await;
    assert_pass(&v);
    assert!(v.evidence.contains("statvfs on this host"), "{v:?}");
}

/// A server that listens only "on the host" (its name resolves only
/// there; its socket directory exists only there) is reached with
/// `via = "host"` through the host's tunnel, over TCP and over its unix
/// socket, and not directly; a refusing tunnel fails with its reason.
#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn via_host_logs_in_through_the_hosts_tunnel() {
    let c = cluster();
    let remote_socket = format!("/run/postgresql-host-only/.s.PGSQL.{}", c.port);
    let tunnel = Arc::new(
        RelayTunnel::new()
            .map_name("pg.host-only.invalid", "127.0.0.1")
            .map_socket(&remote_socket, &c.dir.join(format!(".s.PGSQL.{}", c.port))),
    );
    let mut ctx = ProbeContext::for_tests(20);
    ctx.tunnel = Some(tunnel.clone());
    let table = |host: &str, rest: &str| -> Spec {
        toml::from_str(&format!(
            "host = \"{host}\"\nport = {}\nuser = \"rave_admin\"\npassword = \"{}\"\n{rest}",
            c.port, c.admin_password
        ))
        .unwrap()
    };
    let over_tcp = table(
        "pg.host-only.invalid",
        "assert = \"connect\"\nvia = \"host\"",
    );
    let v = postgres::run(&over_tcp, &ctx).await;
    assert_pass(&v);
    assert!(
        v.evidence
            .starts_with("via ssh relay@test-host:22 (forwarded)"),
        "{v:?}"
    );
    assert_eq!(tunnel.connections(), 1);
    // Through a tunnel the data directory is the host's: `df` where the
    // target's commands run, never statvfs here.
    let disk = table(
        "127.0.0.1",
        "assert = \"disk\"\nmax_ratio = 1.0\nvia = \"host\"",
    );
    let v = postgres::run(&disk, &ctx).await;
    assert_pass(&v);
    assert!(v.evidence.contains("df -P -k"), "{v:?}");
    assert_eq!(tunnel.connections(), 2);
    let over_socket = table(
        "/run/postgresql-host-only",
        "assert = \"connect\"\nvia = \"host\"",
    );
    let v = postgres::run(&over_socket, &ctx).await;
    assert_pass(&v);
    assert_eq!(tunnel.connections(), 3);

    let direct = table(
        "pg.host-only.invalid",
        "assert = \"connect\"\nvia = \"direct\"",
    );
    let v = postgres::run(&direct, &ctx).await;
    assert!(!v.pass, "{v:?}");
    assert_eq!(tunnel.connections(), 3);

    tunnel.refuse();
    let v = postgres::run(&over_tcp, &ctx).await;
    assert_fail_with(&v, "cannot forward to pg.host-only.invalid");
    assert_fail_with(&v, "connection to the host is down");
    let v = postgres::run(&over_socket, &ctx).await;
    assert_fail_with(&v, "cannot forward /run/postgresql-host-only/.s.PGSQL.");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn connect_with_a_wrong_password_fails_with_the_auth_error() {
    let v = check("user = \"rave_admin\"\npassword = \"wrong\"\nassert = \"connect\"").await;
    assert_fail_with(&v, "28P01");
    assert!(v.found.contains("password authentication failed"), "{v:?}");
}

#[tokio::test]
async fn connect_to_a_stopped_server_fails_with_connection_refused() {
    let port = free_port();
    let text = format!("host = \"127.0.0.1\"\nport = {port}\nuser = \"x\"\nassert = \"connect\"");
    let spec: Spec = toml::from_str(&text).unwrap();
    let v = postgres::run(&spec, &ProbeContext::for_tests(10)).await;
    assert_fail_with(&v, "Connection refused");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_at_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = format!("host = \"127.0.0.1\"\nport = {port}\nuser = \"x\"\nassert = \"connect\"");
    let spec: Spec = toml::from_str(&text).unwrap();
    let v = postgres::run(&spec, &ProbeContext::for_tests(1)).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("deadline") || v.found.contains("timed out"),
        "{v:?}"
    );
    drop(listener);
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn version_minimum() {
    assert_pass(&check(&format!("{ADMIN}assert = \"version\"\nmin_version = 12")).await);
    let v = check(&format!("{ADMIN}assert = \"version\"\nmin_version = 99")).await;
    assert_fail_with(&v, "major version 15");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn databases_present_and_missing() {
    assert_pass(
        &check(&format!(
            "{ADMIN}assert = \"databases\"\nexpect = \"gitlab,synapse,grafana\""
        ))
        .await,
    );
    let v = check(&format!(
        "{ADMIN}assert = \"databases\"\nexpect = [\"gitlab\", \"matrix\"]"
    ))
    .await;
    assert_fail_with(&v, "missing: matrix");
    assert!(v.evidence.contains("synapse"), "{v:?}");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn roles_present_missing_and_nologin() {
    assert_pass(
        &check(&format!(
            "{ADMIN}assert = \"roles\"\nexpect = [\"gitlab\", \"synapse\", \"grafana\"]"
        ))
        .await,
    );
    let v = check(&format!(
        "{ADMIN}assert = \"roles\"\nexpect = [\"gitlab\", \"locked\"]"
    ))
    .await;
    assert_fail_with(&v, "`locked` exists but has NOLOGIN");
    let v = check(&format!("{ADMIN}assert = \"roles\"\nexpect = [\"ghost\"]")).await;
    assert_fail_with(&v, "`ghost` does not exist");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn role_connect_passes_and_fails_for_the_right_reason() {
    let body = |role: &str, password: &str, database: &str| {
        format!("assert = \"role_connect\"\nrole = \"{role}\"\nrole_password = \"{password}\"\ndatabase = \"{database}\"")
    };
    assert_pass(&check(&body("synapse", "ROLE_PASSWORD", "synapse")).await);
    let v = check(&body("synapse", "not-the-password", "synapse")).await;
    assert_fail_with(&v, "password authentication failed for user \"synapse\"");
    let v = check(&body("gitlab", "ROLE_PASSWORD", "gitlab_production")).await;
    assert_fail_with(&v, "3D000");
    let v = check(&body("locked", "ROLE_PASSWORD", "postgres")).await;
    assert_fail_with(&v, "not permitted to log in");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn collation_c_passes_and_c_utf8_fails() {
    let body =
        |db: &str| format!("{ADMIN}database = \"{db}\"\nassert = \"collation\"\nexpect = \"C\"");
    assert_pass(&check(&body("synapse")).await);
    let v = check(&body("utf8_collation")).await;
    assert_fail_with(&v, "LC_COLLATE `C.UTF-8`");
    let v = check(&body("no_such_db")).await;
    assert_fail_with(&v, "does not exist");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn connections_ratio_against_max_connections() {
    let v = check(&format!("{ADMIN}assert = \"connections\"\nmax_ratio = 0.8")).await;
    assert_pass(&v);
    assert!(v.evidence.contains("max_connections = 20"), "{v:?}");
    // The probe's own connection is 1 of 20 (5%), over a 1% limit.
    let v = check(&format!(
        "{ADMIN}assert = \"connections\"\nmax_ratio = 0.01"
    ))
    .await;
    assert_fail_with(&v, "of 20 in use");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn long_queries_flags_a_running_query() {
    assert_pass(
        &check(&format!(
            "{ADMIN}assert = \"long_queries\"\nmax_seconds = 300"
        ))
        .await,
    );

    // A second session runs a long query; the probe must name it.
    let c = cluster();
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(c.port)
        .user("gitlab")
        .password(c.role_password.as_bytes())
        .dbname("gitlab");
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let client = Arc::new(client);
    let sleeper = {
        let client = client.clone();
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(120) /* long */").await })
    };
    let body = format!("{ADMIN}assert = \"long_queries\"\nmax_seconds = 0");
    let mut verdict = check(&body).await;
    for _ in 0..100 {
        if !verdict.pass {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        verdict = check(&body).await;
    }
    assert_fail_with(&verdict, "queries over the limit");
    assert!(verdict.evidence.contains("pg_sleep(120)"), "{verdict:?}");
    assert!(verdict.evidence.contains("user gitlab"), "{verdict:?}");
    // End the sleeper so the cluster is idle again.
    let cancel = client.cancel_token();
    cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let _ = sleeper.await;
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn disk_usage_of_the_data_directory() {
    let v = check(&format!("{ADMIN}assert = \"disk\"\nmax_ratio = 1.0")).await;
    assert_pass(&v);
    assert!(
        v.evidence
            .contains(cluster().dir.join("data").to_str().unwrap()),
        "{v:?}"
    );
    assert!(v.metrics.contains_key("data_disk_used_ratio"), "{v:?}");
    // Any real filesystem holding a cluster is more than 0.0001% used.
    let v = check(&format!("{ADMIN}assert = \"disk\"\nmax_ratio = 0.000001")).await;
    assert_fail_with(&v, "full (");
    // A role without pg_read_all_settings cannot see the data directory.
    let v = check("user = \"grafana\"\npassword = \"ROLE_PASSWORD\"\ndatabase = \"grafana\"\nassert = \"disk\"\nmax_ratio = 0.9").await;
    assert_fail_with(&v, "pg_read_all_settings");
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn disk_is_measured_where_commands_run_when_the_target_is_remote() {
    use spinup_smoke::os::FakeExecutor;
    // The target's commands run elsewhere (ssh, a VM): the data directory
    // is measured there with df, not with statvfs on this host.
    let executor = Arc::new(FakeExecutor::new());
    executor.answer(
        "df",
        0,
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 1000 950 50 95% /var/lib/postgresql\n",
        "",
    );
    let mut ctx = ProbeContext::for_tests(20);
    ctx.executor = executor.clone();
    let v = postgres::run(
        &spec(&format!("{ADMIN}assert = \"disk\"\nmax_ratio = 0.9")),
        &ctx,
    )
    .await;
    assert_fail_with(&v, "95.0% full");
    assert!(v.evidence.contains("via fake"), "{v:?}");
    let calls = executor.calls();
    assert_eq!(
        calls[0].args.last().map(String::as_str),
        cluster().dir.join("data").to_str()
    );
}

/// Writes a target file for the cluster (secrets in 0600 files).
fn write_target(dir: &Path, admin_password: &str) -> PathBuf {
    let c = cluster();
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let mut lines = vec![
        "name = \"pg-test\"".to_string(),
        "[vars]".into(),
        "postgres.host = \"127.0.0.1\"".into(),
        format!("postgres.port = \"{}\"", c.port),
        "postgres.admin_user = \"rave_admin\"".into(),
        "postgres.databases = \"gitlab,synapse,grafana\"".into(),
        "[secrets]".into(),
    ];
    for (name, value) in [
        ("postgres_admin_password", admin_password),
        ("gitlab_db_password", c.role_password.as_str()),
        ("synapse_db_password", c.role_password.as_str()),
        ("grafana_db_password", c.role_password.as_str()),
    ] {
        let file = secrets.join(name);
        std::fs::write(&file, value).unwrap();
        lines.push(format!("{name} = {{ file = \"{}\" }}", file.display()));
    }
    let path = dir.join("target.toml");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

async fn run_profile(target: &Path) -> Vec<(String, Outcome, String)> {
    use spinup_smoke::run::{self, RunOptions};
    let profile = common::repo().join("health-checks/postgres.toml");
    let target = spinup_smoke::profile::target::load(target).unwrap();
    let profiles = spinup_smoke::profile::load(&[profile], &target, Default::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let plan = spinup_smoke::plan::Plan::build(profiles.checks, &[]).unwrap();
    let secrets = target.secret_values();
    let options = RunOptions {
        jobs: 4,
        global_timeout: Duration::from_secs(120),
        artifacts_dir: std::env::temp_dir(),
        hosts: Arc::new(spinup_smoke::host::Hosts::local()),
        redact: Arc::new(move |s: &str| {
            secrets.iter().fold(s.to_string(), |acc, secret| {
                acc.replace(secret.as_str(), "[REDACTED]")
            })
        }),
        safe_mode: true,
        so_far: Default::default(),
    };
    let report = run::run(
        &plan,
        &options,
        Arc::new(run::NoEvents),
        std::future::pending(),
    )
    .await;
    report
        .results
        .into_iter()
        .map(|r| (r.id, r.status, r.found))
        .collect()
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn the_postgres_profile_passes_against_a_healthy_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let target = write_target(dir.path(), &cluster().admin_password);
    let results = run_profile(&target).await;
    assert_eq!(results.len(), 12, "{results:#?}");
    for (id, status, found) in &results {
        assert_eq!(*status, Outcome::Pass, "{id}: {found}");
    }
}

#[tokio::test]
#[cfg_attr(
    missing = "postgres",
    ignore = "needs PostgreSQL (initdb, pg_ctl): ./scripts/setup.sh installs it"
)]
async fn the_postgres_profile_skips_dependents_when_login_fails() {
    let dir = tempfile::tempdir().unwrap();
    let target = write_target(dir.path(), "wrong-admin-password");
    let results = run_profile(&target).await;
    let status = |id: &str| {
        results
            .iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, s, _)| *s)
            .unwrap_or_else(|| panic!("{id} missing: {results:#?}"))
    };
    assert_eq!(status("postgres.reachable"), Outcome::Fail);
    assert_eq!(status("postgres.databases"), Outcome::Skip);
    assert_eq!(status("postgres.disk.warn"), Outcome::Skip);
    // The roles' own logins do not depend on the admin password... but
    // they need the roles check, which needs the admin login.
    assert_eq!(status("postgres.role_connect.synapse"), Outcome::Skip);
}
