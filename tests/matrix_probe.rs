//! The `matrix` probe against a real Synapse (`common::synapse`: started
//! once per test binary on SQLite, registration off, client listener only,
//! an OIDC provider configured) and against small local HTTP servers that
//! misbehave the way a wrongly configured homeserver does.
//!
//! Where Synapse is not installed its tests are reported ignored, with the
//! reason, unless SPINUP_SMOKE_REQUIRE_ALL=1, which makes them fail.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::free_port;
use common::synapse::synapse;
use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::Verdict;
use spinup_smoke::checks::matrix::{run, Spec};
use spinup_smoke::checks::testutil;

fn spec(base_url: &str, body: &str) -> Spec {
    let text = format!("base_url = \"{base_url}\"\n{body}");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{body}: {e}"))
}

async fn check(base_url: &str, body: &str) -> Verdict {
    run(&spec(base_url, body), &ProbeContext::for_tests(20)).await
}

fn assert_pass(v: &Verdict) {
    assert!(v.pass, "expected a pass: {v:?}");
}

fn assert_fail_with(v: &Verdict, text: &str) {
    assert!(!v.pass, "expected a failure: {v:?}");
    assert!(v.found.contains(text), "expected `{text}` in found: {v:?}");
}

#[tokio::test]
#[cfg_attr(
    missing = "synapse",
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv): ./scripts/setup.sh installs it"
)]
async fn synapse_versions_and_server_version() {
    let s = synapse();
    let v = check(
        &s.url,
        "assert = \"versions\"\nexpect_versions = [\"v1.1\", \"v1.11\"]",
    )
    .await;
    assert_pass(&v);
    assert!(v.evidence.contains("server version 1."), "{v:?}");
    let v = check(
        &s.url,
        "assert = \"versions\"\nexpect_versions = [\"v1.1\", \"v9.9\"]",
    )
    .await;
    assert_fail_with(&v, "missing: v9.9");
    assert_pass(
        &check(
            &s.url,
            "assert = \"server_version\"\nmin_version = \"1.90\"",
        )
        .await,
    );
    let v = check(
        &s.url,
        "assert = \"server_version\"\nmin_version = \"99.0\"",
    )
    .await;
    assert_fail_with(&v, "_synapse/admin/v1/server_version");
}

#[tokio::test]
#[cfg_attr(
    missing = "synapse",
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv): ./scripts/setup.sh installs it"
)]
async fn synapse_registration_closed_and_federation_not_served() {
    let s = synapse();
    let v = check(&s.url, "assert = \"registration_closed\"").await;
    assert_pass(&v);
    assert!(v.found.contains("M_FORBIDDEN"), "{v:?}");
    let v = check(&s.url, "assert = \"federation_disabled\"").await;
    assert_pass(&v);
    assert!(v.found.contains("404"), "{v:?}");
}

#[tokio::test]
#[cfg_attr(
    missing = "synapse",
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv): ./scripts/setup.sh installs it"
)]
async fn synapse_login_whoami_and_a_wrong_password() {
    let s = synapse();
    let body = format!(
        "assert = \"login_whoami\"\nuser = \"@operator:rave.local\"\npassword = \"{}\"",
        s.operator_password
    );
    let v = check(&s.url, &body).await;
    assert_pass(&v);
    assert!(
        v.found.contains("whoami says @operator:rave.local"),
        "{v:?}"
    );
    let all = format!("{} {} {}", v.expected, v.found, v.evidence);
    assert!(!all.contains(&s.operator_password), "password leaked");
    assert!(!all.contains("syt_"), "access token leaked: {all}");
    let v = check(
        &s.url,
        "assert = \"login_whoami\"\nuser = \"operator\"\npassword = \"wrong\"",
    )
    .await;
    assert_fail_with(&v, "login refused: status 403 M_FORBIDDEN");
}

/// A homeserver reachable only "from the host": the login and whoami go
/// through the tunnel's SOCKS proxy with `via = "host"`, not directly; a
/// refusing tunnel fails with its reason.
#[tokio::test]
#[cfg_attr(
    missing = "synapse",
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv): ./scripts/setup.sh installs it"
)]
async fn synapse_login_whoami_via_the_hosts_tunnel() {
    let s = synapse();
    let port = s.url.rsplit_once(':').unwrap().1.to_string();
    let tunnel =
        Arc::new(testutil::RelayTunnel::new().map_name("matrix.host-only.invalid", "127.0.0.1"));
    let mut ctx = ProbeContext::for_tests(20);
    ctx.tunnel = Some(tunnel.clone());
    let url = format!("http://matrix.host-only.invalid:{port}");
    let body = format!(
        "assert = \"login_whoami\"\nuser = \"@operator:rave.local\"\npassword = \"{}\"\nvia = \"host\"",
        s.operator_password
    );
    let v = run(&spec(&url, &body), &ctx).await;
    assert_pass(&v);
    assert!(
        v.evidence
            .starts_with("via ssh relay@test-host:22 (forwarded)"),
        "{v:?}"
    );
    assert!(tunnel.connections() >= 1);
    let v = run(&spec(&url, &body.replace("\"host\"", "\"direct\"")), &ctx).await;
    assert!(!v.pass && v.found.contains("dns error"), "{v:?}");
    tunnel.refuse();
    let v = run(&spec(&url, &body), &ctx).await;
    assert_fail_with(&v, "no SOCKS proxy through ssh relay@test-host:22");
}

#[tokio::test]
#[cfg_attr(
    missing = "synapse",
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv): ./scripts/setup.sh installs it"
)]
async fn synapse_media_roundtrip() {
    let s = synapse();
    let body = format!(
        "assert = \"media_roundtrip\"\nuser = \"operator\"\npassword = \"{}\"\nmedia_bytes = 100000",
        s.operator_password
    );
    let v = check(&s.url, &body).await;
    assert_pass(&v);
    assert!(
        v.found.contains("downloaded 100000 bytes, sha256 matches"),
        "{v:?}"
    );
    assert!(
        v.evidence
            .contains("/_matrix/client/v1/media/download/rave.local/"),
        "{v:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    missing = "synapse",
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv): ./scripts/setup.sh installs it"
)]
async fn synapse_sso_advertised() {
    let s = synapse();
    let v = check(
        &s.url,
        "assert = \"sso_advertised\"\nidentity_provider = \"oidc-rave\"",
    )
    .await;
    assert_pass(&v);
    assert!(v.found.contains("oidc-rave (RAVE)"), "{v:?}");
    let v = check(
        &s.url,
        "assert = \"sso_advertised\"\nidentity_provider = \"oidc-gitlab\"",
    )
    .await;
    assert_fail_with(&v, "m.login.sso with oidc-rave");
}

// ------------------------------------------------- misbehaving homeservers

/// One request as the fake homeserver saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

type Handler = Arc<dyn Fn(&Request) -> (u16, Vec<u8>) + Send + Sync>;

/// A tiny HTTP/1.1 server (one request per connection) answering with
/// `handler`. Returns its base URL; it lives until the runtime ends.
async fn fake_homeserver(handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_one(stream, handler.clone()));
        }
    });
    url
}

/// The same over TLS with a certificate for `localhost` signed by a fresh
/// CA. Returns the base URL and the CA's PEM.
async fn fake_homeserver_tls(handler: Handler) -> (String, String) {
    let ca = testutil::ca();
    let (cert, key) = testutil::leaf(&ca, &["localhost"], 30);
    let acceptor = testutil::tls_acceptor(cert, key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_one(tls, handler).await;
                }
            });
        }
    });
    (url, ca.pem)
}

async fn serve_one<S>(mut stream: S, handler: Handler)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    let (status, reply) = handler(&request);
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
}

fn json_reply(status: u16, value: serde_json::Value) -> (u16, Vec<u8>) {
    (status, value.to_string().into_bytes())
}

/// A homeserver with open registration, federation served, no SSO, and a
/// media store that corrupts what it stores. Logins work for `operator`
/// with password `pw`; whoami answers `whoami_user`.
fn broken_homeserver(whoami_user: &'static str) -> Handler {
    let stored: Arc<std::sync::Mutex<Vec<u8>>> = Arc::default();
    Arc::new(move |r: &Request| {
        let path = r.path.split('?').next().unwrap_or("");
        match (r.method.as_str(), path) {
            ("POST", "/_matrix/client/v3/register") => json_reply(
                401,
                serde_json::json!({"session": "abc", "flows": [{"stages": ["m.login.dummy"]}], "params": {}}),
            ),
            ("GET", "/_matrix/federation/v1/version") => json_reply(
                200,
                serde_json::json!({"server": {"name": "Synapse", "version": "1.98.0"}}),
            ),
            ("GET", "/_matrix/key/v2/server") => {
                json_reply(200, serde_json::json!({"server_name": "rave.local"}))
            }
            ("GET", "/_matrix/client/v3/login") => json_reply(
                200,
                serde_json::json!({"flows": [{"type": "m.login.password"}]}),
            ),
            ("POST", "/_matrix/client/v3/login") => {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                if body["password"] == "pw" {
                    json_reply(
                        200,
                        serde_json::json!({"user_id": "@operator:rave.local", "access_token": "syt_fake_token", "device_id": "D"}),
                    )
                } else {
                    json_reply(
                        403,
                        serde_json::json!({"errcode": "M_FORBIDDEN", "error": "Invalid username or password"}),
                    )
                }
            }
            (_, p)
                if r.headers.get("authorization").map(String::as_str)
                    != Some("Bearer syt_fake_token")
                    && p != "/_matrix/client/versions" =>
            {
                json_reply(401, serde_json::json!({"errcode": "M_MISSING_TOKEN"}))
            }
            ("GET", "/_matrix/client/v3/account/whoami") => {
                json_reply(200, serde_json::json!({"user_id": whoami_user}))
            }
            ("POST", "/_matrix/client/v3/logout") => json_reply(200, serde_json::json!({})),
            ("POST", "/_matrix/media/v3/upload") => {
                let mut bytes = r.body.clone();
                if let Some(b) = bytes.first_mut() {
                    *b ^= 0xff;
                }
                *stored.lock().unwrap() = bytes;
                json_reply(
                    200,
                    serde_json::json!({"content_uri": "mxc://rave.local/abc"}),
                )
            }
            ("GET", "/_matrix/client/v1/media/download/rave.local/abc") => {
                json_reply(404, serde_json::json!({"errcode": "M_UNRECOGNIZED"}))
            }
            ("GET", "/_matrix/media/v3/download/rave.local/abc") => {
                (200, stored.lock().unwrap().clone())
            }
            _ => json_reply(404, serde_json::json!({"errcode": "M_UNRECOGNIZED"})),
        }
    })
}

#[tokio::test]
async fn open_registration_fails_registration_closed() {
    let url = fake_homeserver(broken_homeserver("@operator:rave.local")).await;
    let v = check(&url, "assert = \"registration_closed\"").await;
    assert_fail_with(
        &v,
        "registration is open: the server offers the flows m.login.dummy",
    );
}

#[tokio::test]
async fn served_federation_fails_federation_disabled() {
    let url = fake_homeserver(broken_homeserver("@operator:rave.local")).await;
    let v = check(&url, "assert = \"federation_disabled\"").await;
    assert_fail_with(&v, "/_matrix/federation/v1/version is served");
    assert!(
        v.found.contains("/_matrix/key/v2/server is served"),
        "{v:?}"
    );
}

#[tokio::test]
async fn corrupted_media_fails_the_roundtrip() {
    let url = fake_homeserver(broken_homeserver("@operator:rave.local")).await;
    let v = check(
        &url,
        "assert = \"media_roundtrip\"\nuser = \"operator\"\npassword = \"pw\"\nmedia_bytes = 1000",
    )
    .await;
    assert_fail_with(&v, "sha256 differs");
    // It fell back to the legacy download endpoint after a 404 M_UNRECOGNIZED.
    assert!(
        v.evidence
            .contains("GET /_matrix/media/v3/download/rave.local/abc -> 200"),
        "{v:?}"
    );
    assert!(
        !v.evidence.contains("syt_fake_token"),
        "token leaked: {v:?}"
    );
}

#[tokio::test]
async fn whoami_naming_another_user_fails_login_whoami() {
    let url = fake_homeserver(broken_homeserver("@admin:rave.local")).await;
    let v = check(
        &url,
        "assert = \"login_whoami\"\nuser = \"operator\"\npassword = \"pw\"",
    )
    .await;
    assert_fail_with(&v, "whoami says @admin:rave.local");
    assert!(
        !v.evidence.contains("syt_fake_token"),
        "token leaked: {v:?}"
    );
}

#[tokio::test]
async fn password_only_login_fails_sso_advertised() {
    let url = fake_homeserver(broken_homeserver("@operator:rave.local")).await;
    let v = check(&url, "assert = \"sso_advertised\"").await;
    assert_fail_with(&v, "no m.login.sso flow; flows: m.login.password");
}

#[tokio::test]
async fn https_homeserver_is_trusted_through_ca_file_only() {
    let handler: Handler = Arc::new(|_r: &Request| {
        json_reply(200, serde_json::json!({"versions": ["v1.1", "v1.11"]}))
    });
    let (url, ca_pem) = fake_homeserver_tls(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let body = "assert = \"versions\"\nexpect_versions = [\"v1.11\"]";
    let with_ca = format!("{body}\nca_file = \"{}\"", ca_file.display());
    assert_pass(&check(&url, &with_ca).await);
    // Without the CA the certificate is not trusted.
    let v = check(&url, body).await;
    assert_fail_with(&v, "no answer");
    assert!(v.found.to_lowercase().contains("certificate"), "{v:?}");
    // A missing or broken ca_file says which file and what to do.
    let missing = format!(
        "{body}\nca_file = \"{}\"",
        dir.path().join("nope.pem").display()
    );
    assert_fail_with(&check(&url, &missing).await, "cannot read ca_file");
}

#[tokio::test]
async fn a_stopped_homeserver_fails_every_assertion_with_its_error() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let v = check(&url, "assert = \"versions\"\nexpect_versions = [\"v1.1\"]").await;
    assert_fail_with(&v, "no answer");
    let v = check(&url, "assert = \"federation_disabled\"").await;
    assert_fail_with(&v, "cannot tell");
    let v = check(&url, "assert = \"registration_closed\"").await;
    assert!(!v.pass, "{v:?}");
}

#[tokio::test]
async fn a_homeserver_that_never_answers_fails_at_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let v = run(
        &spec(&url, "assert = \"versions\"\nexpect_versions = [\"v1.1\"]"),
        &ProbeContext::for_tests(1),
    )
    .await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("deadline") || v.found.contains("timed out"),
        "{v:?}"
    );
    drop(listener);
}

// ------------------------------------------------------ the real profile

#[tokio::test]
#[cfg_attr(
    missing = "synapse",
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv): ./scripts/setup.sh installs it"
)]
async fn the_matrix_profile_passes_against_a_well_configured_synapse() {
    use spinup_smoke::check::Outcome;
    use spinup_smoke::run::{self, RunOptions};
    let s = synapse();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("synapse_operator_password");
    std::fs::write(&password_file, &s.operator_password).unwrap();
    let target_path = dir.path().join("target.toml");
    std::fs::write(
        &target_path,
        format!(
            "name = \"synapse-test\"\n[vars]\nsynapse.url = \"{}\"\nsynapse.server_name = \"rave.local\"\nsynapse.operator_user = \"operator\"\n[secrets]\nsynapse_operator_password = {{ file = \"{}\" }}\n",
            s.url,
            password_file.display()
        ),
    )
    .unwrap();
    let profile = common::repo().join("health-checks/matrix.toml");
    let target = spinup_smoke::profile::target::load(&target_path).unwrap();
    let profiles = spinup_smoke::profile::load(&[profile], &target, Default::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let plan = spinup_smoke::plan::Plan::build(profiles.checks, &[]).unwrap();
    let secrets = target.secret_values();
    let options = RunOptions {
        jobs: 4,
        global_timeout: Duration::from_secs(120),
        artifacts_dir: std::env::temp_dir(),
        hosts: Arc::new(spinup_smoke::host::Hosts::local()),
        redact: Arc::new(move |text: &str| {
            secrets.iter().fold(text.to_string(), |acc, s| {
                acc.replace(s.as_str(), "[REDACTED]")
            })
        }),
        safe_mode: true,
        so_far: Default::default(),
    };
    let report = run::run(
        &plan,
        &options,
        Arc::new(run::NoEvents),
        std::future::pending(),
    )
    .await;
    assert_eq!(report.results.len(), 8, "{:#?}", report.results);
    for result in &report.results {
        assert_eq!(
            result.status,
            Outcome::Pass,
            "{}: expected {} found {}",
            result.id,
            result.expected,
            result.found
        );
    }

    // One password login for the operator: the media round trip reused the
    // login check's session (the same device), and the run logged it out.
    let evidence = |id: &str| {
        report
            .results
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.evidence.clone())
            .unwrap_or_default()
    };
    let device = |text: &str| -> String {
        let at = text
            .find("\"device_id\":\"")
            .expect("a device id in the login's answer")
            + 13;
        text[at..].split('"').next().unwrap().to_string()
    };
    let login = evidence("synapse.operator_login");
    let media = evidence("synapse.media_roundtrip");
    assert!(login.contains("logged in here"), "{login}");
    assert!(media.contains("by an earlier check and reused"), "{media}");
    let shared_device = device(&login);
    assert_eq!(device(&media), shared_device, "{media}");
    assert!(!login.contains("access_token\":\"syt_"), "{login}");

    let client = reqwest::Client::new();
    let token = common::synapse::password_login(
        &client,
        &s.url,
        "operator",
        &s.operator_password,
        "device census",
    )
    .await;
    let gone = client
        .get(format!(
            "{}/_matrix/client/v3/devices/{shared_device}",
            s.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        gone.as_u16(),
        404,
        "the shared session's device {shared_device} outlived the run"
    );
    let _ = client
        .post(format!("{}/_matrix/client/v3/logout", s.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await;
}
