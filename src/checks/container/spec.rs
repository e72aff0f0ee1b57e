//! The `[check.container]` table: the engine's API socket and the
//! assertion, `version` (the engine answers, with an API at least this new)
//! or `run` (a container runs a command, exits as expected and is removed).

use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;
use crate::vm::ByteSize;

/// The table as written in a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// The engine's API socket: a path or `unix:///path`.
    socket: String,
    /// What to assert: `version` or `run`.
    #[serde(rename = "assert")]
    assertion: AssertKind,
    /// `version`: the oldest acceptable API version, e.g. "1.40".
    #[serde(default)]
    min_api_version: Option<String>,
    /// `run`: an image in the engine's local store.
    #[serde(default)]
    image: Option<String>,
    /// `run`: the command, as a list (no shell unless you name one).
    #[serde(default)]
    command: Option<Vec<String>>,
    /// `run`: the exit code the command must end with (default 0).
    #[serde(default)]
    expect_exit: Option<i64>,
    /// `run`: text the output (stdout and stderr) must contain.
    #[serde(default)]
    expect_output: Option<String>,
    /// `run`: the container's network mode (default "none").
    #[serde(default)]
    network: Option<String>,
    /// `run`: a memory limit for the container, e.g. "64MiB".
    #[serde(default)]
    memory: Option<ByteSize>,
    /// Where to reach the socket from: this machine or the check's host.
    #[serde(default)]
    via: Option<Via>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AssertKind {
    Version,
    Run,
}

/// A Docker API version, "1.41".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A checked `[check.container]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// The socket's path (without `unix://`).
    pub socket: PathBuf,
    pub assertion: Assertion,
    /// `"host"`: the engine's socket on the check's host, forwarded through
    /// its tunnel; absent: the host's default (`via` in the target).
    pub via: Option<Via>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Assertion {
    /// The engine answers `/version`, with an API at least this new.
    Version { min_api_version: Option<ApiVersion> },
    /// A container runs and is removed.
    Run(RunSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub image: String,
    pub command: Vec<String>,
    pub expect_exit: i64,
    pub expect_output: Option<String>,
    pub network: String,
    pub memory: Option<u64>,
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let socket = raw.socket.trim();
        let path = socket.strip_prefix("unix://").unwrap_or(socket);
        if !path.starts_with('/') {
            return Err(format!(
                "`socket = \"{}\"` is not an absolute socket path; write e.g. `socket = \"unix:///run/podman/podman.sock\"`",
                raw.socket
            ));
        }
        let set = [
            ("min_api_version", raw.min_api_version.is_some()),
            ("image", raw.image.is_some()),
            ("command", raw.command.is_some()),
            ("expect_exit", raw.expect_exit.is_some()),
            ("expect_output", raw.expect_output.is_some()),
            ("network", raw.network.is_some()),
            ("memory", raw.memory.is_some()),
        ];
        let (name, uses): (&str, &[&str]) = match raw.assertion {
            AssertKind::Version => ("version", &["min_api_version"]),
            AssertKind::Run => (
                "run",
                &[
                    "image",
                    "command",
                    "expect_exit",
                    "expect_output",
                    "network",
                    "memory",
                ],
            ),
        };
        crate::checks::reject_unused_fields(name, &set, uses)?;
        let assertion = match raw.assertion {
            AssertKind::Version => {
                let min_api_version = match raw.min_api_version {
                    None => None,
                    Some(text) => Some(ApiVersion::parse(&text).ok_or_else(|| {
                        format!("`min_api_version = \"{text}\"` is not an API version; write e.g. `min_api_version = \"1.40\"`")
                    })?),
                };
                Assertion::Version { min_api_version }
            }
            AssertKind::Run => {
                let image = raw.image.filter(|i| !i.trim().is_empty()).ok_or(
                    "`assert = \"run\"` needs `image`, e.g. `image = \"localhost/busybox:latest\"`",
                )?;
                let command = raw
                    .command
                    .filter(|c| !c.is_empty())
                    .ok_or("`assert = \"run\"` needs `command`, a list, e.g. `command = [\"/bin/sh\", \"-c\", \"echo ok\"]`")?;
                let network = raw.network.unwrap_or_else(|| "none".into());
                if network.trim().is_empty() {
                    return Err("`network` is empty; write e.g. `network = \"none\"` or `network = \"bridge\"`".into());
                }
                let memory = match raw.memory {
                    Some(ByteSize(bytes)) if bytes < 6 << 20 => {
                        return Err(format!(
                            "`memory` of {bytes} bytes is below the engines' 6MiB minimum; write e.g. `memory = \"64MiB\"`"
                        ))
                    }
                    other => other.map(|m| m.0),
                };
                Assertion::Run(RunSpec {
                    image,
                    command,
                    expect_exit: raw.expect_exit.unwrap_or(0),
                    expect_output: raw.expect_output,
                    network,
                    memory,
                })
            }
        };
        Ok(Spec {
            socket: PathBuf::from(path),
            assertion,
            via: raw.via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(body).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_both_assertions() {
        let s = parse(
            "socket = \"unix:///run/p.sock\"\nassert = \"version\"\nmin_api_version = \"1.40\"",
        )
        .unwrap();
        assert_eq!(s.socket, PathBuf::from("/run/p.sock"));
        assert_eq!(
            s.assertion,
            Assertion::Version {
                min_api_version: Some(ApiVersion {
                    major: 1,
                    minor: 40
                })
            }
        );
        let s = parse("socket = \"/run/p.sock\"\nassert = \"run\"\nimage = \"bb\"\ncommand = [\"/bin/true\"]\nmemory = \"64MiB\"").unwrap();
        assert_eq!(
            s.assertion,
            Assertion::Run(RunSpec {
                image: "bb".into(),
                command: vec!["/bin/true".into()],
                expect_exit: 0,
                expect_output: None,
                network: "none".into(),
                memory: Some(64 << 20),
            })
        );
    }

    #[test]
    fn rejects_wrong_fields_with_the_fix() {
        let cases = [
            ("socket = \"run/p.sock\"\nassert = \"version\"", "not an absolute socket path"),
            ("socket = \"/p\"\nassert = \"version\"\nmin_api_version = \"one\"", "not an API version"),
            ("socket = \"/p\"\nassert = \"version\"\nimage = \"x\"", "`image` does not apply"),
            ("socket = \"/p\"\nassert = \"run\"\ncommand = [\"x\"]", "needs `image`"),
            ("socket = \"/p\"\nassert = \"run\"\nimage = \"x\"", "needs `command`"),
            ("socket = \"/p\"\nassert = \"run\"\nimage = \"x\"\ncommand = []", "needs `command`"),
            ("socket = \"/p\"\nassert = \"run\"\nimage = \"x\"\ncommand = [\"x\"]\nmemory = \"1MiB\"", "6MiB minimum"),
            ("socket = \"/p\"\nassert = \"run\"\nimage = \"x\"\ncommand = \"echo\"", "invalid type"),
            ("socket = \"/p\"\nassert = \"start\"", "unknown variant `start`"),
            ("socket = \"/p\"\nassert = \"version\"\ncolour = 1", "unknown field `colour`"),
        ];
        for (body, expect) in cases {
            let err = parse(body).unwrap_err();
            assert!(err.contains(expect), "{body:?}: {err}");
        }
    }

    #[test]
    fn api_versions_order_numerically() {
        let v = |s| ApiVersion::parse(s).unwrap();
        assert!(v("1.9") < v("1.10"));
        assert!(v("1.41") > v("1.40"));
        assert_eq!(v("1.41").to_string(), "1.41");
        assert!(ApiVersion::parse("1").is_none());
    }
}
