//! The `spinup-smoke` binary: thin glue around `spinup_smoke::cli`.

fn main() {
    std::process::exit(spinup_smoke::cli::main());
}
