//! The `oidc` probe against a real OpenID provider: the demo's IdP
//! (npm oidc-provider with a sign-in form that checks passwords), started
//! alone on a free port. Each assertion passes against it, and fails for
//! the right reason when the profile is wrong (a wrong password, an issuer
//! that is not the provider's, an unregistered redirect URI, an unknown
//! client). Without node and demo/idp/node_modules the test prints why and
//! returns, unless SPINUP_SMOKE_REQUIRE_DEMO=1 (set by scripts/test.sh).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::Verdict;
use spinup_smoke::checks::oidc::{run, Spec};

const REDIRECT: &str = "http://127.0.0.1/spinup-smoke/callback";

struct Idp {
    child: Child,
    issuer: String,
    password: String,
    client_secret: String,
    _dir: tempfile::TempDir,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start_idp() -> Option<Idp> {
    let idp_dir = repo().join("demo/idp");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !node_ok || !idp_dir.join("node_modules/oidc-provider").exists() {
        if std::env::var("SPINUP_SMOKE_REQUIRE_DEMO").as_deref() == Ok("1") {
            panic!(
                "the demo IdP is required (SPINUP_SMOKE_REQUIRE_DEMO=1): run ./scripts/setup.sh"
            );
        }
        eprintln!("skipping: node or demo/idp/node_modules is missing (./scripts/setup.sh)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let password = "correct horse battery staple";
    let client_secret = "client-secret-for-tests";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let config = serde_json::json!({
        "issuer": issuer,
        "port": port,
        "jwks_path": dir.path().join("jwks.json"),
        "cookie_key_file": write("cookie.key", "cookie-key-for-tests"),
        "clients": [{
            "client_id": "spinup-smoke",
            "client_secret_file": write("client_secret", client_secret),
            "redirect_uris": [REDIRECT],
            "pkce_required": true,
        }],
        "users": [{ "username": "alice", "password_file": write("alice", password) }],
    });
    let config_path = write("config.json", &config.to_string());
    let child = Command::new("node")
        .arg(idp_dir.join("server.mjs"))
        .arg(&config_path)
        .current_dir(&idp_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let idp = Idp {
        child,
        issuer,
        password: password.into(),
        client_secret: client_secret.into(),
        _dir: dir,
    };
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "the IdP did not listen within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(idp)
}

fn spec(body: &str) -> Spec {
    toml::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn flow(idp: &Idp, assertion: &str, password: &str, extra: &str) -> Spec {
    spec(&format!(
        "issuer = \"{}\"\nassert = \"{assertion}\"\nclient_id = \"spinup-smoke\"\nclient_secret = \"{}\"\nredirect_uri = \"{REDIRECT}\"\nusername = \"alice\"\npassword = \"{password}\"\n{extra}",
        idp.issuer, idp.client_secret
    ))
}

async fn check(spec: &Spec) -> Verdict {
    run(spec, &ProbeContext::for_tests(20)).await
}

fn assert_no_secret(v: &Verdict, idp: &Idp) {
    let all = format!("{} {} {}", v.expected, v.found, v.evidence);
    assert!(!all.contains(&idp.password), "password leaked: {all}");
    assert!(
        !all.contains(&idp.client_secret),
        "client secret leaked: {all}"
    );
    assert!(
        !all.contains("code="),
        "an authorization code leaked: {all}"
    );
}

#[tokio::test]
async fn every_assertion_passes_against_the_real_provider() {
    let Some(idp) = start_idp() else { return };
    let v = check(&spec(&format!(
        "issuer = \"{}\"\nassert = \"discovery\"",
        idp.issuer
    )))
    .await;
    assert!(v.pass, "{v:?}");
    assert!(v.found.contains("PKCE S256 offered"), "{v:?}");

    let v = check(&flow(
        &idp,
        "login",
        &idp.password,
        "scopes = [\"profile\"]",
    ))
    .await;
    assert!(v.pass, "{v:?}");
    assert!(
        v.found.contains("sub alice") && v.found.contains("RS256"),
        "{v:?}"
    );
    assert!(
        v.evidence.contains("/interaction/") && v.evidence.contains("/token"),
        "{v:?}"
    );
    assert_no_secret(&v, &idp);

    let v = check(&flow(&idp, "wrong_password_rejected", &idp.password, "")).await;
    assert!(v.pass && v.found.contains("status 401"), "{v:?}");
    assert_no_secret(&v, &idp);

    let v = check(&spec(&format!(
        "issuer = \"{}\"\nassert = \"foreign_redirect_rejected\"\nclient_id = \"spinup-smoke\"\nredirect_uri = \"{REDIRECT}\"",
        idp.issuer
    )))
    .await;
    assert!(v.pass && v.found.contains("status 400"), "{v:?}");

    let v = check(&flow(&idp, "tampered_token_rejected", &idp.password, "")).await;
    assert!(v.pass, "{v:?}");
    assert!(v.found.contains("refused (401)"), "{v:?}");
    assert_no_secret(&v, &idp);
}

#[tokio::test]
async fn wrong_profiles_fail_for_the_right_reason() {
    let Some(idp) = start_idp() else { return };

    // The test user's password is wrong: the sign-in is refused.
    let v = check(&flow(&idp, "login", "not-alices-password", "")).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found
            .contains("refused the test user's sign-in (status 401)"),
        "{v:?}"
    );

    // An issuer that is not the provider's own name fails discovery.
    let localhost = idp.issuer.replace("127.0.0.1", "localhost");
    let v = check(&spec(&format!(
        "issuer = \"{localhost}\"\nassert = \"discovery\""
    )))
    .await;
    assert!(!v.pass && v.found.contains("discovery failed"), "{v:?}");

    // A redirect URI the client did not register: the provider refuses the
    // request, and the sign-in never starts.
    let mut text = format!(
        "issuer = \"{}\"\nassert = \"login\"\nclient_id = \"spinup-smoke\"\nredirect_uri = \"http://127.0.0.1/other\"\nusername = \"alice\"\npassword = \"{}\"",
        idp.issuer, idp.password
    );
    let v = check(&spec(&text)).await;
    assert!(!v.pass && v.found.contains("answered 400"), "{v:?}");

    // An unknown client: refused before any sign-in form.
    text = text.replace("client_id = \"spinup-smoke\"", "client_id = \"nobody\"");
    let v = check(&spec(&text)).await;
    assert!(!v.pass && v.found.contains("answered 400"), "{v:?}");

    // A wrong client secret: the sign-in works, the code exchange fails.
    let v = check(&spec(&format!(
        "issuer = \"{}\"\nassert = \"login\"\nclient_id = \"spinup-smoke\"\nclient_secret = \"wrong\"\nredirect_uri = \"{REDIRECT}\"\nusername = \"alice\"\npassword = \"{}\"",
        idp.issuer, idp.password
    )))
    .await;
    assert!(!v.pass && v.found.contains("code exchange failed"), "{v:?}");

    // Nothing listening: discovery fails at once.
    let v = check(&spec(
        "issuer = \"http://127.0.0.1:9\"\nassert = \"discovery\"",
    ))
    .await;
    assert!(!v.pass && v.found.contains("discovery failed"), "{v:?}");
}
