//! The `prometheus` probe against real Prometheus servers (Debian's
//! /usr/bin/prometheus, or PROMETHEUS_BIN): one scraping only itself, one
//! also scraping a port where nothing listens. Without Prometheus those
//! tests print why and return, unless SPINUP_SMOKE_REQUIRE_PROMETHEUS=1.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::Verdict;
use spinup_smoke::checks::prometheus::{run, Spec};

static SERVERS: Mutex<Vec<(Child, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn stop_servers() {
    if let Ok(mut servers) = SERVERS.lock() {
        for (mut child, dir) in servers.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Prometheus scraping itself and `extra_targets` (job "extra");
/// returns its URL once /-/ready answers, or None without Prometheus.
fn start_prometheus(extra_targets: &[String]) -> Option<String> {
    let binary = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    if !std::path::Path::new(&binary).is_file() {
        if std::env::var("SPINUP_SMOKE_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
            panic!("Prometheus is required but {binary} does not exist: apt-get install prometheus, or set PROMETHEUS_BIN");
        }
        eprintln!("skipping: {binary} does not exist (set PROMETHEUS_BIN)");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("spinup-smoke-prometheus-")
        .tempdir()
        .unwrap()
        .keep();
    let port = free_port();
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    if !extra_targets.is_empty() {
        config.push_str(&format!(
            "  - job_name: extra\n    static_configs:\n      - targets: [{}]\n",
            extra_targets
                .iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let child = Command::new(&binary)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}; apt-get install prometheus"));
    {
        let mut servers = SERVERS.lock().unwrap();
        if servers.is_empty() {
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_servers) };
        }
        servers.push((child, dir.clone()));
    }
    let started = Instant::now();
    loop {
        let ready = std::net::TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut s| {
                use std::io::{Read, Write};
                s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n")?;
                let mut out = String::new();
                s.read_to_string(&mut out)?;
                Ok(out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if ready {
            return Some(format!("http://127.0.0.1:{port}"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus did not become ready; see {}",
            dir.join("stderr.log").display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

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
async fn healthy_prometheus_passes_targets_up_and_queries() {
    let Some(url) = start_prometheus(&[]) else {
        return;
    };
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
async fn a_dead_scrape_target_fails_targets_up_naming_it() {
    let dead = format!("127.0.0.1:{}", free_port());
    let Some(url) = start_prometheus(std::slice::from_ref(&dead)) else {
        return;
    };
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
