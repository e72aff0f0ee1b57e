//! The `[check.postgres]` table: the connection fields, the assertion and
//! its parameters, checked once when the profile is read. Passwords never
//! reach `Debug` output.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::checks::via::Via;

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
    /// `"direct"` or `"host"` (through the host's tunnel); default: the host's.
    #[serde(default)]
    via: Option<Via>,
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
    /// The route (`None`: the host's default).
    pub via: Option<Via>,
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
            via: raw.via,
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

    /// Whether the server is on this host by its address (a socket
    /// directory, `localhost` or a loopback address).
    pub fn is_local(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.starts_with('/')
            || host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }
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
}
