//! Talks to a container engine over the Docker API
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
use std::time::{Duration, Instant};

use bollard::errors::Error as ApiError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::judge::{Engine, Facts, Ran};
use super::spec::{Assertion, RunSpec, Spec};
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::error::error_chain;

/// Containers this probe creates carry this label (value: the image), so
/// leftovers of any kind can be found with `--filter label=...`.
pub const LABEL: &str = "org.spinup-smoke.probe";

/// Output kept from a container, in bytes.
const MAX_OUTPUT: usize = 64 * 1024;

/// Talks to the engine; an engine that does not answer, a missing image or
/// a failed run are facts. A container it creates is removed before it
/// returns, or by its drop guard if the probe is dropped mid-run.
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let docker = match tokio::time::timeout(ctx.remaining(), connect(spec, ctx, route)).await {
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
async fn connect(
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
) -> Result<(Docker, Engine), String> {
    let path = spec.socket.display().to_string();
    if route.is_direct() && !spec.socket.exists() {
        return Err(format!(
            "no socket at {path}: is the engine's API service running (e.g. `podman system service unix://{path}`)?"
        ));
    }
    // On the host's route the engine is reached through a local forward of
    // its socket; the messages keep naming the host's path.
    let local = via::unix_endpoint(route, &spec.socket, ctx.deadline).await?;
    let local = local.display().to_string();
    let timeout = ctx.remaining().as_secs().max(1);
    let docker = Docker::connect_with_unix(&local, timeout, bollard::API_DEFAULT_VERSION)
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
    use crate::checks::container::run;

    fn parse(body: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(body).map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable_with_the_fix() {
        let spec = parse("socket = \"/nonexistent/podman.sock\"\nassert = \"version\"").unwrap();
        let v = run(&spec, &ProbeContext::for_tests(5)).await;
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
        let v = run(&spec, &ProbeContext::for_tests(2)).await;
        assert!(!v.pass);
        assert!(v.found.contains("before the check's deadline"), "{v:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        holder.abort();
    }
}
