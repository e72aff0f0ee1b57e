//! How each real component of the demo is configured and started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ca::DemoCa;
use super::guest::{Guest, GuestHost};
use super::process::{run_to_end, spawn, Launch};
use super::{python, secret, write_private, Layout, Ports};
use spinup_smoke::error::UserError;

const DATABASES: [&str; 3] = ["gitlab", "synapse", "grafana"];

fn postgres_bin() -> Result<PathBuf, UserError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|b| b.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().ok_or_else(|| {
        UserError::new(
            "PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb)",
        )
        .hint("run ./scripts/setup.sh (apt-get install postgresql)")
    })
}

fn chown_postgres(path: &Path) -> Result<(), UserError> {
    let status = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .map_err(|e| UserError::new(format!("chown: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(UserError::new(format!(
            "cannot give {} to the postgres user",
            path.display()
        ))
        .hint("the demo runs PostgreSQL as the postgres user: run it as root"))
    }
}

/// initdb + pg_ctl start as the postgres user, then roles and databases.
pub async fn postgres(layout: &Layout, ports: &Ports) -> Result<(), UserError> {
    let state = &layout.state;
    let bin = postgres_bin()?;
    let pg = state.join("postgres");
    std::fs::create_dir_all(&pg).map_err(|e| UserError::new(e.to_string()))?;
    // The postgres user must reach the state directory.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o755));
    let admin_password = secret(state, "postgres_admin_password")?;
    std::fs::write(pg.join("pwfile"), &admin_password)
        .map_err(|e| UserError::new(e.to_string()))?;
    let log = super::process::log_path(state, "postgresql");
    std::fs::write(&log, "").map_err(|e| UserError::new(e.to_string()))?;
    chown_postgres(&pg)?;
    chown_postgres(&log)?;
    let data = pg.join("data");
    let initdb = bin.join("initdb");
    let result = run_to_end(
        state,
        "postgresql-initdb",
        "runuser",
        &[
            "-u",
            "postgres",
            "--",
            &initdb.display().to_string(),
            "-D",
            &data.display().to_string(),
            "-U",
            "rave_admin",
            &format!("--pwfile={}", pg.join("pwfile").display()),
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        Duration::from_secs(120),
    );
    let _ = std::fs::remove_file(pg.join("pwfile"));
    result.map_err(|e| {
        e.hint("is the state directory reachable by the postgres user? (each parent needs o+x)")
    })?;
    let options = format!(
        "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
        ports.postgres,
        pg.display()
    );
    run_to_end(
        state,
        "postgresql",
        "runuser",
        &[
            "-u",
            "postgres",
            "--",
            &bin.join("pg_ctl").display().to_string(),
            "-D",
            &data.display().to_string(),
            "-l",
            &log.display().to_string(),
            "-o",
            &options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        Duration::from_secs(90),
    )?;
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(ports.postgres)
        .user("rave_admin")
        .password(&admin_password)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(10))
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| UserError::new(format!("cannot connect to the demo PostgreSQL: {e}")))?;
    tokio::spawn(connection);
    for db in DATABASES {
        let password = secret(state, &format!("{db}_db_password"))?;
        let quoted = password.replace('\'', "''");
        client
            .batch_execute(&format!("CREATE ROLE {db} LOGIN PASSWORD '{quoted}'"))
            .await
            .map_err(|e| UserError::new(format!("creating role {db}: {e}")))?;
        let collation = if db == "synapse" {
            " LC_COLLATE 'C' LC_CTYPE 'C'"
        } else {
            ""
        };
        client
            .batch_execute(&format!(
                "CREATE DATABASE {db} OWNER {db} ENCODING 'UTF8'{collation} TEMPLATE template0"
            ))
            .await
            .map_err(|e| UserError::new(format!("creating database {db}: {e}")))?;
    }
    Ok(())
}

/// Stops the demo PostgreSQL if its data directory has a running postmaster.
pub fn stop_postgres(state: &Path) -> bool {
    let data = state.join("postgres/data");
    let Ok(pidfile) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return false;
    };
    if let Ok(bin) = postgres_bin() {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    // If pg_ctl could not, stop the postmaster by its pid.
    if let Some(pid) = pidfile
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    {
        if super::process::alive(pid) {
            // SAFETY: signalling the postmaster recorded in this data directory.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
    true
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Writes homeserver.yaml, generates keys, starts Synapse.
pub fn synapse(layout: &Layout, ports: &Ports) -> Result<u32, UserError> {
    let state = &layout.state;
    let dir = state.join("synapse");
    let client_url = format!("http://127.0.0.1:{}", ports.synapse);
    let issuer = format!("http://127.0.0.1:{}", ports.idp);
    let log_config = "version: 1\nformatters:\n  plain:\n    format: '%(asctime)s %(levelname)s %(name)s: %(message)s'\nhandlers:\n  console:\n    class: logging.StreamHandler\n    formatter: plain\nroot:\n  level: WARNING\n  handlers: [console]\nloggers:\n  synapse.storage.SQL:\n    level: WARNING\ndisable_existing_loggers: false\n";
    std::fs::write(dir.join("log.yaml"), log_config).map_err(|e| UserError::new(e.to_string()))?;
    let config = format!(
        r#"server_name: "rave.local"
pid_file: {pid}
public_baseurl: "{client_url}/"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: true
    resources:
      - names: [client]
        compress: false
  - port: {metrics}
    bind_addresses: ["127.0.0.1"]
    type: metrics
enable_metrics: true
database:
  name: psycopg2
  args:
    user: synapse
    password: {db_password}
    database: synapse
    host: 127.0.0.1
    port: {pg}
    cp_min: 1
    cp_max: 5
log_config: {log_config}
media_store_path: {media}
signing_key_path: {signing}
registration_shared_secret_path: {shared}
enable_registration: false
federation_domain_whitelist: []
trusted_key_servers: []
suppress_key_server_warning: true
report_stats: false
macaroon_secret_key: {macaroon}
form_secret: {form}
max_upload_size: 10M
# The demo is validated (and benchmarked) many times in a row; production
# keeps Synapse's default login rate limits.
rc_login:
  address: {{per_second: 50, burst_count: 500}}
  account: {{per_second: 50, burst_count: 500}}
  failed_attempts: {{per_second: 50, burst_count: 500}}
# The agent phase sends commands and the agent answers them, run after run.
rc_message: {{per_second: 50, burst_count: 500}}
rc_invites:
  per_room: {{per_second: 50, burst_count: 500}}
  per_user: {{per_second: 50, burst_count: 500}}
rc_joins:
  local: {{per_second: 50, burst_count: 500}}
# The bcrypt cost of Synapse's own test configuration (production keeps
# the default 12): a password login costs ~1 ms instead of ~450 ms. Both the
# validator and the peers it is benchmarked against pay the same cost.
bcrypt_rounds: 4
oidc_providers:
  - idp_id: rave
    idp_name: "RAVE SSO"
    issuer: "{issuer}"
    client_id: synapse
    client_secret: {client_secret}
    scopes: [openid, profile]
    user_profile_method: userinfo_endpoint
    skip_verification: true
    user_mapping_provider:
      config:
        localpart_template: "{{{{ user.preferred_username }}}}"
        display_name_template: "{{{{ user.name }}}}"
sso:
  client_whitelist: ["{client_url}/"]
"#,
        pid = yaml_string(&dir.join("homeserver.pid").display().to_string()),
        port = ports.synapse,
        metrics = ports.synapse_metrics,
        db_password = yaml_string(&secret(state, "synapse_db_password")?),
        pg = ports.postgres,
        log_config = yaml_string(&dir.join("log.yaml").display().to_string()),
        media = yaml_string(&dir.join("media").display().to_string()),
        signing = yaml_string(&dir.join("signing.key").display().to_string()),
        shared = yaml_string(
            &state
                .join("secrets/synapse_registration_secret")
                .display()
                .to_string()
        ),
        macaroon = yaml_string(&super::random_secret()),
        form = yaml_string(&super::random_secret()),
        client_secret = yaml_string(&secret(state, "idp_client_secret_synapse")?),
    );
    let config_path = dir.join("homeserver.yaml");
    write_private(&config_path, &config)?;
    let python = python(layout);
    run_to_end(
        state,
        "synapse",
        &python.display().to_string(),
        &[
            "-m",
            "synapse.app.homeserver",
            "-c",
            &config_path.display().to_string(),
            "--generate-keys",
        ],
        Duration::from_secs(60),
    )
    .map_err(|e| e.hint("is Synapse installed in .venv? run ./scripts/setup.sh"))?;
    spawn(
        state,
        &Launch {
            name: "synapse",
            program: python,
            args: vec![
                "-m".into(),
                "synapse.app.homeserver".into(),
                "-c".into(),
                config_path.display().to_string(),
            ],
            env: vec![],
            cwd: Some(dir),
        },
    )
}

/// Creates `admin` and `operator` through the shared-secret registration API.
pub async fn register_synapse_users(layout: &Layout, ports: &Ports) -> Result<(), UserError> {
    use hmac::{Hmac, Mac};
    let state = &layout.state;
    let url = format!(
        "http://127.0.0.1:{}/_synapse/admin/v1/register",
        ports.synapse
    );
    let shared = secret(state, "synapse_registration_secret")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| UserError::new(e.to_string()))?;
    for (user, password_secret, admin) in [
        ("admin", "synapse_admin_password", true),
        ("operator", "synapse_operator_password", false),
        // The agent, and a user it must refuse (scenarios/agent.toml).
        ("rave-agent", "rave_agent_password", false),
        ("outsider", "synapse_outsider_password", false),
    ] {
        let password = secret(state, password_secret)?;
        let nonce: serde_json::Value = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| UserError::new(format!("synapse registration nonce: {e}")))?
            .json()
            .await
            .map_err(|e| UserError::new(format!("synapse registration nonce: {e}")))?;
        let nonce = nonce["nonce"].as_str().unwrap_or_default().to_string();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(shared.as_bytes())
            .map_err(|e| UserError::new(e.to_string()))?;
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(user.as_bytes());
        mac.update(b"\0");
        mac.update(password.as_bytes());
        mac.update(b"\0");
        mac.update(if admin {
            b"admin" as &[u8]
        } else {
            b"notadmin"
        });
        let body = serde_json::json!({
            "nonce": nonce, "username": user, "password": password, "admin": admin,
            "mac": hex::encode(mac.finalize().into_bytes()),
        });
        let response = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| UserError::new(format!("registering {user} on synapse: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(UserError::new(format!(
                "registering {user} on synapse: {status} {}",
                spinup_smoke::check::excerpt(&text, 300)
            )));
        }
    }
    Ok(())
}

pub fn prometheus(layout: &Layout, ports: &Ports) -> Result<u32, UserError> {
    let state = &layout.state;
    let dir = state.join("prometheus");
    let config = format!(
        "global:\n  scrape_interval: 2s\n  evaluation_interval: 15s\nscrape_configs:\n  - job_name: synapse\n    metrics_path: /_synapse/metrics\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        ports.synapse_metrics
    );
    std::fs::write(dir.join("prometheus.yml"), config)
        .map_err(|e| UserError::new(e.to_string()))?;
    let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            UserError::new("prometheus is not installed")
                .hint("run ./scripts/setup.sh (apt-get install prometheus)")
        })?;
    spawn(
        state,
        &Launch {
            name: "prometheus",
            program: binary,
            args: vec![
                format!("--config.file={}", dir.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{}", ports.prometheus),
            ],
            env: vec![],
            cwd: Some(dir),
        },
    )
}

/// A certificate for rave.local (and 127.0.0.1) from the demo CA, and nginx in
/// front of Synapse and the IdP (TLS) and of the GitLab stand-in for git
/// (plain HTTP on `ports.gitlab_git`).
pub fn tls_front(layout: &Layout, ports: &Ports, ca: &DemoCa) -> Result<u32, UserError> {
    let state = &layout.state;
    let tls = state.join("tls");
    let (chain, key) = ca.leaf()?;
    std::fs::write(tls.join("front.pem"), chain).map_err(|e| UserError::new(e.to_string()))?;
    write_private(&tls.join("front.key"), &key)?;
    let dir = state.join("nginx");
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777));
    let p = |x: &Path| x.display().to_string();
    let config = format!(
        r#"worker_processes 1;
pid {pid};
error_log {error_log} warn;
events {{ worker_connections 256; }}
http {{
  access_log {access_log};
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name rave.local;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    client_max_body_size 20m;
    location /_matrix {{ proxy_pass http://127.0.0.1:{synapse}; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Proto https; }}
    location /_synapse/client {{ proxy_pass http://127.0.0.1:{synapse}; proxy_set_header Host $host; proxy_set_header X-Forwarded-Proto https; }}
    location / {{ proxy_pass http://127.0.0.1:{idp}; proxy_set_header Host $host; proxy_set_header X-Forwarded-Proto https; }}
  }}
  # Git over HTTP to the GitLab stand-in (`gitlab.git_url`): bodies of any
  # size, streamed both ways.
  server {{
    listen 127.0.0.1:{git_port};
    server_name rave.local;
    client_max_body_size 0;
    location / {{
      proxy_pass http://127.0.0.1:{gitlab};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_connect_timeout 10s;
      proxy_send_timeout 600s;
      proxy_read_timeout 600s;
    }}
  }}
}}
"#,
        pid = p(&dir.join("nginx.pid")),
        error_log = p(&super::process::log_path(state, "nginx-error")),
        access_log = p(&super::process::log_path(state, "nginx-access")),
        tmp = p(&dir.join("tmp")),
        port = ports.tls_front,
        cert = p(&tls.join("front.pem")),
        key = p(&tls.join("front.key")),
        synapse = ports.synapse,
        idp = ports.idp,
        git_port = ports.gitlab_git,
        gitlab = ports.gitlab,
    );
    std::fs::write(dir.join("nginx.conf"), config).map_err(|e| UserError::new(e.to_string()))?;
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            UserError::new("nginx is not installed")
                .hint("run ./scripts/setup.sh (apt-get install nginx-light)")
        })?;
    spawn(
        state,
        &Launch {
            name: "nginx",
            program: binary,
            args: vec![
                "-p".into(),
                p(&dir),
                "-c".into(),
                p(&dir.join("nginx.conf")),
                "-g".into(),
                "daemon off;".into(),
            ],
            env: vec![],
            cwd: Some(dir),
        },
    )
}

/// The target file the profiles read (see docs/demo.md): the running stack
/// and the guest image, for every phase the demo runs. The TLS front
/// (`tls_front.*`) is the guest's nginx on 3002, P6's public port, as QEMU
/// forwards it; this machine's nginx (`proxy.url`) fronts Synapse and the IdP.
pub fn target_toml(layout: &Layout, ports: &Ports, guest: &Guest, host: &GuestHost) -> String {
    let state = &layout.state;
    let s = |p: PathBuf| serde_json::to_string(&p.display().to_string()).unwrap_or_default();
    let mut text = format!(
        r#"# Written by `spinup-smoke demo up`: the running demo stack.
name = "demo"
rave_version = "P6-demo"

[vars]
image.build_dir = {build_dir}
image.path = {image}
image.kernel = {kernel}
image.initrd = {initrd}
host = "127.0.0.1"
postgres.host = "127.0.0.1"
postgres.port = "{pg}"
postgres.admin_user = "rave_admin"
postgres.data_dir = {data}
postgres.databases = "gitlab,synapse,grafana"
synapse.url = "http://127.0.0.1:{syn}"
synapse.server_name = "rave.local"
synapse.metrics_url = "http://127.0.0.1:{metrics}/_synapse/metrics"
synapse.operator_user = "operator"
synapse.sso_idp = "oidc-rave"
idp.issuer = "http://127.0.0.1:{idp}"
idp.test_user = "alice"
idp.client_id = "spinup-smoke"
idp.redirect_uri = "http://127.0.0.1/spinup-smoke/callback"
prometheus.url = "http://127.0.0.1:{prom}"
tls_front.host = "rave.local"
tls_front.address = "127.0.0.1:{guest_tls}"
tls_front.url = "https://127.0.0.1:{guest_tls}"
tls_front.ca_file = {ca}
gitlab.url = "http://127.0.0.1:{gitlab}"
gitlab.git_url = "{git_url}"
gitlab.sign_in_offers = "/users/auth/openid_connect"
grafana.url = "http://127.0.0.1:{grafana}"
grafana.oauth_provider = "generic_oauth"
containers.socket = {podman}
containers.image = "{container_image}"
repo.root = {repo}
config.sops_files = {sops}
stack.pid_dir = {pid_dir}
guest.ssh_address = "127.0.0.1:{guest_ssh}"
proxy.url = "https://127.0.0.1:{tls}"
agent.user = "@rave-agent:rave.local"
agent.room = "{agent_room}"
agent.outsider_user = "outsider"
agent.gitlab_namespace = "rave"

[secrets]
"#,
        pg = ports.postgres,
        // Spelled here: `"#` would end the raw string.
        agent_room = "#rave-control:rave.local",
        data = s(state.join("postgres/data")),
        syn = ports.synapse,
        metrics = ports.synapse_metrics,
        idp = ports.idp,
        prom = ports.prometheus,
        tls = ports.tls_front,
        ca = s(state.join("tls/ca.pem")),
        gitlab = ports.gitlab,
        git_url = super::git_url(ports),
        grafana = ports.grafana,
        podman = s(super::containers::socket(state)),
        container_image = super::containers::IMAGE,
        build_dir = s(guest.dir.clone()),
        image = s(guest.image.clone()),
        kernel = s(guest.kernel.clone()),
        initrd = s(guest.initrd.clone()),
        repo = s(layout.assets.root().to_path_buf()),
        sops = s(layout.assets.join("nixos/secrets/*.sops.yaml")),
        pid_dir = s(state.join("run")),
        guest_ssh = host.ssh_port,
        guest_tls = host.tls_port,
    );
    for name in super::SECRETS {
        text.push_str(&format!(
            "{name} = {{ file = {} }}\n",
            s(state.join("secrets").join(name))
        ));
    }
    text.push_str(&format!(
        "guest_ssh_key = {{ file = {} }}\n",
        s(host.key.clone())
    ));
    text.push_str(&guest_host_table(host));
    text.push_str(
        r#"
[stand_ins]
gitlab = "demo stand-in (demo/standins/gitlab_grafana_standin.py answers GitLab's API shapes: readiness, runners, projects, merge requests, pipelines and jobs from the demo's PostgreSQL, repositories in real git served by git http-backend; jobs run by rave-runner, demo/standins/runner.py, the stand-in for gitlab-runner, in podman)"
grafana = "demo stand-in (demo/standins/gitlab_grafana_standin.py answers Grafana's API shapes; database health from the demo's PostgreSQL)"
"#,
    );
    // A failed check of a component carries the tail of its log.
    text.push_str("\n[logs]\n");
    for (service, log) in [
        ("postgres", "postgresql"),
        ("synapse", "synapse"),
        ("prometheus", "prometheus"),
        ("gitlab", "standins"),
        ("grafana", "standins"),
        ("network", "nginx-error"),
        ("containers", "podman"),
        ("idp", "idp"),
        ("agent", super::AGENT),
    ] {
        text.push_str(&format!(
            "{service} = {{ file = {} }}\n",
            s(super::process::log_path(state, log))
        ));
    }
    text
}

/// `[hosts.guest]`: the booted guest claims the security profile's checks
/// and the services' peak memory measured inside it (performance-host),
/// reached over ssh as its administrator with the key from the secret
/// store, the host key pinned. Its TLS front is reached directly, through
/// the port QEMU forwards and the guest's firewall, as a client outside
/// reaches a P6 host's 3002.
pub fn guest_host_table(host: &GuestHost) -> String {
    let s = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap_or_default();
    format!(
        r#"
[hosts.guest]
transport = "ssh"
address = "127.0.0.1"
port = {port}
user = "{user}"
identity = {{ secret = "guest_ssh_key" }}
known_hosts = {known_hosts}
sudo = true
via = "direct"
profiles = ["security", "performance-host"]
"#,
        port = host.ssh_port,
        user = super::guest::USER,
        known_hosts = s(&host.known_hosts),
    )
}
