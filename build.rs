//! Marks the tests of a server that is not installed here as ignored, with
//! the reason, so `cargo test` never shows them as passed: each such test
//! carries `#[cfg_attr(missing = "<server>", ignore = "...")]`. With
//! SPINUP_SMOKE_REQUIRE_ALL=1 (CI, scripts/test.sh) nothing is marked, and
//! a missing server fails its tests.

#[path = "tests/common/detect.rs"]
mod detect;

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    detect::emit_cargo_gate(repo, &detect::Server::ALL);
}
