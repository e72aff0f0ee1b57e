//! Logs in to PostgreSQL and gathers what one assertion needs: the server's
//! version and session, then the databases, roles, collation, connection
//! counts, active queries or the data directory's disk use.
//!
//! Connections use plain TCP (or a Unix socket when `host` is a directory),
//! without TLS, from this machine or through the host's tunnel (`via`). The connect and every query are bounded by the check's
//! deadline. Passwords never reach facts, evidence or `Debug` output.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use super::judge::{ActiveQuery, DiskUsage, Facts, Observation, RoleFacts, Session};
use super::spec::{Assertion, Spec};
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::os::CommandSpec;

/// Logs in on the check's route and observes; a failed login or query is
/// a fact, not an error.
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let started = Instant::now();
    let session = match tokio::time::timeout(ctx.remaining(), gather(spec, ctx, route)).await {
        Ok(session) => session,
        Err(_) => Err(format!(
            "no answer from {}:{} before the check's deadline",
            spec.host, spec.port
        )),
    };
    Facts {
        endpoint: spec.endpoint(),
        session,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// Connects, then observes what the assertion needs. The outer `Err` is a
/// failed connect; a failed query is the session's `observation` error.
/// Through a tunnel a TCP server is reached through a local forward, a
/// socket directory through a forward of the host's `.s.PGSQL.<port>`.
async fn gather(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Result<Session, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&spec.host)
        .port(spec.port)
        .user(&spec.user)
        .dbname(&spec.database)
        .application_name("spinup-smoke")
        .connect_timeout(ctx.remaining().max(Duration::from_millis(1)));
    if let Some(password) = &spec.password {
        config.password(password.0.as_bytes());
    }
    let (client, connection) = match route {
        Route::Direct => {
            let (client, connection) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
            (client, tokio::spawn(connection))
        }
        Route::Tunnel(_) if spec.host.starts_with('/') => {
            let remote = Path::new(&spec.host).join(format!(".s.PGSQL.{}", spec.port));
            let local = via::unix_endpoint(route, &remote, ctx.deadline).await?;
            let stream = tokio::net::UnixStream::connect(&local)
                .await
                .map_err(|e| format!("cannot connect to the forward of {}: {e}", remote.display()))?;
            let (client, connection) = config
                .connect_raw(stream, NoTls)
                .await
                .map_err(|e| describe(&e))?;
            (client, tokio::spawn(connection))
        }
        Route::Tunnel(_) => {
            let local = via::tcp_endpoint(route, &spec.host, spec.port, ctx.deadline).await?;
            let stream = tokio::net::TcpStream::connect(&local)
                .await
                .map_err(|e| format!("cannot connect to the forward of {}:{}: {e}", spec.host, spec.port))?;
            let (client, connection) = config
                .connect_raw(stream, NoTls)
                .await
                .map_err(|e| describe(&e))?;
            (client, tokio::spawn(connection))
        }
    };
    let result = observe_session(spec, ctx, route, &client).await;
    drop(client);
    connection.abort();
    result
}

async fn observe_session(
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
    client: &Client,
) -> Result<Session, String> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), \
                    current_setting('server_version_num')::int4, \
                    current_user::text, current_database()::text",
            &[],
        )
        .await
        .map_err(|e| {
            format!(
                "logged in, but reading the server version failed: {}",
                describe(&e)
            )
        })?;
    let observation = observe(spec, ctx, route, client).await;
    Ok(Session {
        server_version: row.get(0),
        server_version_num: row.get::<_, i32>(1).max(0) as u32,
        current_user: row.get(2),
        current_database: row.get(3),
        observation,
    })
}

async fn observe(
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
    client: &Client,
) -> Result<Observation, String> {
    let query_failed =
        |what: &str, e: tokio_postgres::Error| format!("{what} failed: {}", describe(&e));
    match &spec.assertion {
        Assertion::Connect | Assertion::Version { .. } | Assertion::RoleConnect => {
            Ok(Observation::Connected)
        }
        Assertion::Databases { .. } => {
            let rows = client
                .query(
                    "SELECT datname::text FROM pg_database WHERE NOT datistemplate ORDER BY 1",
                    &[],
                )
                .await
                .map_err(|e| query_failed("listing databases", e))?;
            Ok(Observation::Databases(
                rows.iter().map(|r| r.get(0)).collect(),
            ))
        }
        Assertion::Roles { .. } => {
            let rows = client
                .query(
                    "SELECT rolname::text, rolcanlogin, \
                            COALESCE(rolvaliduntil < now(), false) \
                     FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1",
                    &[],
                )
                .await
                .map_err(|e| query_failed("listing roles", e))?;
            Ok(Observation::Roles(
                rows.iter()
                    .map(|r| RoleFacts {
                        name: r.get(0),
                        can_login: r.get(1),
                        password_expired: r.get(2),
                    })
                    .collect(),
            ))
        }
        Assertion::Collation { .. } => {
            let row = client
                .query_one(
                    "SELECT datcollate::text, datctype::text FROM pg_database \
                     WHERE datname = current_database()",
                    &[],
                )
                .await
                .map_err(|e| query_failed("reading the database's collation", e))?;
            Ok(Observation::Collation {
                collate: row.get(0),
                ctype: row.get(1),
            })
        }
        Assertion::Connections { .. } => {
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM pg_stat_activity \
                             WHERE backend_type = 'client backend')::int8, \
                            current_setting('max_connections')::int8, \
                            current_setting('superuser_reserved_connections')::int8",
                    &[],
                )
                .await
                .map_err(|e| query_failed("counting connections", e))?;
            Ok(Observation::Connections {
                in_use: row.get::<_, i64>(0).max(0) as u64,
                max: row.get::<_, i64>(1).max(0) as u64,
                reserved_for_superusers: row.get::<_, i64>(2).max(0) as u64,
            })
        }
        Assertion::LongQueries { .. } => {
            let rows = client
                .query(
                    "SELECT pid, COALESCE(usename::text, ''), COALESCE(datname::text, ''), \
                            EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float8, \
                            left(COALESCE(query, ''), 200) \
                     FROM pg_stat_activity \
                     WHERE state = 'active' AND backend_type = 'client backend' \
                       AND pid <> pg_backend_pid() AND query_start IS NOT NULL \
                     ORDER BY 4 DESC",
                    &[],
                )
                .await
                .map_err(|e| query_failed("listing active queries", e))?;
            Ok(Observation::ActiveQueries(
                rows.iter()
                    .map(|r| ActiveQuery {
                        pid: r.get(0),
                        user: r.get(1),
                        database: r.get(2),
                        running_seconds: r.get(3),
                        query: hide_secrets_in_query(r.get(4)),
                    })
                    .collect(),
            ))
        }
        Assertion::Disk { .. } => {
            let row = client
                .query_one("SELECT current_setting('data_directory')", &[])
                .await
                .map_err(|e| {
                    format!(
                        "reading data_directory failed ({}); log in as a superuser or a member of pg_read_all_settings",
                        describe(&e)
                    )
                })?;
            let data_directory: String = row.get(0);
            // statvfs here only when both the server and the target's
            // commands are on this host; otherwise `df` where commands run.
            let usage = if route.is_direct()
                && spec.is_local()
                && ctx.executor.describe() == "local"
            {
                local_disk_usage(&data_directory)
            } else {
                remote_disk_usage(&data_directory, ctx).await
            }?;
            Ok(Observation::Disk(usage))
        }
    }
}

/// Query text may carry secrets (`ALTER ROLE ... PASSWORD '...'`); such
/// queries are shown by their first word only.
fn hide_secrets_in_query(query: String) -> String {
    let lower = query.to_ascii_lowercase();
    if ["password", "secret", "token"]
        .iter()
        .any(|w| lower.contains(w))
    {
        let first = query.split_whitespace().next().unwrap_or("");
        format!("{first} ... [query text hidden: it mentions a credential]")
    } else {
        query
    }
}

/// statvfs(3) of the data directory on this host.
fn local_disk_usage(path: &str) -> Result<DiskUsage, String> {
    let c_path = std::ffi::CString::new(path)
        .map_err(|_| format!("data directory `{path}` contains a NUL byte"))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid out pointer.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(format!(
            "statvfs({path}) failed: {}; the server is local by address but its data directory is not visible here",
            std::io::Error::last_os_error()
        ));
    }
    let fragment = stat.f_frsize as u64;
    let total = stat.f_blocks as u64 * fragment;
    let free = stat.f_bfree as u64 * fragment;
    let available = stat.f_bavail as u64 * fragment;
    Ok(DiskUsage {
        data_directory: path.to_string(),
        used_bytes: total.saturating_sub(free),
        available_bytes: available,
        total_bytes: total,
        measured_by: "statvfs on this host".into(),
    })
}

/// `df -P -k` of the data directory, run where the target's commands run.
async fn remote_disk_usage(path: &str, ctx: &ProbeContext) -> Result<DiskUsage, String> {
    let command = CommandSpec::new("df", &["-P", "-k", "--", path]);
    let output = ctx
        .executor
        .run(&command, ctx.deadline)
        .await
        .map_err(|e| format!("`{}` failed: {e}", command.display()))?;
    if output.exit_code != Some(0) {
        return Err(format!(
            "`{}` exited with {:?}: {}",
            command.display(),
            output.exit_code,
            crate::check::excerpt(output.stderr_text().trim(), 300)
        ));
    }
    parse_df(path, &output.stdout_text())
        .map(|mut usage| {
            usage.measured_by = format!("`{}` via {}", command.display(), ctx.executor.describe());
            usage
        })
        .ok_or_else(|| {
            format!(
                "cannot read the output of `{}`: {}",
                command.display(),
                crate::check::excerpt(&output.stdout_text(), 300)
            )
        })
}

/// Reads POSIX `df -P -k` output: 1024-blocks, Used, Available.
fn parse_df(path: &str, text: &str) -> Option<DiskUsage> {
    let line = text.lines().nth(1)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok().map(|k| k * 1024);
    Some(DiskUsage {
        data_directory: path.to_string(),
        total_bytes: number(1)?,
        used_bytes: number(2)?,
        available_bytes: number(3)?,
        measured_by: String::new(),
    })
}

/// A tokio-postgres error as one line: the server's message with its
/// SQLSTATE, or the chain of causes (e.g. "Connection refused").
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_queries_that_mention_credentials() {
        assert_eq!(
            hide_secrets_in_query("ALTER ROLE x PASSWORD 'hunter2'".into()),
            "ALTER ... [query text hidden: it mentions a credential]"
        );
        assert_eq!(hide_secrets_in_query("SELECT 1".into()), "SELECT 1");
    }

    #[test]
    fn reads_posix_df_output() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                    /dev/sda1         1000000   250000    750000      25% /\n";
        let usage = parse_df("/var/lib/postgresql", text).unwrap();
        assert_eq!(usage.total_bytes, 1_024_000_000);
        assert_eq!(usage.used_bytes, 256_000_000);
        assert!(parse_df("/x", "garbage").is_none());
    }

    #[tokio::test]
    async fn df_through_the_executor_agrees_with_statvfs() {
        let ctx = ProbeContext::for_tests(10);
        let by_df = remote_disk_usage("/", &ctx).await.unwrap();
        let by_statvfs = local_disk_usage("/").unwrap();
        assert!(by_df.measured_by.contains("df -P -k -- /"), "{by_df:?}");
        // Same filesystem size (df rounds to KiB).
        assert_eq!(by_df.total_bytes / 1024, by_statvfs.total_bytes / 1024);
        let missing = remote_disk_usage("/no/such/dir", &ctx).await.unwrap_err();
        assert!(missing.contains("exited with"), "{missing}");
    }

    #[test]
    fn statvfs_of_a_real_directory() {
        let usage = local_disk_usage("/").unwrap();
        assert!(usage.total_bytes > 0 && usage.used_bytes <= usage.total_bytes);
        assert!(local_disk_usage("/no/such/directory")
            .unwrap_err()
            .contains("statvfs"));
    }
}
