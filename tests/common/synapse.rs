//! A Synapse homeserver, one per test binary, stopped and removed when the
//! binary exits: SQLite, registration off, the client listener only, an
//! OIDC provider `rave` configured (never contacted), and a user
//! `@operator:rave.local` with a random password.
//!
//! Synapse runs from the Python that `detect::synapse_python` finds
//! (SYNAPSE_PYTHON, else the checkout's .venv, as ./scripts/setup.sh makes).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::detect::{self, Server};
use super::ServerProcess;

pub struct Synapse {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub operator_password: String,
    /// The Python that runs it (synapse and psycopg2 importable).
    pub python: std::path::PathBuf,
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Synapse {
    /// Registers (non-admin) user `localpart` with `password`.
    pub fn register(&self, localpart: &str, password: &str) {
        register_user(
            &self.python,
            &self.dir,
            &self.config,
            &self.url,
            localpart,
            password,
        );
    }
}

/// The shared Synapse, started by the first test that asks.
pub fn synapse() -> &'static Synapse {
    static SYNAPSE: OnceLock<Result<Synapse, String>> = OnceLock::new();
    super::shared(&SYNAPSE, "Synapse", start)
}

fn start() -> Synapse {
    let python =
        detect::synapse_python(&super::repo()).unwrap_or_else(|| super::missing(Server::Synapse));
    let scratch = tempfile::Builder::new()
        .prefix("spinup-smoke-synapse-")
        .tempdir()
        .unwrap();
    let dir = scratch.path().to_path_buf();
    super::keep_until_exit(scratch);
    let port = super::free_port();
    let d = dir.display();
    let config = format!(
        r#"server_name: "rave.local"
public_baseurl: "http://127.0.0.1:{port}/"
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {d}/homeserver.db
log_config: {d}/log.yaml
media_store_path: {d}/media_store
signing_key_path: {d}/signing.key
registration_shared_secret: "{secret}"
enable_registration: false
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
macaroon_secret_key: "{macaroon}"
form_secret: "{form}"
rc_login:
  address: {{per_second: 100, burst_count: 1000}}
  account: {{per_second: 100, burst_count: 1000}}
  failed_attempts: {{per_second: 100, burst_count: 1000}}
rc_message: {{per_second: 100, burst_count: 1000}}
rc_invites:
  per_room: {{per_second: 100, burst_count: 1000}}
  per_user: {{per_second: 100, burst_count: 1000}}
rc_joins:
  local: {{per_second: 100, burst_count: 1000}}
oidc_providers:
  - idp_id: rave
    idp_name: "RAVE"
    issuer: "http://127.0.0.1:9/"
    client_id: "synapse"
    client_secret: "not-used"
    discover: false
    authorization_endpoint: "http://127.0.0.1:9/auth"
    token_endpoint: "http://127.0.0.1:9/token"
    userinfo_endpoint: "http://127.0.0.1:9/userinfo"
    jwks_uri: "http://127.0.0.1:9/jwks"
    user_profile_method: userinfo_endpoint
    scopes: ["openid", "profile"]
    user_mapping_provider:
      config:
        localpart_template: "{{{{ user.preferred_username }}}}"
"#,
        secret = super::random_hex(16),
        macaroon = super::random_hex(16),
        form = super::random_hex(16),
    );
    std::fs::write(dir.join("homeserver.yaml"), config).unwrap();
    std::fs::write(
        dir.join("log.yaml"),
        format!(
            "version: 1\nformatters:\n  precise:\n    format: '%(asctime)s %(name)s %(levelname)s %(message)s'\nhandlers:\n  file:\n    class: logging.FileHandler\n    filename: {d}/homeserver.log\n    formatter: precise\nroot:\n  level: WARNING\n  handlers: [file]\ndisable_existing_loggers: false\n"
        ),
    )
    .unwrap();
    let config_path = dir.join("homeserver.yaml");
    let status = Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(&config_path)
        .arg("--generate-keys")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "synapse --generate-keys failed");
    let log = dir.join("stderr.log");
    let mut process = ServerProcess::spawn(
        "Synapse",
        Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config_path)
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap()),
        Some(&log),
    );
    process.wait_ready(Duration::from_secs(90), Duration::from_millis(200), || {
        super::http_ok(port, "/health")
    });
    super::keep_until_exit(process);
    let url = format!("http://127.0.0.1:{port}");
    let operator_password = super::random_hex(16);
    register_user(
        &python,
        &dir,
        &config_path,
        &url,
        "operator",
        &operator_password,
    );
    Synapse {
        url,
        operator_password,
        python,
        dir,
        config: config_path,
    }
}

fn register_user(
    python: &Path,
    dir: &Path,
    config: &Path,
    url: &str,
    localpart: &str,
    password: &str,
) {
    let password_file = dir.join(format!("{localpart}_password"));
    std::fs::write(&password_file, password).unwrap();
    let output = Command::new(python)
        .args([
            "-m",
            "synapse._scripts.register_new_matrix_user",
            "-u",
            localpart,
            "--no-admin",
            "-c",
        ])
        .arg(config)
        .arg("--password-file")
        .arg(&password_file)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "registering {localpart} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A password login of `user` on the homeserver at `url`, outside any
/// check (for a test's own look at the server); its access token.
pub async fn password_login(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
    device_name: &str,
) -> String {
    let login: serde_json::Value = client
        .post(format!("{url}/_matrix/client/v3/login"))
        .json(&serde_json::json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": password,
            "initial_device_display_name": device_name,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login of {user} refused: {login}"))
        .to_string()
}
