//! The `prometheus` probe against real Prometheus servers
//! (`common::prometheus`): one scraping only itself, one also scraping a
//! port where nothing listens. Where Prometheus is not installed those
//! tests are reported ignored, with the reason, unless
//! SPINUP_SMOKE_REQUIRE_ALL=1, which makes them fail.

mod common;

use std::time::Duration;

use common::{free_port, prometheus};
use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::Verdict;
use spinup_smoke::checks::prometheus::{run, Spec};
use spinup_smoke::checks::testutil::RelayTunnel;

fn spec(url: &str, body: &str) -> Spec {
    toml::from_str(&format!("base_url = \"{url}\"\n{body}")).unwrap()
}

/// Probes until the verdict is `pass` (scrapes happen every second), at
/// most 30 times; returns the last verdict.
async fn probe_until(url: &str, body: &str, pass: bool) -> Verdict {
    let spec = spec(url, body);
    let mut verdict = run(&spec, &ProbeContext::for_tests(10)).await;
    for _ in 0..30 {
        if verdict.pass == pass {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        verdict = run(&spec, &ProbeContext::for_tests(10)).await;
    }
    verdict
}

#[tokio::test]
#[cfg_attr(
    missing = "prometheus",
    ignore = "needs Prometheus (PROMETHEUS_BIN or /usr/bin/prometheus): ./scripts/setup.sh installs it"
)]
async fn healthy_prometheus_passes_targets_up_and_queries() {
    let server = prometheus::start(&[]);
    let url = server.url.clone();
    let v = probe_until(
        &url,
        "assert = \"targets_up\"\njobs = [\"prometheus\"]",
        true,
    )
    .await;
    assert!(v.pass, "{v:?}");
    let v = probe_until(
        &url,
        "assert = \"query\"\nquery = \"up{job=\\\"prometheus\\\"}\"\nmin_value = 1",
        true,
    )
    .await;
    assert!(v.pass, "{v:?}");
    // The shape of the profile's Synapse query, on Prometheus' own metrics.
    let v = probe_until(
        &url,
        "assert = \"query\"\nquery = 'count({__name__=~\"prometheus_.+\"})'\nmin_value = 1",
        true,
    )
    .await;
    assert!(v.pass, "{v:?}");
    let v = run(
        &spec(
            &url,
            "assert = \"query\"\nquery = \"no_such_metric_anywhere\"",
        ),
        &ProbeContext::for_tests(10),
    )
    .await;
    assert!(!v.pass && v.found.contains("empty vector result"), "{v:?}");
    let v = run(
        &spec(&url, "assert = \"query\"\nquery = \"up{\""),
        &ProbeContext::for_tests(10),
    )
    .await;
    assert!(!v.pass && v.found.contains("status 400"), "{v:?}");
    let v = run(
        &spec(&url, "assert = \"targets_up\"\njobs = [\"synapse\"]"),
        &ProbeContext::for_tests(10),
    )
    .await;
    assert!(
        !v.pass && v.found.contains("no target for jobs synapse"),
        "{v:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    missing = "prometheus",
    ignore = "needs Prometheus (PROMETHEUS_BIN or /usr/bin/prometheus): ./scripts/setup.sh installs it"
)]
async fn a_dead_scrape_target_fails_targets_up_naming_it() {
    let dead = format!("127.0.0.1:{}", free_port());
    let server = prometheus::start(std::slice::from_ref(&dead));
    let url = server.url.clone();
    // The dead target is "unknown" until its first scrape, then "down".
    let spec = spec(&url, "assert = \"targets_up\"");
    let mut v = run(&spec, &ProbeContext::for_tests(10)).await;
    for _ in 0..30 {
        if v.found.contains("is down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        v = run(&spec, &ProbeContext::for_tests(10)).await;
    }
    assert!(!v.pass, "{v:?}");
    assert!(v.found.contains(&format!("extra {dead} is down")), "{v:?}");
    assert!(v.found.contains("connection refused"), "{v:?}");
}

#[tokio::test]
async fn a_stopped_prometheus_fails_with_the_connection_error() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let v = run(
        &spec(&url, "assert = \"targets_up\""),
        &ProbeContext::for_tests(5),
    )
    .await;
    assert!(!v.pass && v.found.contains("no answer"), "{v:?}");
}

/// A Prometheus reachable only "from the host" (its name resolves only
/// there) answers with `via = "host"` through the tunnel's SOCKS proxy,
/// not directly; a refusing tunnel fails with its reason.
#[tokio::test]
#[cfg_attr(
    missing = "prometheus",
    ignore = "needs Prometheus (PROMETHEUS_BIN or /usr/bin/prometheus): ./scripts/setup.sh installs it"
)]
async fn via_host_asks_prometheus_through_the_hosts_tunnel() {
    let server = prometheus::start(&[]);
    let port = server.url.rsplit_once(':').unwrap().1.to_string();
    let tunnel = std::sync::Arc::new(
        RelayTunnel::new().map_name("prometheus.host-only.invalid", "127.0.0.1"),
    );
    let mut ctx = ProbeContext::for_tests(10);
    ctx.tunnel = Some(tunnel.clone());
    ctx.via_host = true;
    let url = format!("http://prometheus.host-only.invalid:{port}");
    let table = spec(
        &url,
        "assert = \"query\"\nquery = 'count({__name__=~\"prometheus_.+\"})'\nmin_value = 1",
    );
    let mut v = run(&table, &ctx).await;
    for _ in 0..30 {
        if v.pass {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        ctx.deadline = std::time::Instant::now() + Duration::from_secs(10);
        v = run(&table, &ctx).await;
    }
    assert!(v.pass, "{v:?}");
    assert!(
        v.evidence
            .starts_with("via ssh relay@test-host:22 (forwarded)"),
        "{v:?}"
    );
    let through = tunnel.connections();
    assert!(through >= 1, "{through}");
    let direct = spec(
        &url,
        "assert = \"targets_up\"\njobs = [\"prometheus\"]\nvia = \"direct\"",
    );
    let v = run(&direct, &ctx).await;
    assert!(!v.pass && v.found.contains("dns error"), "{v:?}");
    assert_eq!(tunnel.connections(), through);
    tunnel.refuse();
    let v = run(&table, &ctx).await;
    assert!(
        !v.pass
            && v.found
                .contains("no SOCKS proxy through ssh relay@test-host:22"),
        "{v:?}"
    );
}
