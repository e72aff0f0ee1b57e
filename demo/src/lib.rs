//! The embedded demo stack (`spinup-smoke-demo`, run as `spinup-smoke demo`):
//! real PostgreSQL, Matrix Synapse, an OpenID Connect provider, Prometheus,
//! an nginx proxy, podman's Docker API and a hardened guest VM (the host
//! the security phase examines over ssh; its nginx is the TLS front), plus
//! GitLab and Grafana STAND-INS (they cannot be installed here; they answer
//! the real API shapes from live state: database health, runners,
//! projects, merge requests, pipelines and jobs from the demo's PostgreSQL,
//! repositories from real bare git repositories under
//! `STATE/standins/git`, served over git smart HTTP by `git http-backend`
//! behind this machine's nginx) and rave-runner, the STAND-IN for
//! gitlab-runner (`demo/standins/runner.py`: it takes the stand-in's jobs
//! and runs their scripts in podman containers of the demo image).
//! Everything binds 127.0.0.1 on free ports and lives under one
//! state directory; `up` also builds (or reuses) the demo guest image and
//! writes `target.toml` for every phase the demo runs, `down` stops it all
//! and removes the directory.
//!
//! A crate of its own: it depends on the validator (`spinup_smoke`: user
//! errors, processes, the run, `verify`), the validator on nothing of it.

// User errors carry file, position, field and hint; they are on cold paths.
#![allow(clippy::result_large_err)]

pub mod assets;
mod ca;
pub mod cli;
mod configs;
pub mod containers;
pub mod guest;
pub mod process;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;

use assets::Assets;
use process::{log_tail, spawn, Launch};
use spinup_smoke::error::UserError;

/// The profiles the demo validates, relative to the assets directory: the
/// configuration (its own checkout), every service profile, the security of
/// the guest host (through its ssh target), the sign-in flows, the VM
/// scenario, the agent's commands over Matrix, the hello-world flow and the
/// performance budgets (the guest host's peak memory from inside, through
/// its ssh target). The binary's self-test
/// (scenarios/selftest.toml) is not among them: its checks cannot fail, so
/// they would claim phases the demo does not examine.
pub const PROFILES: [&str; 15] = [
    "health-checks/config.toml",
    "health-checks/postgres.toml",
    "health-checks/matrix.toml",
    "health-checks/prometheus.toml",
    "health-checks/gitlab.toml",
    "health-checks/grafana.toml",
    "health-checks/networking.toml",
    "health-checks/containers.toml",
    "health-checks/security.toml",
    "scenarios/oidc.toml",
    "scenarios/agent.toml",
    "scenarios/vm.toml",
    "scenarios/hello_world.toml",
    "health-checks/performance.toml",
    "health-checks/performance-host.toml",
];

/// The phases a demo run must examine (each ran at least one check), or
/// it FAILS: all ten.
pub fn required_phases() -> Vec<spinup_smoke::check::Phase> {
    spinup_smoke::check::Phase::ALL.to_vec()
}

/// Where the demo's parts are.
pub struct Layout {
    pub state: PathBuf,
    pub assets: Assets,
}

/// Free ports, picked at `up`.
#[derive(Debug, Clone)]
pub struct Ports {
    pub postgres: u16,
    pub synapse: u16,
    pub synapse_metrics: u16,
    pub idp: u16,
    pub prometheus: u16,
    pub tls_front: u16,
    pub gitlab: u16,
    /// nginx's plain-HTTP front of the GitLab stand-in for git (`gitlab.git_url`).
    pub gitlab_git: u16,
    pub grafana: u16,
}

/// What `up` started.
pub struct StackInfo {
    pub target: PathBuf,
    /// The guest image the build, boot and sandbox phases use (the
    /// target's `image.path`).
    pub image: PathBuf,
    /// The booted guest the security phase examines (`[hosts.guest]`).
    pub guest: guest::GuestHost,
    pub timings: Vec<(String, Duration)>,
}

pub const SECRETS: [&str; 15] = [
    "postgres_admin_password",
    "gitlab_db_password",
    "synapse_db_password",
    "grafana_db_password",
    "synapse_admin_password",
    "synapse_operator_password",
    "synapse_outsider_password",
    "rave_agent_password",
    "synapse_registration_secret",
    "idp_test_password",
    "gitlab_token",
    "gitlab_runner_registration_token",
    "idp_client_secret_synapse",
    "idp_client_secret_grafana",
    "idp_client_secret_spinup_smoke",
];

fn free_port() -> Result<u16, UserError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| UserError::new(format!("cannot find a free port: {e}")))
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn write_private(path: &Path, text: &str) -> Result<(), UserError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| UserError::new(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| UserError::new(format!("cannot write {}: {e}", path.display())))
}

fn secret(state: &Path, name: &str) -> Result<String, UserError> {
    std::fs::read_to_string(state.join("secrets").join(name))
        .map(|s| s.trim().to_string())
        .map_err(|e| UserError::new(format!("cannot read secret {name}: {e}")))
}

/// Waits until `ready` says yes, the process dies, or the deadline passes.
async fn wait_ready<F, Fut>(
    state: &Path,
    name: &str,
    pid: Option<u32>,
    timeout: Duration,
    ready: F,
) -> Result<(), UserError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match ready().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(pid) = pid {
            if !process::alive(pid) {
                return Err(UserError::new(format!(
                    "{name} exited during start-up ({last}); log tail ({}):\n{}",
                    process::log_path(state, name).display(),
                    log_tail(state, name, 20)
                ))
                .hint("fix the cause above, then `spinup-smoke demo down` and try again"));
            }
        }
        if Instant::now() > deadline {
            return Err(UserError::new(format!(
                "{name} was not ready within {}s ({last}); log tail ({}):\n{}",
                timeout.as_secs(),
                process::log_path(state, name).display(),
                log_tail(state, name, 20)
            ))
            .hint("is the machine overloaded? `spinup-smoke demo down` cleans up"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap_or_default()
}

async fn http_ok(url: String) -> Result<(), String> {
    match http_client().get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{url}: status {}", r.status())),
        Err(e) => Err(format!("{url}: {}", spinup_smoke::error::error_chain(&e))),
    }
}

/// Starts the whole stack under `state`, prepares the guest image in
/// `state/guest` and writes `state/target.toml`.
pub async fn up(state: &Path, assets: &Assets) -> Result<StackInfo, UserError> {
    if state.join("run").exists() {
        return Err(UserError::new(format!(
            "a demo stack already has state in {}",
            state.display()
        ))
        .hint("stop it first: spinup-smoke demo down"));
    }
    for dir in [
        "logs",
        "run",
        "secrets",
        "synapse/media",
        "prometheus",
        "nginx/tmp",
        "tls",
        "idp",
        "standins",
    ] {
        std::fs::create_dir_all(state.join(dir)).map_err(|e| {
            UserError::new(format!("cannot create {}: {e}", state.join(dir).display()))
                .hint("pass --state with a writable directory")
        })?;
    }
    let state = state
        .canonicalize()
        .map_err(|e| UserError::new(e.to_string()))?;
    for name in SECRETS {
        write_private(&state.join("secrets").join(name), &random_secret())?;
    }
    let ports = Ports {
        postgres: free_port()?,
        synapse: free_port()?,
        synapse_metrics: free_port()?,
        idp: free_port()?,
        prometheus: free_port()?,
        tls_front: free_port()?,
        gitlab: free_port()?,
        gitlab_git: free_port()?,
        grafana: free_port()?,
    };
    let layout = Layout {
        state: state.clone(),
        assets: assets.clone(),
    };
    let result = start_all(&layout, &ports).await;
    if result.is_err() {
        let _ = down(&state).await.map(|_| ());
    }
    result
}

async fn start_all(layout: &Layout, ports: &Ports) -> Result<StackInfo, UserError> {
    let state = &layout.state;
    let mut timings = Vec::new();
    let total = Instant::now();

    // The demo CA signs the TLS front's certificate and the guest's.
    let ca = std::sync::Arc::new(ca::DemoCa::create(state)?);
    // The guest image (built once, then cached) and the long-lived guest
    // booted from it, while the services start: booting is the slow part.
    let mut guest_task = AbortOnDrop({
        let (state, assets, ca) = (state.clone(), layout.assets.clone(), ca.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let dir = state.join("guest");
            let image_assets = assets.clone();
            let guest = tokio::task::spawn_blocking(move || guest::prepare(&image_assets, &dir))
                .await
                .map_err(|e| UserError::new(format!("preparing the guest image stopped: {e}")))??;
            let prepared = t.elapsed();
            let t = Instant::now();
            let host = guest::boot(&state, &assets, &guest, &ca).await?;
            Ok::<_, UserError>((guest, host, prepared, t.elapsed()))
        })
    });

    // PostgreSQL, the IdP and the stand-ins do not depend on each other.
    let t = Instant::now();
    let idp_pid = start_idp(layout, ports)?;
    let standin_pid = start_standins(layout, ports)?;
    configs::postgres(layout, ports).await?;
    timings.push(("postgresql".to_string(), t.elapsed()));

    let t = Instant::now();
    wait_ready(state, "idp", Some(idp_pid), Duration::from_secs(30), || {
        http_ok(format!(
            "http://127.0.0.1:{}/.well-known/openid-configuration",
            ports.idp
        ))
    })
    .await?;
    timings.push(("oidc provider".to_string(), t.elapsed()));

    let t = Instant::now();
    wait_ready(
        state,
        "standins",
        Some(standin_pid),
        Duration::from_secs(20),
        || async {
            http_ok(format!("http://127.0.0.1:{}/-/health", ports.gitlab)).await?;
            http_ok(format!("http://127.0.0.1:{}/api/health", ports.grafana)).await
        },
    )
    .await?;
    register_runner(state, ports).await?;
    timings.push(("gitlab+grafana stand-ins".to_string(), t.elapsed()));

    let t = Instant::now();
    let synapse_pid = configs::synapse(layout, ports)?;
    wait_ready(
        state,
        "synapse",
        Some(synapse_pid),
        // Its start competes with the guest's boot for the CPU.
        Duration::from_secs(180),
        || http_ok(format!("http://127.0.0.1:{}/health", ports.synapse)),
    )
    .await?;
    configs::register_synapse_users(layout, ports).await?;
    timings.push(("synapse".to_string(), t.elapsed()));

    let t = Instant::now();
    let agent_pid = start_agent(layout, ports)?;
    wait_ready(
        state,
        AGENT,
        Some(agent_pid),
        Duration::from_secs(30),
        || async {
            let log = std::fs::read_to_string(process::log_path(state, AGENT)).unwrap_or_default();
            if log.contains("listening as") {
                Ok(())
            } else {
                Err("the agent has not synced yet".to_string())
            }
        },
    )
    .await?;
    timings.push(("rave-agent".to_string(), t.elapsed()));

    let t = Instant::now();
    let prometheus_pid = configs::prometheus(layout, ports)?;
    wait_ready(
        state,
        "prometheus",
        Some(prometheus_pid),
        Duration::from_secs(30),
        || async {
            let url = format!("http://127.0.0.1:{}/api/v1/targets", ports.prometheus);
            let body = http_client()
                .get(&url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if body.contains("\"health\":\"up\"")
                && !body.contains("\"health\":\"unknown\"")
                && !body.contains("\"health\":\"down\"")
            {
                Ok(())
            } else {
                Err("the synapse scrape target is not up yet".into())
            }
        },
    )
    .await?;
    timings.push(("prometheus".to_string(), t.elapsed()));

    let t = Instant::now();
    containers::start(state).await?;
    timings.push(("podman (docker api)".to_string(), t.elapsed()));

    let t = Instant::now();
    let nginx_pid = configs::tls_front(layout, ports, &ca)?;
    wait_ready(
        state,
        "nginx",
        Some(nginx_pid),
        Duration::from_secs(20),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", ports.tls_front))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )
    .await?;
    timings.push(("nginx tls front".to_string(), t.elapsed()));

    // The runner takes the stand-in's jobs once the engine and the git
    // front are up.
    let t = Instant::now();
    let runner_pid = start_runner(layout, ports)?;
    wait_ready(
        state,
        RUNNER,
        Some(runner_pid),
        Duration::from_secs(30),
        || async {
            let log = std::fs::read_to_string(process::log_path(state, RUNNER)).unwrap_or_default();
            if log.contains("rave-runner: polling") {
                Ok(())
            } else {
                Err("the runner has not polled the stand-in yet".to_string())
            }
        },
    )
    .await?;
    timings.push(("rave-runner".to_string(), t.elapsed()));

    // The build, boot and sandbox phases use the demo guest image; the
    // security phase examines the booted guest.
    let t = Instant::now();
    let (guest, host, prepared, booted) = (&mut guest_task.0)
        .await
        .map_err(|e| UserError::new(format!("starting the demo guest stopped: {e}")))??;
    timings.push(("guest image".to_string(), prepared));
    timings.push((format!("guest vm ({})", host.accel), booted));
    timings.push(("waiting for the guest".to_string(), t.elapsed()));

    let target = state.join("target.toml");
    write_private(&target, &configs::target_toml(layout, ports, &guest, &host))?;
    timings.push(("total".to_string(), total.elapsed()));
    Ok(StackInfo {
        target,
        image: guest.image,
        guest: host,
        timings,
    })
}

/// Aborts the task when dropped: a failed `up` leaves no guest starting.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn start_idp(layout: &Layout, ports: &Ports) -> Result<u32, UserError> {
    let state = &layout.state;
    let issuer = format!("http://127.0.0.1:{}", ports.idp);
    let secrets = state.join("secrets");
    write_private(&state.join("idp/cookie.key"), &random_secret())?;
    let config = serde_json::json!({
        "issuer": issuer,
        "port": ports.idp,
        "jwks_path": state.join("idp/jwks.json"),
        "cookie_key_file": state.join("idp/cookie.key"),
        "clients": [
            { "client_id": "synapse", "client_secret_file": secrets.join("idp_client_secret_synapse"),
              "redirect_uris": [format!("http://127.0.0.1:{}/_synapse/client/oidc/callback", ports.synapse),
                                format!("https://rave.local:{}/_synapse/client/oidc/callback", ports.tls_front)] },
            { "client_id": "grafana", "client_secret_file": secrets.join("idp_client_secret_grafana"),
              "redirect_uris": [format!("http://127.0.0.1:{}/login/generic_oauth", ports.grafana)] },
            { "client_id": "spinup-smoke", "client_secret_file": secrets.join("idp_client_secret_spinup_smoke"),
              "redirect_uris": ["http://127.0.0.1/spinup-smoke/callback"], "pkce_required": true },
        ],
        "users": [
            { "username": "alice", "password_file": secrets.join("idp_test_password") },
            { "username": "operator", "password_file": secrets.join("synapse_operator_password") },
        ],
    });
    write_private(&state.join("idp/config.json"), &config.to_string())?;
    let idp_dir = layout.assets.join("demo/idp");
    if !idp_dir.join("node_modules/oidc-provider").exists() {
        return Err(UserError::new("the IdP's npm packages are not installed")
            .hint("run ./scripts/setup.sh (it runs npm ci in demo/idp)"));
    }
    spawn(
        state,
        &Launch {
            name: "idp",
            program: "node".into(),
            args: vec![
                idp_dir.join("server.mjs").display().to_string(),
                state.join("idp/config.json").display().to_string(),
            ],
            env: vec![],
            cwd: Some(idp_dir),
        },
    )
}

fn start_standins(layout: &Layout, ports: &Ports) -> Result<u32, UserError> {
    let state = &layout.state;
    let config = serde_json::json!({
        "gitlab_port": ports.gitlab,
        "grafana_port": ports.grafana,
        "token_file": state.join("secrets/gitlab_token"),
        "git_root": state.join("standins/git"),
        "git_base_url": git_url(ports),
        "idp_issuer": format!("http://127.0.0.1:{}", ports.idp),
        "external_url": format!("http://127.0.0.1:{}", ports.gitlab),
        "runner_registration_token_file": state.join("secrets/gitlab_runner_registration_token"),
        // Readiness and health connect as the real services' own roles.
        "postgres": { "host": "127.0.0.1", "port": ports.postgres },
        "gitlab_db": { "user": "gitlab", "dbname": "gitlab",
                       "password_file": state.join("secrets/gitlab_db_password") },
        "grafana_db": { "user": "grafana", "dbname": "grafana",
                        "password_file": state.join("secrets/grafana_db_password") },
    });
    write_private(&state.join("standins/config.json"), &config.to_string())?;
    spawn(
        state,
        &Launch {
            name: "standins",
            program: python(layout),
            args: vec![
                layout
                    .assets
                    .join("demo/standins/gitlab_grafana_standin.py")
                    .display()
                    .to_string(),
                state.join("standins/config.json").display().to_string(),
            ],
            env: vec![],
            cwd: None,
        },
    )
}

/// The URL git clones the stand-in's repositories from: nginx's plain-HTTP
/// front (`gitlab.git_url` in the target).
pub fn git_url(ports: &Ports) -> String {
    format!("http://127.0.0.1:{}", ports.gitlab_git)
}

/// The runner's name in `run/` and `logs/`.
pub const RUNNER: &str = "runner";

/// Starts rave-runner (`demo/standins/runner.py`), the stand-in for
/// gitlab-runner: it polls the GitLab stand-in with the token
/// [`register_runner`] kept and runs each job's script in the demo's podman.
fn start_runner(layout: &Layout, ports: &Ports) -> Result<u32, UserError> {
    let state = &layout.state;
    let (podman, podman_env) = containers::podman_command(state);
    let config = serde_json::json!({
        "gitlab_url": format!("http://127.0.0.1:{}", ports.gitlab),
        "token_file": state.join(RUNNER_TOKEN),
        "podman": podman,
        "podman_env": podman_env
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect::<serde_json::Map<_, _>>(),
        "image": containers::IMAGE,
        "builds_dir": state.join("runner/builds"),
        "poll_interval": 1,
    });
    std::fs::create_dir_all(state.join("runner/builds")).map_err(|e| {
        UserError::new(format!(
            "cannot create {}: {e}",
            state.join("runner/builds").display()
        ))
    })?;
    write_private(&state.join("runner/config.json"), &config.to_string())?;
    spawn(
        state,
        &Launch {
            name: RUNNER,
            program: python(layout),
            args: vec![
                layout
                    .assets
                    .join("demo/standins/runner.py")
                    .display()
                    .to_string(),
                state.join("runner/config.json").display().to_string(),
            ],
            env: vec![],
            cwd: None,
        },
    )
}

/// The agent's name in `run/` and `logs/`.
pub const AGENT: &str = "rave-agent";

/// The agent binary: beside this program (both are built by `cargo build`).
fn agent_program() -> Result<PathBuf, UserError> {
    let exe = std::env::current_exe()
        .map_err(|e| UserError::new(format!("cannot find this program's own path: {e}")))?;
    let program = exe.parent().unwrap_or(Path::new(".")).join(AGENT);
    if program.is_file() {
        Ok(program)
    } else {
        Err(UserError::new(format!(
            "{} does not exist (the agent is looked for beside {})",
            program.display(),
            exe.display()
        ))
        .hint("build it with `cargo build` (or `cargo build -p rave-agent`); installed, rave-agent goes into the same bin directory"))
    }
}

/// Starts `rave-agent` for the operator, acting on the GitLab stand-in.
fn start_agent(layout: &Layout, ports: &Ports) -> Result<u32, UserError> {
    let state = &layout.state;
    let secrets = state.join("secrets");
    let config = format!(
        "homeserver = \"http://127.0.0.1:{}\"\nuser = \"@rave-agent:rave.local\"\npassword_file = \"{}\"\nallowed_users = [\"@operator:rave.local\"]\ngitlab_url = \"http://127.0.0.1:{}\"\ngitlab_token_file = \"{}\"\n",
        ports.synapse,
        secrets.join("rave_agent_password").display(),
        ports.gitlab,
        secrets.join("gitlab_token").display()
    );
    std::fs::create_dir_all(state.join("agent")).map_err(|e| {
        UserError::new(format!(
            "cannot create {}: {e}",
            state.join("agent").display()
        ))
    })?;
    write_private(&state.join("agent/agent.toml"), &config)?;
    spawn(
        state,
        &Launch {
            name: AGENT,
            program: agent_program()?,
            args: vec![
                "--config".to_string(),
                state.join("agent/agent.toml").display().to_string(),
            ],
            env: vec![],
            cwd: None,
        },
    )
}

/// Where `up` keeps the token of the runner it registered (the stand-in
/// stores only its digest).
pub const RUNNER_TOKEN: &str = "secrets/gitlab_runner_token";

/// Registers the demo's runner with the GitLab stand-in as `gitlab-runner
/// register` and `verify` do: `POST /api/v4/runners` with the instance's
/// registration token, then `POST /api/v4/runners/verify` with the runner
/// token it answered, kept in [`RUNNER_TOKEN`].
async fn register_runner(state: &Path, ports: &Ports) -> Result<(), UserError> {
    let base = format!("http://127.0.0.1:{}/api/v4/runners", ports.gitlab);
    let registration = secret(state, "gitlab_runner_registration_token")?;
    let answer = runner_call(
        state,
        &base,
        serde_json::json!({ "token": registration, "description": "rave-sandbox-runner" }),
    )
    .await?;
    let token = answer["token"].as_str().ok_or_else(|| {
        UserError::new(format!(
            "registering the demo runner: no token in the answer of POST {base}"
        ))
    })?;
    write_private(&state.join(RUNNER_TOKEN), token)?;
    runner_call(
        state,
        &format!("{base}/verify"),
        serde_json::json!({ "token": token }),
    )
    .await?;
    Ok(())
}

/// One POST of the runner API, tried again while the stand-in answers 5xx
/// (its database busy) for up to 20 s; a 4xx is final.
async fn runner_call(
    state: &Path,
    url: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, UserError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let error = match client.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                return r.json().await.map_err(|e| {
                    UserError::new(format!("registering the demo runner: POST {url}: {e}"))
                })
            }
            Ok(r) if r.status().is_client_error() => {
                return Err(UserError::new(format!(
                    "registering the demo runner: POST {url} answered {}",
                    r.status()
                )))
            }
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => spinup_smoke::error::error_chain(&e),
        };
        if Instant::now() > deadline {
            return Err(UserError::new(format!(
                "registering the demo runner: POST {url}: {error}; the stand-in's log ({}):\n{}",
                process::log_path(state, "standins").display(),
                log_tail(state, "standins", 10)
            ))
            .hint("is the demo's PostgreSQL up? `spinup-smoke demo down` cleans up"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The venv's python (Synapse lives there), else the system's.
pub fn python(layout: &Layout) -> PathBuf {
    let venv = layout.assets.join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Stops everything recorded under `state` and removes it. Safe to run
/// twice and after a crashed `up`.
pub async fn down(state: &Path) -> Result<Vec<String>, UserError> {
    if !state.exists() {
        return Ok(Vec::new());
    }
    containers::stop(state);
    let mut stopped = process::stop_recorded(state, Duration::from_secs(10));
    if configs::stop_postgres(state) {
        stopped.push("postgresql".into());
    }
    match process::stop_strays(state, Duration::from_secs(2)) {
        0 => {}
        n => stopped.push(format!("{n} unrecorded process(es) of a crashed up")),
    }
    // A process killed just now may still have had a write in flight: a
    // few tries.
    let mut tries = 0;
    while let Err(e) = std::fs::remove_dir_all(state) {
        tries += 1;
        if tries == 10 || e.kind() == std::io::ErrorKind::PermissionDenied {
            return Err(UserError::new(format!(
                "cannot remove {}: {e}",
                state.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(stopped)
}
