//! Runner overhead: 1,000 trivial checks (a TCP connect to a local listener)
//! through profile loading, planning and the runner, and a dependency chain
//! of the same size. Prints wall time per check; run with `cargo bench --bench runner`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spinup_smoke::plan::Plan;
use spinup_smoke::profile::{self, LoadOptions, Target};
use spinup_smoke::run::{self, NoEvents, RunOptions};

const CHECKS: usize = 1000;

fn profile_text(address: &str, chain: bool) -> String {
    let mut text = String::from("[defaults]\ntimeout = \"5s\"\n");
    for i in 0..CHECKS {
        text.push_str(&format!(
            "[[check]]\nid = \"bench.c{i}\"\nphase = \"services\"\n{}[check.tcp]\naddress = \"{address}\"\n\n",
            if chain && i > 0 { format!("needs = [\"bench.c{}\"]\n", i - 1) } else { String::new() }
        ));
    }
    text
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // Accept and drop connections so the backlog never fills.
    runtime.spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    let dir = std::env::temp_dir().join(format!("spinup-smoke-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, chain, jobs) in [
        ("independent, --jobs 8", false, 8),
        ("independent, --jobs 1", false, 1),
        ("chain of needs", true, 8),
    ] {
        let path = dir.join("bench.toml");
        std::fs::write(&path, profile_text(&address, chain)).unwrap();
        let load_start = Instant::now();
        let profiles = profile::load(&[path], &Target::local(), LoadOptions::default()).unwrap();
        let plan = Plan::build(profiles.checks, &[]).unwrap();
        let load = load_start.elapsed();
        let options = RunOptions {
            jobs,
            global_timeout: Duration::from_secs(600),
            artifacts_dir: dir.clone(),
            hosts: Arc::new(spinup_smoke::host::Hosts::local()),
            redact: Arc::new(|s: &str| s.to_string()),
            safe_mode: true,
            so_far: Default::default(),
        };
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            let report = runtime.block_on(run::run(
                &plan,
                &options,
                Arc::new(NoEvents),
                std::future::pending(),
            ));
            best = best.min(start.elapsed());
            assert_eq!(report.results.len(), CHECKS);
            assert!(report
                .results
                .iter()
                .all(|r| r.status == spinup_smoke::check::Outcome::Pass));
        }
        println!(
            "{name:<24} load+plan {:>7.1} ms | run (best of 5) {:>7.1} ms | {:>6.1} us/check",
            load.as_secs_f64() * 1e3,
            best.as_secs_f64() * 1e3,
            best.as_secs_f64() * 1e6 / CHECKS as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
