//! `[check.container]`: talks to a container engine over the Docker API
//! (bollard on a Unix socket), the way a GitLab runner's docker executor
//! does. `version` asserts that the engine answers and how new its API is;
//! `run` creates a container from an image already in the engine's local
//! store, runs a command in it, reads its exit code and output, removes it
//! and proves it is gone.
//!
//! Every API call is bounded by the check's deadline. The run keeps a
//! little of the deadline for the removal; if the check is dropped (its
//! deadline passed, or Ctrl-C), the container is still removed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::errors::Error as ApiError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde::Deserialize;

use super::judge;
use super::judge::{Engine, Facts, Ran};
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::error::error_chain;
use crate::vm::ByteSize;

/// Containers this probe creates carry this label (value: the image), so
/// leftovers of any kind can be found with `--filter label=...`.
pub const LABEL: &str = "org.spinup-smoke.probe";

/// Output kept from a container, in bytes.
const MAX_OUTPUT: usize = 64 * 1024;

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
        })
    }
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let facts = gather(spec, ctx).await;
    judge::judge(spec, &facts)
}

async fn gather(spec: &Spec, ctx: &ProbeContext) -> Facts {
    let docker = match tokio::time::timeout(ctx.remaining(), connect(spec, ctx)).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Facts::Unreachable(e),
        Err(_) => {
            return Facts::Unreachable(
                "the engine did not answer before the check's deadline".into(),
            )
        }
    };
    let (docker, engine) = docker;
    let run = match &spec.assertion {
        Assertion::Version { .. } => return Facts::Version(engine),
        Assertion::Run(run) => run,
    };
    match tokio::time::timeout(ctx.remaining(), docker.inspect_image(&run.image)).await {
        Err(_) => {
            return Facts::Run {
                engine,
                ran: Err("the image lookup did not finish before the check's deadline".into()),
                removal: None,
            }
        }
        Ok(Err(e)) if status_of(&e) == Some(404) => {
            return Facts::ImageMissing {
                engine,
                image: run.image.clone(),
            }
        }
        Ok(Err(e)) => {
            return Facts::Run {
                engine,
                ran: Err(format!("inspecting image {}: {}", run.image, describe(&e))),
                removal: None,
            }
        }
        Ok(Ok(_)) => {}
    }
    let name = format!("spinup-smoke-{}", random_suffix());
    let created = tokio::time::timeout(ctx.remaining(), create(&docker, &name, run)).await;
    let id = match created {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => {
            return Facts::Run {
                engine,
                ran: Err(e),
                removal: None,
            }
        }
        Err(_) => {
            // The create may still land: remove by name.
            let guard = Remover::new(docker.clone(), name.clone());
            drop(guard);
            return Facts::Run {
                engine,
                ran: Err(
                    "creating the container did not finish before the check's deadline".into(),
                ),
                removal: None,
            };
        }
    };
    let mut guard = Remover::new(docker.clone(), id.clone());
    // Keep a share of the deadline for the removal and its proof.
    let reserve = (ctx.remaining() / 4).min(Duration::from_secs(5));
    let run_until = ctx.deadline.checked_sub(reserve).unwrap_or(ctx.deadline);
    let started = Instant::now();
    let ran = match tokio::time::timeout(
        run_until.saturating_duration_since(Instant::now()),
        start_and_wait(&docker, &id),
    )
    .await
    {
        Ok(Ok((exit_code, output))) => Ok(Ran {
            container: format!("{name} ({})", short(&id)),
            exit_code,
            output,
            seconds: started.elapsed().as_secs_f64(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{name} did not exit within {:.1}s (the check's deadline, less {:.1}s kept for the removal)",
            started.elapsed().as_secs_f64(),
            reserve.as_secs_f64()
        )),
    };
    let removal = match tokio::time::timeout(ctx.remaining(), remove_and_prove(&docker, &id)).await
    {
        Ok(result) => result,
        Err(_) => Err("the removal did not finish before the check's deadline".into()),
    };
    if removal.is_ok() {
        guard.disarm();
    }
    Facts::Run {
        engine,
        ran,
        removal: Some(removal),
    }
}

/// Connects, negotiates the API version and reads the engine's version.
async fn connect(spec: &Spec, ctx: &ProbeContext) -> Result<(Docker, Engine), String> {
    let path = spec.socket.display().to_string();
    if !spec.socket.exists() {
        return Err(format!(
            "no socket at {path}: is the engine's API service running (e.g. `podman system service unix://{path}`)?"
        ));
    }
    let timeout = ctx.remaining().as_secs().max(1);
    let docker = Docker::connect_with_unix(&path, timeout, bollard::API_DEFAULT_VERSION)
        .map_err(|e| format!("cannot use {path}: {}", describe(&e)))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("GET /version on {path}: {}", describe(&e)))?;
    let version = docker
        .version()
        .await
        .map_err(|e| format!("GET /version on {path}: {}", describe(&e)))?;
    let (name, engine_version) = match version.components.as_deref() {
        Some([first, ..]) => (first.name.clone(), first.version.clone()),
        _ => (
            version
                .platform
                .map(|p| p.name)
                .unwrap_or_else(|| "engine".into()),
            version.version.clone().unwrap_or_default(),
        ),
    };
    Ok((
        docker,
        Engine {
            name,
            version: engine_version,
            api_version: version.api_version.unwrap_or_default(),
            min_api_version: version.min_api_version,
            os_arch: format!(
                "{}/{}",
                version.os.unwrap_or_default(),
                version.arch.unwrap_or_default()
            ),
        },
    ))
}

async fn create(docker: &Docker, name: &str, run: &RunSpec) -> Result<String, String> {
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let body = ContainerCreateBody {
        image: Some(run.image.clone()),
        cmd: Some(run.command.clone()),
        labels: Some(HashMap::from([(LABEL.to_string(), run.image.clone())])),
        network_disabled: Some(run.network == "none"),
        host_config: Some(HostConfig {
            network_mode: Some(run.network.clone()),
            memory: run.memory.and_then(|m| i64::try_from(m).ok()),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .map(|created| created.id)
        .map_err(|e| format!("creating a container from {}: {}", run.image, describe(&e)))
}

/// Starts the container and waits for its exit: (exit code, output).
async fn start_and_wait(docker: &Docker, id: &str) -> Result<(i64, String), String> {
    docker
        .start_container(id, None)
        .await
        .map_err(|e| format!("starting {}: {}", short(id), describe(&e)))?;
    let exit_code = match docker.wait_container(id, None).next().await {
        Some(Ok(answer)) => answer.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(ApiError::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(format!("waiting for {}: {}", short(id), describe(&e))),
        None => return Err(format!("waiting for {}: no answer", short(id))),
    };
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(id, Some(options));
    let mut output = Vec::new();
    while let Some(chunk) = logs.next().await {
        let chunk =
            chunk.map_err(|e| format!("reading the logs of {}: {}", short(id), describe(&e)))?;
        let bytes = chunk.into_bytes();
        let room = MAX_OUTPUT.saturating_sub(output.len());
        output.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
    Ok((exit_code, String::from_utf8_lossy(&output).into_owned()))
}

/// Removes the container and asks for it again: only a 404 proves it gone.
async fn remove_and_prove(docker: &Docker, id: &str) -> Result<(), String> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    docker
        .remove_container(id, Some(options))
        .await
        .map_err(|e| format!("removing {}: {}", short(id), describe(&e)))?;
    match docker.inspect_container(id, None).await {
        Err(e) if status_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(format!(
            "after removal, inspecting {} failed: {}",
            short(id),
            describe(&e)
        )),
        Ok(left) => Err(format!(
            "{} is still there after its removal (state {:?})",
            short(id),
            left.state.and_then(|s| s.status)
        )),
    }
}

/// Removes a container when dropped unless disarmed: a check cut off at
/// its deadline or by Ctrl-C leaves nothing behind.
struct Remover {
    docker: Docker,
    id: String,
    armed: bool,
}

impl Remover {
    fn new(docker: Docker, id: String) -> Remover {
        Remover {
            docker,
            id,
            armed: true,
        }
    }
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Remover {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        runtime.spawn(async move {
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                docker.remove_container(&id, Some(options)),
            )
            .await;
        });
    }
}

fn status_of(error: &ApiError) -> Option<u16> {
    match error {
        ApiError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// An API error as one line: the engine's status and message, or the
/// chain of causes.
fn describe(error: &ApiError) -> String {
    match error {
        ApiError::DockerResponseServerError {
            status_code,
            message,
        } => format!("the engine answered {status_code}: {}", message.trim()),
        ApiError::RequestTimeoutError => "no answer before the check's deadline".into(),
        other => error_chain(other),
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn random_suffix() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
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

    #[tokio::test]
    async fn a_missing_socket_is_unreachable_with_the_fix() {
        let spec = parse("socket = \"/nonexistent/podman.sock\"\nassert = \"version\"").unwrap();
        let v = probe(&spec, &ProbeContext::for_tests(5)).await;
        assert!(!v.pass);
        assert!(
            v.found.contains("no socket at /nonexistent/podman.sock"),
            "{v:?}"
        );
        assert!(v.found.contains("podman system service"), "{v:?}");
    }

    #[tokio::test]
    async fn a_socket_that_is_not_an_engine_fails_within_the_deadline() {
        // A Unix listener that accepts and never answers.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mute.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let spec = parse(&format!(
            "socket = \"{}\"\nassert = \"version\"",
            path.display()
        ))
        .unwrap();
        let started = Instant::now();
        let v = probe(&spec, &ProbeContext::for_tests(2)).await;
        assert!(!v.pass);
        assert!(v.found.contains("before the check's deadline"), "{v:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        holder.abort();
    }
}
