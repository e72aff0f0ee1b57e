//! Judges what a PostgreSQL session observed against one assertion.

use super::spec::{Assertion, Spec};
use crate::check::Verdict;

/// What one probe attempt found.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// `user@host:port/database` (no password).
    pub endpoint: String,
    /// The logged-in session, or why the login failed.
    pub session: Result<Session, String>,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// `SHOW server_version`, e.g. "15.8 (Debian 15.8-0+deb12u1)".
    pub server_version: String,
    /// `SHOW server_version_num`, e.g. 150008.
    pub server_version_num: u32,
    pub current_user: String,
    pub current_database: String,
    /// What the assertion needed, or why the query failed.
    pub observation: Result<Observation, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// Nothing beyond the login itself.
    Connected,
    /// Names of the non-template databases.
    Databases(Vec<String>),
    /// Roles other than the built-in `pg_*` ones.
    Roles(Vec<RoleFacts>),
    /// LC_COLLATE and LC_CTYPE of the connected database.
    Collation {
        collate: String,
        ctype: String,
    },
    Connections {
        in_use: u64,
        max: u64,
        reserved_for_superusers: u64,
    },
    /// Active client queries other than the probe's own.
    ActiveQueries(Vec<ActiveQuery>),
    Disk(DiskUsage),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleFacts {
    pub name: String,
    pub can_login: bool,
    pub password_expired: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActiveQuery {
    pub pid: i32,
    pub user: String,
    pub database: String,
    pub running_seconds: f64,
    /// The first 200 characters, hidden when they mention a credential.
    pub query: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiskUsage {
    pub data_directory: String,
    pub used_bytes: u64,
    /// Space available to unprivileged users (what `df` shows).
    pub available_bytes: u64,
    pub total_bytes: u64,
    pub measured_by: String,
}

impl DiskUsage {
    /// Used share as `df` computes it: used / (used + available).
    pub fn used_ratio(&self) -> f64 {
        let usable = self.used_bytes + self.available_bytes;
        if usable == 0 {
            return 1.0;
        }
        self.used_bytes as f64 / usable as f64
    }
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let expected = expectation(spec);
    let verdict = match &facts.session {
        Err(error) => Verdict::fail(expected, format!("cannot log in: {error}"))
            .with_evidence(format!("connect {}: {error}", facts.endpoint)),
        Ok(session) => match &session.observation {
            Err(error) => {
                Verdict::fail(expected, format!("logged in, but {error}")).with_evidence(format!(
                    "connected to {} (PostgreSQL {}); {error}",
                    facts.endpoint, session.server_version
                ))
            }
            Ok(observation) => judge_observation(spec, session, observation, expected),
        },
    };
    verdict.with_metric("connect_ms", facts.elapsed_ms)
}

fn expectation(spec: &Spec) -> String {
    let at = format!("{}:{}", spec.host, spec.port);
    match &spec.assertion {
        Assertion::Connect => format!(
            "role `{}` logs in to database `{}` on {at}",
            spec.user, spec.database
        ),
        Assertion::Version { min_version } => format!("PostgreSQL {min_version} or newer on {at}"),
        Assertion::Databases { expect } => format!("databases exist: {}", expect.join(", ")),
        Assertion::Roles { expect } => {
            format!("roles exist and may log in: {}", expect.join(", "))
        }
        Assertion::RoleConnect => format!(
            "role `{}` logs in to database `{}` with its own password",
            spec.user, spec.database
        ),
        Assertion::Collation { expect } => format!(
            "database `{}` has LC_COLLATE and LC_CTYPE `{expect}`",
            spec.database
        ),
        Assertion::Connections { max_ratio } => {
            format!("at most {} of max_connections in use", percent(*max_ratio))
        }
        Assertion::LongQueries { max_seconds } => {
            format!("no active query running longer than {max_seconds}s")
        }
        Assertion::Disk { max_ratio } => format!(
            "data directory filesystem at most {} full",
            percent(*max_ratio)
        ),
    }
}

fn judge_observation(
    spec: &Spec,
    session: &Session,
    observation: &Observation,
    expected: String,
) -> Verdict {
    let server = format!("PostgreSQL {}", session.server_version);
    match (&spec.assertion, observation) {
        (Assertion::Connect, Observation::Connected) => Verdict::pass(
            expected,
            format!(
                "logged in as `{}` to `{}`; {server}",
                session.current_user, session.current_database
            ),
        )
        .with_evidence(format!("server_version = {}", session.server_version)),
        (Assertion::RoleConnect, Observation::Connected) => {
            let found = format!(
                "logged in as `{}` to `{}`",
                session.current_user, session.current_database
            );
            let right =
                session.current_user == spec.user && session.current_database == spec.database;
            verdict(right, expected, found)
        }
        (Assertion::Version { min_version }, Observation::Connected) => {
            let major = major_version(session.server_version_num);
            verdict(
                major >= *min_version,
                expected,
                format!("{server} (major version {major})"),
            )
            .with_evidence(format!(
                "server_version_num = {}",
                session.server_version_num
            ))
        }
        (Assertion::Databases { expect }, Observation::Databases(present)) => {
            let missing: Vec<&str> = expect
                .iter()
                .filter(|name| !present.contains(name))
                .map(String::as_str)
                .collect();
            let found = if missing.is_empty() {
                "all present".to_string()
            } else {
                format!("missing: {}", missing.join(", "))
            };
            verdict(missing.is_empty(), expected, found)
                .with_evidence(format!("databases on the server: {}", present.join(", ")))
        }
        (Assertion::Roles { expect }, Observation::Roles(roles)) => {
            let mut problems = Vec::new();
            for name in expect {
                match roles.iter().find(|r| &r.name == name) {
                    None => problems.push(format!("`{name}` does not exist")),
                    Some(role) if !role.can_login => {
                        problems.push(format!("`{name}` exists but has NOLOGIN"))
                    }
                    Some(role) if role.password_expired => problems.push(format!(
                        "`{name}` exists but its password expired (VALID UNTIL)"
                    )),
                    Some(_) => {}
                }
            }
            let found = if problems.is_empty() {
                "all present and may log in".to_string()
            } else {
                problems.join("; ")
            };
            let listing: Vec<String> = roles
                .iter()
                .map(|r| format!("{}{}", r.name, if r.can_login { "" } else { " (nologin)" }))
                .collect();
            verdict(problems.is_empty(), expected, found)
                .with_evidence(format!("roles on the server: {}", listing.join(", ")))
        }
        (Assertion::Collation { expect }, Observation::Collation { collate, ctype }) => verdict(
            collate == expect && ctype == expect,
            expected,
            format!("LC_COLLATE `{collate}`, LC_CTYPE `{ctype}`"),
        )
        .with_evidence(format!(
            "pg_database row of `{}`: datcollate = {collate}, datctype = {ctype}",
            session.current_database
        )),
        (
            Assertion::Connections { max_ratio },
            Observation::Connections {
                in_use,
                max,
                reserved_for_superusers,
            },
        ) => {
            let ratio = if *max == 0 {
                1.0
            } else {
                *in_use as f64 / *max as f64
            };
            verdict(
                ratio <= *max_ratio,
                expected,
                format!("{in_use} of {max} in use ({})", percent(ratio)),
            )
            .with_evidence(format!(
                "client backends = {in_use}, max_connections = {max}, superuser_reserved_connections = {reserved_for_superusers}"
            ))
            .with_metric("connections_in_use", *in_use as f64)
        }
        (Assertion::LongQueries { max_seconds }, Observation::ActiveQueries(queries)) => {
            let too_long: Vec<&ActiveQuery> = queries
                .iter()
                .filter(|q| q.running_seconds > *max_seconds)
                .collect();
            let found = match too_long.first() {
                None => format!(
                    "{} active queries, the longest running {}",
                    queries.len(),
                    queries
                        .first()
                        .map(|q| format!("{:.1}s", q.running_seconds))
                        .unwrap_or_else(|| "-".into())
                ),
                Some(longest) => format!(
                    "{} queries over the limit, the longest pid {} running {:.1}s",
                    too_long.len(),
                    longest.pid,
                    longest.running_seconds
                ),
            };
            let evidence: Vec<String> = too_long
                .iter()
                .take(5)
                .map(|q| {
                    format!(
                        "pid {} user {} db {} running {:.1}s: {}",
                        q.pid, q.user, q.database, q.running_seconds, q.query
                    )
                })
                .collect();
            verdict(too_long.is_empty(), expected, found).with_evidence(evidence.join("\n"))
        }
        (Assertion::Disk { max_ratio }, Observation::Disk(usage)) => {
            let ratio = usage.used_ratio();
            verdict(
                ratio <= *max_ratio,
                expected,
                format!(
                    "{} full ({} used, {} available)",
                    percent(ratio),
                    bytes(usage.used_bytes),
                    bytes(usage.available_bytes)
                ),
            )
            .with_evidence(format!(
                "data_directory = {}; filesystem size {}; measured by {}",
                usage.data_directory,
                bytes(usage.total_bytes),
                usage.measured_by
            ))
            .with_metric("data_disk_used_ratio", ratio)
        }
        (assertion, observation) => Verdict::fail(
            expected,
            format!(
                "internal error: assertion {:?} got observation {observation:?}",
                assertion.kind()
            ),
        ),
    }
}

fn verdict(pass: bool, expected: String, found: String) -> Verdict {
    if pass {
        Verdict::pass(expected, found)
    } else {
        Verdict::fail(expected, found)
    }
}

/// 150008 -> 15; 90624 -> 9 (versions before 10 are 9.x).
fn major_version(version_num: u32) -> u32 {
    version_num / 10000
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn bytes(n: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= GIB {
        format!("{:.1} GiB", n as f64 / GIB)
    } else {
        format!("{:.1} MiB", n as f64 / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_body: &str) -> Spec {
        toml::from_str(&format!("host = \"db\"\nport = 5432\n{toml_body}")).unwrap()
    }

    fn session(observation: Observation) -> Facts {
        Facts {
            endpoint: "admin@db:5432/postgres".into(),
            session: Ok(Session {
                server_version: "15.8".into(),
                server_version_num: 150008,
                current_user: "admin".into(),
                current_database: "postgres".into(),
                observation: Ok(observation),
            }),
            elapsed_ms: 3.0,
        }
    }

    fn check(toml_body: &str, observation: Observation, pass: bool, found_contains: &str) {
        let v = judge(&spec(toml_body), &session(observation));
        assert_eq!(v.pass, pass, "{toml_body}: {v:?}");
        assert!(v.found.contains(found_contains), "{toml_body}: {v:?}");
    }

    const ADMIN: &str = "user = \"admin\"\n";

    #[test]
    fn version() {
        check(
            &format!("{ADMIN}assert = \"version\"\nmin_version = 12"),
            Observation::Connected,
            true,
            "major version 15",
        );
        check(
            &format!("{ADMIN}assert = \"version\"\nmin_version = 16"),
            Observation::Connected,
            false,
            "major version 15",
        );
    }

    #[test]
    fn databases_lists_the_missing_ones() {
        let present = Observation::Databases(vec!["gitlab".into(), "postgres".into()]);
        check(
            &format!("{ADMIN}assert = \"databases\"\nexpect = [\"gitlab\"]"),
            present.clone(),
            true,
            "all present",
        );
        check(
            &format!("{ADMIN}assert = \"databases\"\nexpect = \"gitlab,synapse\""),
            present,
            false,
            "missing: synapse",
        );
    }

    #[test]
    fn roles_must_exist_and_log_in() {
        let roles = Observation::Roles(vec![
            RoleFacts {
                name: "gitlab".into(),
                can_login: true,
                password_expired: false,
            },
            RoleFacts {
                name: "locked".into(),
                can_login: false,
                password_expired: false,
            },
            RoleFacts {
                name: "old".into(),
                can_login: true,
                password_expired: true,
            },
        ]);
        check(
            &format!("{ADMIN}assert = \"roles\"\nexpect = [\"gitlab\"]"),
            roles.clone(),
            true,
            "may log in",
        );
        check(
            &format!("{ADMIN}assert = \"roles\"\nexpect = [\"locked\"]"),
            roles.clone(),
            false,
            "NOLOGIN",
        );
        check(
            &format!("{ADMIN}assert = \"roles\"\nexpect = [\"old\"]"),
            roles.clone(),
            false,
            "expired",
        );
        check(
            &format!("{ADMIN}assert = \"roles\"\nexpect = [\"ghost\"]"),
            roles,
            false,
            "`ghost` does not exist",
        );
    }

    #[test]
    fn collation_needs_both_collate_and_ctype() {
        let body = format!("{ADMIN}assert = \"collation\"\nexpect = \"C\"");
        check(
            &body,
            Observation::Collation {
                collate: "C".into(),
                ctype: "C".into(),
            },
            true,
            "`C`",
        );
        check(
            &body,
            Observation::Collation {
                collate: "C".into(),
                ctype: "C.UTF-8".into(),
            },
            false,
            "LC_CTYPE `C.UTF-8`",
        );
    }

    #[test]
    fn connections_ratio() {
        let body = format!("{ADMIN}assert = \"connections\"\nmax_ratio = 0.8");
        check(
            &body,
            Observation::Connections {
                in_use: 80,
                max: 100,
                reserved_for_superusers: 3,
            },
            true,
            "80 of 100",
        );
        check(
            &body,
            Observation::Connections {
                in_use: 81,
                max: 100,
                reserved_for_superusers: 3,
            },
            false,
            "81.0%",
        );
    }

    #[test]
    fn long_queries_names_the_culprit() {
        let body = format!("{ADMIN}assert = \"long_queries\"\nmax_seconds = 300");
        let query = |s: f64| ActiveQuery {
            pid: 42,
            user: "gitlab".into(),
            database: "gitlab".into(),
            running_seconds: s,
            query: "SELECT pg_sleep(1000)".into(),
        };
        check(
            &body,
            Observation::ActiveQueries(vec![]),
            true,
            "0 active queries",
        );
        check(
            &body,
            Observation::ActiveQueries(vec![query(299.0)]),
            true,
            "299.0s",
        );
        let v = judge(
            &spec(&body),
            &session(Observation::ActiveQueries(vec![query(301.0)])),
        );
        assert!(!v.pass && v.found.contains("pid 42"), "{v:?}");
        assert!(v.evidence.contains("pg_sleep"), "{v:?}");
    }

    #[test]
    fn disk_ratio_as_df_computes_it() {
        let usage = |used, available| {
            Observation::Disk(DiskUsage {
                data_directory: "/var/lib/postgresql".into(),
                used_bytes: used,
                available_bytes: available,
                total_bytes: used + available + 5,
                measured_by: "statvfs".into(),
            })
        };
        let warn = format!("{ADMIN}assert = \"disk\"\nmax_ratio = 0.8");
        check(&warn, usage(79, 21), true, "79.0% full");
        check(&warn, usage(85, 15), false, "85.0% full");
    }

    #[test]
    fn login_and_query_failures_say_what_happened() {
        let body = format!("{ADMIN}assert = \"connect\"");
        let facts = Facts {
            endpoint: "admin@db:5432/postgres".into(),
            session: Err("FATAL 28P01: password authentication failed for user \"admin\"".into()),
            elapsed_ms: 1.0,
        };
        let v = judge(&spec(&body), &facts);
        assert!(
            !v.pass && v.found.starts_with("cannot log in: FATAL 28P01"),
            "{v:?}"
        );
        let mut facts = session(Observation::Connected);
        if let Ok(s) = &mut facts.session {
            s.observation = Err("listing databases failed: permission denied".into());
        }
        let v = judge(
            &spec(&format!("{ADMIN}assert = \"databases\"\nexpect = [\"x\"]")),
            &facts,
        );
        assert!(
            !v.pass && v.found.contains("logged in, but listing databases failed"),
            "{v:?}"
        );
    }

    #[test]
    fn role_connect_checks_who_logged_in() {
        let body = "assert = \"role_connect\"\nrole = \"admin\"\nrole_password = \"p\"\ndatabase = \"postgres\"";
        check(
            body,
            Observation::Connected,
            true,
            "logged in as `admin` to `postgres`",
        );
        let body = "assert = \"role_connect\"\nrole = \"gitlab\"\nrole_password = \"p\"\ndatabase = \"gitlab\"";
        check(body, Observation::Connected, false, "logged in as `admin`");
    }
}
