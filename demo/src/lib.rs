//! The embedded demo stack (`spinup-smoke-demo`, run as `spinup-smoke demo`):
//! real PostgreSQL, Matrix Synapse, an OpenID Connect provider, Prometheus,
//! an nginx TLS front and podman's Docker API, plus GitLab and Grafana
//! STAND-INS (they cannot be installed here; they replay recorded API
//! shapes). Everything binds 127.0.0.1 on free ports and lives under one
//! state directory; `up` also builds (or reuses) the demo guest image and
//! writes `target.toml` for every phase the demo runs, `down` stops it all
//! and removes the directory.
//!
//! A crate of its own: it depends on the validator (`spinup_smoke`: user
//! errors, processes, the run, `verify`), the validator on nothing of it.

// User errors carry file, position, field and hint; they are on cold paths.
#![allow(clippy::result_large_err)]

pub mod assets;
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

/// The profiles the demo validates, relative to the assets directory: every
/// service profile, the sign-in flows and the VM scenario. The binary's
/// self-test (scenarios/selftest.toml) is not among them: its checks cannot
/// fail, so they would claim phases the demo does not examine.
pub const PROFILES: [&str; 9] = [
    "health-checks/postgres.toml",
    "health-checks/matrix.toml",
    "health-checks/prometheus.toml",
    "health-checks/gitlab.toml",
    "health-checks/grafana.toml",
    "health-checks/networking.toml",
    "health-checks/containers.toml",
    "scenarios/oidc.toml",
    "scenarios/vm.toml",
];

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
    pub grafana: u16,
}

/// What `up` started.
pub struct StackInfo {
    pub target: PathBuf,
    /// The guest image the build, boot and sandbox phases use (the
    /// target's `image.path`).
    pub image: PathBuf,
    pub timings: Vec<(String, Duration)>,
}

pub const SECRETS: [&str; 12] = [
    "postgres_admin_password",
    "gitlab_db_password",
    "synapse_db_password",
    "grafana_db_password",
    "synapse_admin_password",
    "synapse_operator_password",
    "synapse_registration_secret",
    "idp_test_password",
    "gitlab_token",
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
    timings.push(("gitlab+grafana stand-ins".to_string(), t.elapsed()));

    let t = Instant::now();
    let synapse_pid = configs::synapse(layout, ports)?;
    wait_ready(
        state,
        "synapse",
        Some(synapse_pid),
        Duration::from_secs(90),
        || http_ok(format!("http://127.0.0.1:{}/health", ports.synapse)),
    )
    .await?;
    configs::register_synapse_users(layout, ports).await?;
    timings.push(("synapse".to_string(), t.elapsed()));

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
    let nginx_pid = configs::tls_front(layout, ports)?;
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

    // The build, boot and sandbox phases use the demo guest image (built
    // once, then cached); its paths go into the target with the rest.
    let t = Instant::now();
    let guest_dir = state.join("guest");
    let assets = layout.assets.clone();
    let guest = tokio::task::spawn_blocking(move || guest::prepare(&assets, &guest_dir))
        .await
        .map_err(|e| UserError::new(format!("preparing the guest image stopped: {e}")))??;
    timings.push(("guest image".to_string(), t.elapsed()));

    let target = state.join("target.toml");
    write_private(&target, &configs::target_toml(layout, ports, &guest))?;
    timings.push(("total".to_string(), total.elapsed()));
    Ok(StackInfo {
        target,
        image: guest.image,
        timings,
    })
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
        "state_file": state.join("standins/gitlab-state.json"),
        "idp_issuer": format!("http://127.0.0.1:{}", ports.idp),
        "external_url": format!("http://127.0.0.1:{}", ports.gitlab),
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
    std::fs::remove_dir_all(state)
        .map_err(|e| UserError::new(format!("cannot remove {}: {e}", state.display())))?;
    Ok(stopped)
}
