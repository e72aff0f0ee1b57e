//! `spinup-smoke demo ...`: the embedded demo stack is its own program,
//! `spinup-smoke-demo` (the `demo/` crate), installed next to this one. This
//! command replaces the process with it (Unix exec), so its arguments, exit
//! code and signals pass through unchanged; the validator links nothing of
//! the demo.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::UserError;

use super::shared::report_user_errors;

/// The demo program's file name.
pub const DEMO_PROGRAM: &str = "spinup-smoke-demo";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Arguments for `spinup-smoke-demo`: `up`, `down`, `--state DIR`,
    /// `--assets DIR`, `--key PATH`, `--out DIR`, `--help`.
    #[arg(
        value_name = "ARGS",
        num_args = 0..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<OsString>,
}

/// Where the demo program must be: beside this executable.
fn demo_program(this: &Path) -> PathBuf {
    this.parent().unwrap_or(Path::new(".")).join(DEMO_PROGRAM)
}

/// Execs `spinup-smoke-demo` with `args`; returns only when that cannot
/// happen (exit 2, saying what was looked for and what to do).
pub fn exec(args: DemoArgs) -> i32 {
    use std::os::unix::process::CommandExt;
    let this = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => {
            return report_user_errors(
                &UserError::new(format!(
                    "cannot find this program's own path to look for {DEMO_PROGRAM} beside it: {e}"
                ))
                .hint("run the demo program directly (cargo run -p spinup-smoke-demo), or ./scripts/demo.sh")
                .into(),
            )
        }
    };
    let program = demo_program(&this);
    if !program.is_file() {
        return report_user_errors(
            &UserError::new(format!(
                "the demo stack is a separate program, and {} does not exist (looked beside {})",
                program.display(),
                this.display()
            ))
            .hint(format!(
                "build it with `cargo build --workspace` (it lands next to spinup-smoke), or run ./scripts/demo.sh; installed, {DEMO_PROGRAM} goes into the same bin directory as spinup-smoke"
            ))
            .into(),
        );
    }
    let error = std::process::Command::new(&program).args(&args.args).exec();
    report_user_errors(
        &UserError::new(format!("cannot run {}: {error}", program.display()))
            .hint("check that it is an executable file; `cargo build --workspace` rebuilds it")
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_program_is_looked_for_beside_this_one() {
        assert_eq!(
            demo_program(Path::new("/opt/x/bin/spinup-smoke")),
            Path::new("/opt/x/bin/spinup-smoke-demo")
        );
    }
}
