//! `[check.postgres]`: log in to PostgreSQL and assert one thing about the
//! server: that it authenticates, its version, the databases and roles that
//! must exist, a role's own login, a database's collation, connection use,
//! long-running queries, or the data directory's disk use.
//!
//! Connections use plain TCP (or a Unix socket when `host` is a directory),
//! without TLS. The connect and every query are bounded by the check's
//! deadline. Passwords never reach facts, evidence or `Debug` output.

use std::fmt;
use std::time::{Duration, Instant};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use tokio_postgres::{Client, NoTls};

use super::judge;
use super::judge::{ActiveQuery, DiskUsage, Facts, Observation, RoleFacts, Session};
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::os::CommandSpec;

/// The table as written in a profile. Every assertion uses the connection
/// fields; each assertion adds the fields listed on `assert`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// Server host name or address, or a Unix socket directory (`/run/postgresql`).
    host: String,
    /// Server port, a number or a string of digits (default 5432).
    #[serde(default)]
    port: Option<Port>,
    /// The role to log in as (not used by `role_connect`, which logs in as `role`).
    #[serde(default)]
    user: Option<String>,
    /// That role's password, normally `${secret:...}`.
    #[serde(default)]
    password: Option<Password>,
    /// The database to connect to (default `postgres`); `collation` inspects
    /// this database and `role_connect` logs in to it.
    #[serde(default)]
    database: Option<String>,
    /// What to assert: connect, version, databases, roles, role_connect,
    /// collation, connections, long_queries or disk.
    #[serde(rename = "assert")]
    assertion: AssertKind,
    /// `version`: the lowest acceptable major version, e.g. 12.
    #[serde(default)]
    min_version: Option<u32>,
    /// `databases`/`roles`: names that must exist (a list, or one string of
    /// comma-separated names); `collation`: the collation, e.g. "C".
    #[serde(default)]
    expect: Option<NameList>,
    /// `role_connect`: the role that must be able to log in.
    #[serde(default)]
    role: Option<String>,
    /// `role_connect`: that role's password, normally `${secret:...}`.
    #[serde(default)]
    role_password: Option<Password>,
    /// `connections`: the largest acceptable share of max_connections in use;
    /// `disk`: the largest acceptable share of the data filesystem in use.
    #[serde(default)]
    max_ratio: Option<f64>,
    /// `long_queries`: the longest an active query may have been running.
    #[serde(default)]
    max_seconds: Option<f64>,
}

/// The assertion names accepted by `assert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertKind {
    Connect,
    Version,
    Databases,
    Roles,
    RoleConnect,
    Collation,
    Connections,
    LongQueries,
    Disk,
}

impl AssertKind {
    pub fn name(self) -> &'static str {
        match self {
            AssertKind::Connect => "connect",
            AssertKind::Version => "version",
            AssertKind::Databases => "databases",
            AssertKind::Roles => "roles",
            AssertKind::RoleConnect => "role_connect",
            AssertKind::Collation => "collation",
            AssertKind::Connections => "connections",
            AssertKind::LongQueries => "long_queries",
            AssertKind::Disk => "disk",
        }
    }
}

/// A checked `[check.postgres]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    pub host: String,
    pub port: u16,
    /// The role that logs in (for `role_connect`, the role under test).
    pub user: String,
    pub password: Option<Password>,
    pub database: String,
    pub assertion: Assertion,
}

/// One assertion with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Assertion {
    /// The login succeeds.
    Connect,
    /// The server's major version is at least `min_version`.
    Version { min_version: u32 },
    /// Every named database exists.
    Databases { expect: Vec<String> },
    /// Every named role exists, may log in and its password has not expired.
    Roles { expect: Vec<String> },
    /// `user` logs in to `database` with its own password.
    RoleConnect,
    /// `database` has LC_COLLATE and LC_CTYPE equal to `expect`.
    Collation { expect: String },
    /// Client connections / max_connections is at most `max_ratio`.
    Connections { max_ratio: f64 },
    /// No active query has run longer than `max_seconds`.
    LongQueries { max_seconds: f64 },
    /// The data directory's filesystem is at most `max_ratio` full.
    Disk { max_ratio: f64 },
}

impl Assertion {
    pub fn kind(&self) -> AssertKind {
        match self {
            Assertion::Connect => AssertKind::Connect,
            Assertion::Version { .. } => AssertKind::Version,
            Assertion::Databases { .. } => AssertKind::Databases,
            Assertion::Roles { .. } => AssertKind::Roles,
            Assertion::RoleConnect => AssertKind::RoleConnect,
            Assertion::Collation { .. } => AssertKind::Collation,
            Assertion::Connections { .. } => AssertKind::Connections,
            Assertion::LongQueries { .. } => AssertKind::LongQueries,
            Assertion::Disk { .. } => AssertKind::Disk,
        }
    }
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let kind = raw.assertion;
        let name = kind.name();
        // Which optional fields this assertion uses; any other set field is an error.
        let uses: &[&str] = match kind {
            AssertKind::Connect => &["user", "password"],
            AssertKind::Version => &["user", "password", "min_version"],
            AssertKind::Databases | AssertKind::Roles => &["user", "password", "expect"],
            AssertKind::RoleConnect => &["role", "role_password"],
            AssertKind::Collation => &["user", "password", "expect"],
            AssertKind::Connections | AssertKind::Disk => &["user", "password", "max_ratio"],
            AssertKind::LongQueries => &["user", "password", "max_seconds"],
        };
        let set = [
            ("user", raw.user.is_some()),
            ("password", raw.password.is_some()),
            ("min_version", raw.min_version.is_some()),
            ("expect", raw.expect.is_some()),
            ("role", raw.role.is_some()),
            ("role_password", raw.role_password.is_some()),
            ("max_ratio", raw.max_ratio.is_some()),
            ("max_seconds", raw.max_seconds.is_some()),
        ];
        for (field, present) in set {
            if present && !uses.contains(&field) {
                let fix = if kind == AssertKind::RoleConnect && field.ends_with("password") {
                    "; role_connect logs in as `role` with `role_password`".to_string()
                } else if kind == AssertKind::RoleConnect && field == "user" {
                    "; role_connect logs in as `role`: write `role = ...` instead".to_string()
                } else {
                    String::new()
                };
                return Err(format!(
                    "`{field}` does not apply to `assert = \"{name}\"`; remove it{fix}"
                ));
            }
        }
        let missing = |field: &str, example: &str| {
            format!("`assert = \"{name}\"` needs `{field}`, e.g. {example}")
        };
        let ratio = |value: Option<f64>, example: &str| match value {
            None => Err(missing("max_ratio", example)),
            Some(r) if r > 0.0 && r <= 1.0 => Ok(r),
            Some(r) => Err(format!(
                "`max_ratio = {r}` must be a share between 0 (exclusive) and 1, e.g. {example}"
            )),
        };
        let assertion = match kind {
            AssertKind::Connect => Assertion::Connect,
            AssertKind::Version => Assertion::Version {
                min_version: raw
                    .min_version
                    .ok_or_else(|| missing("min_version", "`min_version = 12`"))?,
            },
            AssertKind::Databases | AssertKind::Roles => {
                let expect = raw
                    .expect
                    .ok_or_else(|| missing("expect", "`expect = [\"gitlab\", \"synapse\"]`"))?
                    .0;
                if expect.is_empty() {
                    return Err(format!(
                        "`expect` of `assert = \"{name}\"` lists no names; list at least one"
                    ));
                }
                if kind == AssertKind::Databases {
                    Assertion::Databases { expect }
                } else {
                    Assertion::Roles { expect }
                }
            }
            AssertKind::RoleConnect => Assertion::RoleConnect,
            AssertKind::Collation => {
                let expect = raw
                    .expect
                    .ok_or_else(|| missing("expect", "`expect = \"C\"`"))?
                    .0;
                match <[String; 1]>::try_from(expect) {
                    Ok([one]) => Assertion::Collation { expect: one },
                    Err(_) => {
                        return Err(
                            "`expect` of `assert = \"collation\"` is one collation name, e.g. `expect = \"C\"`"
                                .into(),
                        )
                    }
                }
            }
            AssertKind::Connections => Assertion::Connections {
                max_ratio: ratio(raw.max_ratio, "`max_ratio = 0.8`")?,
            },
            AssertKind::Disk => Assertion::Disk {
                max_ratio: ratio(raw.max_ratio, "`max_ratio = 0.9`")?,
            },
            AssertKind::LongQueries => match raw.max_seconds {
                None => return Err(missing("max_seconds", "`max_seconds = 300`")),
                Some(s) if s >= 0.0 && s.is_finite() => Assertion::LongQueries { max_seconds: s },
                Some(s) => return Err(format!("`max_seconds = {s}` must be 0 or more")),
            },
        };
        let (user, password) = if kind == AssertKind::RoleConnect {
            let role = raw
                .role
                .ok_or_else(|| missing("role", "`role = \"synapse\"`"))?;
            let password = raw.role_password.ok_or_else(|| {
                missing(
                    "role_password",
                    "`role_password = \"${secret:synapse_db_password}\"`",
                )
            })?;
            if raw.database.is_none() {
                return Err(missing("database", "`database = \"synapse\"`"));
            }
            (role, Some(password))
        } else {
            let user = raw
                .user
                .ok_or_else(|| missing("user", "`user = \"${postgres.admin_user}\"`"))?;
            (user, raw.password)
        };
        if raw.host.trim().is_empty() {
            return Err(
                "`host` is empty; give a host name, an address or a socket directory".into(),
            );
        }
        Ok(Spec {
            host: raw.host,
            port: raw.port.map(|p| p.0).unwrap_or(5432),
            user,
            password,
            database: raw.database.unwrap_or_else(|| "postgres".into()),
            assertion,
        })
    }
}

pub use crate::checks::Password;

/// A TCP port written as a number or as a string of digits (target vars
/// are often strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Port(u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Port, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number 1-65535 (a number or a string of digits)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(Port(p)),
                    _ => Err(E::custom(format!("port {v} is outside 1-65535"))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                match v.trim().parse::<u16>() {
                    Ok(p) if p > 0 => Ok(Port(p)),
                    _ => Err(E::custom(format!(
                        "port `{v}` is not a number between 1 and 65535"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// Names given as a list of strings or as one comma-separated string (so a
/// target var like `postgres.databases = "gitlab,synapse"` fits).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameList(Vec<String>);

impl<'de> Deserialize<'de> for NameList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NameList, D::Error> {
        struct NameListVisitor;
        impl<'de> Visitor<'de> for NameListVisitor {
            type Value = NameList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of names or one comma-separated string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NameList, E> {
                Ok(NameList(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NameList, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(NameList(names))
            }
        }
        deserializer.deserialize_any(NameListVisitor)
    }
}

impl Spec {
    /// `user@host:port/database`, for evidence.
    pub fn endpoint(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    fn is_local(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.starts_with('/')
            || host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let started = Instant::now();
    let session = match tokio::time::timeout(ctx.remaining(), gather(spec, ctx)).await {
        Ok(session) => session,
        Err(_) => Err(format!(
            "no answer from {}:{} before the check's deadline",
            spec.host, spec.port
        )),
    };
    let facts = Facts {
        endpoint: spec.endpoint(),
        session,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    judge::judge(spec, &facts)
}

/// Connects, then observes what the assertion needs. The outer `Err` is a
/// failed connect; a failed query is the session's `observation` error.
async fn gather(spec: &Spec, ctx: &ProbeContext) -> Result<Session, String> {
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
    let (client, connection) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
    let connection = tokio::spawn(connection);
    let result = observe_session(spec, ctx, &client).await;
    drop(client);
    connection.abort();
    result
}

async fn observe_session(
    spec: &Spec,
    ctx: &ProbeContext,
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
    let observation = observe(spec, ctx, client).await;
    Ok(Session {
        server_version: row.get(0),
        server_version_num: row.get::<_, i32>(1).max(0) as u32,
        current_user: row.get(2),
        current_database: row.get(3),
        observation,
    })
}

async fn observe(spec: &Spec, ctx: &ProbeContext, client: &Client) -> Result<Observation, String> {
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
            let usage = if spec.is_local() && ctx.executor.describe() == "local" {
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

    fn parse(body: &str) -> Result<Spec, String> {
        let text = format!("host = \"127.0.0.1\"\n{body}");
        toml::from_str::<Spec>(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_each_assertion_with_its_fields() {
        let s =
            parse("port = \"54321\"\nuser = \"admin\"\npassword = \"pw\"\nassert = \"connect\"")
                .unwrap();
        assert_eq!(s.port, 54321);
        assert_eq!(s.database, "postgres");
        assert_eq!(s.assertion, Assertion::Connect);
        let s = parse("port = 5433\nuser = \"a\"\nassert = \"databases\"\nexpect = \"gitlab, synapse,grafana\"")
            .unwrap();
        assert_eq!(
            s.assertion,
            Assertion::Databases {
                expect: vec!["gitlab".into(), "synapse".into(), "grafana".into()]
            }
        );
        let s = parse("user = \"a\"\nassert = \"roles\"\nexpect = [\"gitlab\"]").unwrap();
        assert_eq!(
            s.assertion,
            Assertion::Roles {
                expect: vec!["gitlab".into()]
            }
        );
        let s = parse(
            "assert = \"role_connect\"\nrole = \"synapse\"\nrole_password = \"x\"\ndatabase = \"synapse\"",
        )
        .unwrap();
        assert_eq!(
            (s.user.as_str(), s.database.as_str()),
            ("synapse", "synapse")
        );
        assert_eq!(s.password, Some(Password("x".into())));
        let s =
            parse("user = \"a\"\ndatabase = \"synapse\"\nassert = \"collation\"\nexpect = \"C\"")
                .unwrap();
        assert_eq!(s.assertion, Assertion::Collation { expect: "C".into() });
        let s = parse("user = \"a\"\nassert = \"disk\"\nmax_ratio = 0.9").unwrap();
        assert_eq!(s.assertion, Assertion::Disk { max_ratio: 0.9 });
        let s = parse("user = \"a\"\nassert = \"long_queries\"\nmax_seconds = 300").unwrap();
        assert_eq!(s.assertion, Assertion::LongQueries { max_seconds: 300.0 });
    }

    #[test]
    fn rejects_wrong_fields_with_the_fix() {
        let cases = [
            ("user = \"a\"\nassert = \"version\"", "needs `min_version`"),
            ("user = \"a\"\nassert = \"connect\"\nmin_version = 12", "`min_version` does not apply"),
            ("assert = \"connect\"", "needs `user`"),
            ("user = \"a\"\nassert = \"databases\"\nexpect = []", "lists no names"),
            ("user = \"a\"\nassert = \"collation\"\nexpect = [\"C\", \"D\"]", "one collation name"),
            ("user = \"a\"\nassert = \"connections\"\nmax_ratio = 80.0", "between 0"),
            ("user = \"a\"\nassert = \"nope\"", "unknown variant `nope`"),
            ("user = \"a\"\nassert = \"connect\"\nport = \"http\"", "not a number"),
            ("user = \"a\"\nassert = \"connect\"\nport = 70000", "outside 1-65535"),
            ("user = \"a\"\nassert = \"connect\"\ncolour = 1", "unknown field `colour`"),
            (
                "user = \"a\"\nassert = \"role_connect\"\nrole = \"r\"\nrole_password = \"p\"\ndatabase = \"d\"",
                "write `role = ...` instead",
            ),
            ("assert = \"role_connect\"\nrole = \"r\"\nrole_password = \"p\"", "needs `database`"),
        ];
        for (body, expect) in cases {
            let err = parse(body).unwrap_err();
            assert!(err.contains(expect), "{body:?}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_passwords() {
        let s = parse("user = \"a\"\npassword = \"hunter2\"\nassert = \"connect\"").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

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
