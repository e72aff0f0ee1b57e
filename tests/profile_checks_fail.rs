//! The service profiles' own checks fail for the right reason: each case
//! loads a profile from `health-checks/` with the real loader, takes one
//! check as the profile declares it and runs it once against a service that
//! answers wrong (a local server with a canned answer) or a host whose
//! commands print a broken state (scripted through `FakeExecutor`, as the
//! target's executor would report it). Fast: no real service is needed.
//!
//! `demo/tests/failing_cases.toml` names these cases for the check ids they
//! cover.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spinup_smoke::check::{Check, ProbeContext, Verdict};
use spinup_smoke::checks::testutil::serve;
use spinup_smoke::os::FakeExecutor;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A target whose every service is at `addr` (URLs `http://{addr}`), with
/// the secrets the profiles name in files under `dir`.
fn write_target(dir: &Path, addr: &str) -> PathBuf {
    let ca_file = dir.join("ca.pem");
    if !ca_file.exists() {
        std::fs::write(&ca_file, spinup_smoke::checks::testutil::ca().pem).unwrap();
    }
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut text = format!(
        "name = \"wrong-answers\"\n[vars]\ngitlab.url = \"http://{addr}\"\ngitlab.sign_in_offers = \"/users/auth/openid_connect\"\ngrafana.url = \"http://{addr}\"\ngrafana.oauth_provider = \"generic_oauth\"\nsynapse.url = \"http://{addr}\"\nsynapse.server_name = \"rave.local\"\nsynapse.operator_user = \"operator\"\nprometheus.url = \"http://{addr}\"\nidp.issuer = \"https://idp.rave.local\"\npostgres.host = \"{host}\"\npostgres.port = \"{port}\"\ntls_front.address = \"{addr}\"\ntls_front.host = \"rave.local\"\ntls_front.ca_file = \"{}\"\ngitlab.git_url = \"http://{addr}\"\nagent.user = \"@rave-agent:rave.local\"\nagent.room = \"#rave-control:rave.local\"\nagent.gitlab_namespace = \"rave\"\n[secrets]\n",
        ca_file.display()
    );
    for name in ["gitlab_token", "synapse_operator_password"] {
        let file = dir.join(name);
        std::fs::write(&file, "not-a-real-secret").unwrap();
        text.push_str(&format!("{name} = {{ file = \"{}\" }}\n", file.display()));
    }
    let path = dir.join("target.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The check `id` of `profile`, loaded against the target at `target`.
fn load_check(profile: &str, id: &str, target: &Path) -> Check {
    let target = spinup_smoke::profile::target::load(target).unwrap_or_else(|e| panic!("{e:?}"));
    let profiles = spinup_smoke::profile::load(
        &[repo().join("health-checks").join(profile)],
        &target,
        Default::default(),
    )
    .unwrap_or_else(|e| panic!("{profile}: {e:?}"));
    profiles
        .checks
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{profile} has no check {id}"))
}

fn assert_fails_with(id: &str, v: &Verdict, reason: &str) {
    assert!(!v.pass, "{id} passed: {v:?}");
    assert!(
        v.found.contains(reason),
        "{id} failed, but not for the reason `{reason}`: {v:?}"
    );
}

/// (profile, check id, the service's raw HTTP answer, what `found` names).
type HttpCase = (&'static str, &'static str, String, &'static str);

fn answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn json(status: &str, body: &str) -> String {
    answer(status, "content-type: application/json\r\n", body)
}

fn http_cases() -> Vec<HttpCase> {
    vec![
        // GitLab: Workhorse cannot reach Puma.
        ("gitlab.toml", "gitlab.health", answer("502 Bad Gateway", "content-type: text/html\r\n", "<html>502 Whoops, GitLab is taking too much time to respond.</html>"), "status 502"),
        // Something else answers on GitLab's address.
        ("gitlab.toml", "gitlab.health", answer("200 OK", "content-type: text/plain\r\n", "It works!"), "body lacks \"GitLab OK\""),
        // GitLab's database is down (real GitLab's readiness shape).
        ("gitlab.toml", "gitlab.readiness", json("503 Service Unavailable", r#"{"status":"failed","db_check":[{"status":"failed","message":"unexpected Db check result: connection refused"}],"master_check":[{"status":"ok"}]}"#), "db_check"),
        ("gitlab.toml", "gitlab.liveness", json("503 Service Unavailable", r#"{"status":"failed"}"#), "status 503"),
        // A wrong external_url sends the sign-in page elsewhere.
        ("gitlab.toml", "gitlab.sign_in", answer("302 Found", "location: https://gitlab.example.com/users/sign_in\r\n", ""), "status 302"),
        // An expired or revoked token.
        ("gitlab.toml", "gitlab.api_version", json("401 Unauthorized", r#"{"message":"401 Unauthorized"}"#), "status 401"),
        // No runner registered: GitLab lists none.
        ("gitlab.toml", "gitlab.runner_online", json("200 OK", "[]"), "/0/id is absent"),
        // OmniAuth not configured: only the password form.
        ("gitlab.toml", "gitlab.oidc_provider", answer("200 OK", "content-type: text/html\r\n", "<form action=\"/users/sign_in\" method=\"post\"><input name=\"user[login]\"></form>"), "body lacks \"/users/auth/openid_connect\""),
        // Grafana cannot reach its database.
        ("grafana.toml", "grafana.health", json("503 Service Unavailable", r#"{"commit":"abc","database":"failing","version":"11.3.0"}"#), "/database = \"failing\""),
        // Generic OAuth pointed at another identity provider.
        ("grafana.toml", "grafana.oauth", answer("302 Found", "location: https://accounts.example.com/o/oauth2/auth?client_id=grafana\r\n", ""), "location: https://accounts.example.com"),
        // Generic OAuth off.
        ("grafana.toml", "grafana.oauth", json("404 Not Found", r#"{"message":"Not found"}"#), "status 404"),
        // Synapse up but its database pool broken.
        ("matrix.toml", "synapse.health", answer("503 Service Unavailable", "content-type: text/plain\r\n", ""), "status 503"),
        // The e2e flow: the project has no main branch (created without a
        // README, or not at all).
        ("../scenarios/hello_world.toml", "e2e.project-exists", json("404 Not Found", r#"{"message":"404 Branch Not Found"}"#), "status 404"),
        // The merge request was closed instead of left open.
        ("../scenarios/hello_world.toml", "e2e.merge-request-open", json("200 OK", r#"[{"source_branch":"hello-world","target_branch":"main","state":"closed"}]"#), "/0/state = \"closed\""),
        // The cleanup did not delete the project.
        ("../scenarios/hello_world.toml", "e2e.project-gone", json("200 OK", r#"{"id":7,"path":"hello-world-1"}"#), "status 200"),
        // Prometheus still replaying its WAL.
        ("prometheus.toml", "prometheus.ready", answer("503 Service Unavailable", "content-type: text/plain\r\n", "Service Unavailable"), "status 503"),
    ]
}

#[tokio::test]
async fn http_checks_fail_against_wrong_answers() {
    for (profile, id, response, reason) in http_cases() {
        let addr = serve(response, Duration::ZERO, None).await;
        let dir = tempfile::tempdir().unwrap();
        let target = write_target(dir.path(), &addr.to_string());
        let check = load_check(profile, id, &target);
        let v = check.probe.run(&ProbeContext::for_tests(10)).await;
        assert_fails_with(id, &v, reason);
    }
}

#[tokio::test]
async fn http_checks_fail_against_a_stopped_service() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let target = write_target(dir.path(), &format!("127.0.0.1:{port}"));
    let tcp = [
        ("networking.toml", "network.postgres_port"),
        ("networking.toml", "network.tls_front_port"),
        ("networking.toml", "network.tls_front_certificate"),
    ];
    let http = http_cases();
    let mut cases: Vec<(&str, &str)> = http.iter().map(|(p, id, _, _)| (*p, *id)).collect();
    cases.extend(tcp);
    for (profile, id) in cases {
        let check = load_check(profile, id, &target);
        let v = check.probe.run(&ProbeContext::for_tests(10)).await;
        assert!(!v.pass, "{id} passed: {v:?}");
        assert!(
            v.found.to_lowercase().contains("refused"),
            "{id}: the connection error: {v:?}"
        );
    }
}

#[tokio::test]
async fn the_tls_front_certificate_fails_when_it_expires_within_14_days() {
    let dir = tempfile::tempdir().unwrap();
    let ca = spinup_smoke::checks::testutil::ca();
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let leaf = spinup_smoke::checks::testutil::leaf(&ca, &["rave.local"], 5);
    let addr = serve(String::new(), Duration::ZERO, Some(leaf)).await;
    let target = write_target(dir.path(), &addr.to_string());
    let check = load_check("networking.toml", "network.tls_front_certificate", &target);
    let v = check.probe.run(&ProbeContext::for_tests(10)).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("expires in 4 days") || v.found.contains("expires in 5 days"),
        "{v:?}"
    );
    // Trusted and fresh, but issued for another name: the SAN check fails.
    let leaf = spinup_smoke::checks::testutil::leaf(&ca, &["other.local"], 90);
    let addr = serve(String::new(), Duration::ZERO, Some(leaf)).await;
    let target = write_target(dir.path(), &addr.to_string());
    let check = load_check("networking.toml", "network.tls_front_certificate", &target);
    let v = check.probe.run(&ProbeContext::for_tests(10)).await;
    assert!(!v.pass && v.found.contains("SAN lacks rave.local"), "{v:?}");
}

/// (profile, check id, program, its exit code and stdout, what `found` names).
type CommandCase = (
    &'static str,
    &'static str,
    &'static str,
    i32,
    &'static str,
    &'static str,
);

const COMMAND_CASES: &[CommandCase] = &[
    // An interface without a cable.
    ("networking.toml", "network.interfaces_up", "ip", 0,
     r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"operstate":"UNKNOWN"},{"ifindex":2,"ifname":"eth0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"operstate":"DOWN"}]"#,
     "NO-CARRIER"),
    // No default route.
    ("networking.toml", "network.default_route", "ip", 0, "[]", "stdout lacks"),
    // sshd's effective configuration allows passwords and root.
    ("security.toml", "security.sshd.effective_config", "sshd", 0,
     "port 22\npermitrootlogin yes\npasswordauthentication yes\nkbdinteractiveauthentication no\nkexalgorithms curve25519-sha256\nciphers chacha20-poly1305@openssh.com\nmacs hmac-sha2-512-etm@openssh.com\n",
     "passwordauthentication yes"),
    // The input chain accepts by default.
    ("security.toml", "security.firewall.input_chain", "nft", 0,
     r#"{"nftables":[{"metainfo":{"version":"1.0.6","json_schema_version":1}},{"table":{"family":"inet","name":"nixos-fw","handle":1}},{"chain":{"family":"inet","table":"nixos-fw","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"accept"}}]}"#,
     "policy accept"),
    // A listener outside the allow-list (0x1538 = 5432 on all addresses).
    ("security.toml", "security.ports.allow_list", "cat", 0,
     "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 53 1 0000000082f1fe6f 100 0 0 10 0\n   1: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 54 1 0000000082f1fe6f 100 0 0 10 0\n",
     "5432"),
];

#[tokio::test]
async fn command_checks_fail_when_the_host_reports_a_broken_state() {
    let dir = tempfile::tempdir().unwrap();
    let target = write_target(dir.path(), "127.0.0.1:9");
    for (profile, id, program, exit_code, stdout, reason) in COMMAND_CASES {
        let check = load_check(profile, id, &target);
        let fake = Arc::new(FakeExecutor::new());
        fake.answer(program, *exit_code, stdout, "");
        let mut ctx = ProbeContext::for_tests(10);
        ctx.executor = fake.clone();
        let v = check.probe.run(&ctx).await;
        assert_fails_with(id, &v, reason);
        assert!(
            fake.calls().iter().any(|c| c.program == *program),
            "{id} ran {program}"
        );
    }
}
