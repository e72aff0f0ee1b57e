//! Marks the tests of a server that is not installed here as ignored, with
//! the reason, so `cargo test` never shows them as passed: each such test
//! carries `#[cfg_attr(missing = "<server>", ignore = "...")]`. With
//! SPINUP_SMOKE_REQUIRE_ALL=1 (CI, scripts/test.sh) nothing is marked, and
//! a missing server fails its tests.

#[path = "tests/common/detect.rs"]
mod detect;

use std::path::Path;

fn main() {
    let names: Vec<String> = detect::Server::ALL
        .iter()
        .map(|s| format!("\"{}\"", s.name()))
        .collect();
    println!(
        "cargo::rustc-check-cfg=cfg(missing, values({}))",
        names.join(", ")
    );
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=tests/common/detect.rs");
    for var in [
        "SPINUP_SMOKE_REQUIRE_ALL",
        "PATH",
        "PG_BIN",
        "SYNAPSE_PYTHON",
        "PROMETHEUS_BIN",
        "SSHD",
        "SPINUP_SMOKE_GUEST_DIR",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Installing a server changes one of these; only existing paths are
    // named (a missing one would make every build rebuild the crate).
    for watched in [
        Path::new("/var/lib/dpkg/status").to_path_buf(),
        repo.join(".venv/bin"),
        repo.join("demo/idp/node_modules/.package-lock.json"),
        repo.join(".cache/sshd/usr/sbin/sshd"),
    ] {
        if watched.exists() {
            println!("cargo::rerun-if-changed={}", watched.display());
        }
    }
    if std::env::var("SPINUP_SMOKE_REQUIRE_ALL").as_deref() == Ok("1") {
        return;
    }
    for server in detect::Server::ALL {
        if server.missing(repo).is_some() {
            println!("cargo::rustc-cfg=missing=\"{}\"", server.name());
        }
    }
}
