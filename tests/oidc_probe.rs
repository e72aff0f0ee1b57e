//! The `oidc` probe against a real OpenID provider: the demo's IdP
//! (npm oidc-provider with a sign-in form that checks passwords), started
//! alone on a free port. Each assertion passes against it, and fails for
//! the right reason when the profile is wrong (a wrong password, an issuer
//! that is not the provider's, an unregistered redirect URI, an unknown
//! client). The IdP is `common::idp`'s. Where node or demo/idp/node_modules
//! is missing the tests are reported ignored, with the reason, unless
//! SPINUP_SMOKE_REQUIRE_ALL=1, which makes them fail.

mod common;

use common::idp::{self, Idp, REDIRECT};
use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::Verdict;
use spinup_smoke::checks::oidc::{run, Spec};
use spinup_smoke::checks::testutil::RelayTunnel;

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
#[cfg_attr(
    missing = "idp",
    ignore = "needs the demo IdP (node, demo/idp/node_modules): ./scripts/setup.sh installs it"
)]
async fn every_assertion_passes_against_the_real_provider() {
    let idp = idp::start();
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
#[cfg_attr(
    missing = "idp",
    ignore = "needs the demo IdP (node, demo/idp/node_modules): ./scripts/setup.sh installs it"
)]
async fn wrong_profiles_fail_for_the_right_reason() {
    let idp = idp::start();

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

/// With `via = "host"` discovery, every link of the discovery document and
/// the whole sign-in go through the tunnel's SOCKS proxy; a refusing
/// tunnel fails with its reason.
#[tokio::test]
#[cfg_attr(
    missing = "idp",
    ignore = "needs the demo IdP (node, demo/idp/node_modules): ./scripts/setup.sh installs it"
)]
async fn the_login_flow_runs_through_the_hosts_tunnel() {
    let idp = idp::start();
    let tunnel = std::sync::Arc::new(RelayTunnel::new());
    let mut ctx = ProbeContext::for_tests(20);
    ctx.tunnel = Some(tunnel.clone());
    let login = flow(&idp, "login", &idp.password, "via = \"host\"");
    let v = run(&login, &ctx).await;
    assert!(v.pass, "{v:?}");
    assert!(
        v.evidence
            .starts_with("via ssh relay@test-host:22 (forwarded)"),
        "{v:?}"
    );
    assert_no_secret(&v, &idp);
    // Every request of the flow shares the client's kept-alive
    // connections, all made through the proxy.
    assert!(tunnel.connections() >= 1, "{}", tunnel.connections());
    let before = tunnel.connections();
    let v = run(
        &flow(&idp, "login", &idp.password, "via = \"direct\""),
        &ctx,
    )
    .await;
    assert!(v.pass && !v.evidence.contains("forwarded"), "{v:?}");
    assert_eq!(tunnel.connections(), before);
    tunnel.refuse();
    let v = run(&login, &ctx).await;
    assert!(
        !v.pass
            && v.found
                .contains("no SOCKS proxy through ssh relay@test-host:22"),
        "{v:?}"
    );
}
