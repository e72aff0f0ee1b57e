//! The demo crate's tests need podman or the whole stack: they are marked
//! ignored, with the reason, where it is not installed (unless
//! SPINUP_SMOKE_REQUIRE_ALL=1), by the same gate as the validator's tests.

#[path = "../tests/common/detect.rs"]
mod detect;

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("demo/ sits in the repository");
    detect::emit_cargo_gate(repo, &[detect::Server::Podman, detect::Server::Demo]);
}
