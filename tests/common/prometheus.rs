//! A Prometheus server (`detect::prometheus_bin`: PROMETHEUS_BIN or
//! Debian's /usr/bin/prometheus) scraping itself every second, and other
//! targets under the job "extra"; stopped and removed when dropped.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::detect::{self, Server};
use super::ServerProcess;

pub struct Prometheus {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    // Dropped in this order: the server, then its directory.
    _process: ServerProcess,
    _dir: tempfile::TempDir,
}

/// Starts Prometheus scraping itself and `extra_targets` (job "extra");
/// returns once /-/ready answers.
pub fn start(extra_targets: &[String]) -> Prometheus {
    let binary = detect::prometheus_bin().unwrap_or_else(|| super::missing(Server::Prometheus));
    let dir = tempfile::Builder::new()
        .prefix("spinup-smoke-prometheus-")
        .tempdir()
        .unwrap();
    let port = super::free_port();
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
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let log = dir.path().join("stderr.log");
    let mut process = ServerProcess::spawn(
        "Prometheus",
        Command::new(&binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
        Some(&log),
    );
    process.wait_ready(Duration::from_secs(60), Duration::from_millis(100), || {
        super::http_ok(port, "/-/ready")
    });
    Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        _process: process,
        _dir: dir,
    }
}
