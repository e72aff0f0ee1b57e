//! The `spinup-smoke-demo` binary (`spinup-smoke demo` execs it): thin glue
//! around `spinup_smoke_demo::cli`.

fn main() {
    std::process::exit(spinup_smoke_demo::cli::main());
}
