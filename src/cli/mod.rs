//! The command line: parses arguments and environment, validates them once,
//! runs the requested command and maps the outcome to an exit code
//! (`crate::exit`). All user-facing error printing happens here; each
//! command has its own module (`run`, `list`, `verify`, `keygen`, `digest`,
//! and `demo`, which hands over to the separate `spinup-smoke-demo` program).

mod demo;
mod digest;
mod keygen;
mod list;
mod run;
mod shared;
mod verify;

use clap::{Parser, Subcommand};

use crate::error::UserError;

pub use demo::DemoArgs;
pub use digest::{digest, DigestArgs};
pub use keygen::{keygen, KeygenArgs};
pub use list::{list, ListArgs};
pub use run::{run, RunArgs};
pub use shared::{report_user_errors, EnvSettings, Format, Selection};
pub use verify::{verify, VerifyArgs};

/// Proves a freshly built RAVE stack is ready, and signs the proof.
///
/// Runs declarative checks (TOML profiles) phase by phase against a live
/// system and writes an ed25519-signed boot transcript bound to the image's
/// SHA-256 digest, an in-toto/DSSE attestation and a JUnit report.
///
/// Exit codes: 0 every check passed (WARNING allowed: warned checks, phases
/// not examined), 1 a check failed or a required phase ran no check (or
/// `verify` found the file invalid or its signer not pinned), 2 usage,
/// profile, target or key error (nothing was judged), 3 the run was aborted (SIGINT, SIGTERM,
/// VALIDATION_TIMEOUT), 4 the checks were judged but the artifacts could not
/// be written (or the image could not be hashed). When several apply, 4 wins
/// over 3, and 3 over 1.
#[derive(Debug, Parser)]
#[command(name = "spinup-smoke", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the checks and write the signed transcript, DSSE envelope and JUnit report.
    Run(RunArgs),
    /// Show the plan (phases, checks, dependencies) without running anything.
    List(ListArgs),
    /// Verify a signed transcript or DSSE envelope (exit 0 valid, 1 invalid or signer not pinned).
    Verify(VerifyArgs),
    /// Generate an ed25519 signing key pair: PREFIX.key (PKCS#8, 0600) and PREFIX.pub.
    Keygen(KeygenArgs),
    /// Print the streamed SHA-256 digest of a file as `sha256:<hex>`.
    Digest(DigestArgs),
    /// The embedded demo stack: without a subcommand, start it, validate it
    /// (all phases), verify the signed transcript and stop it; `up` and
    /// `down` start or stop it alone. Runs `spinup-smoke-demo` (installed
    /// next to this program) with the same arguments; see
    /// `spinup-smoke demo --help`.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Demo(DemoArgs),
}

/// Entry point from `main`: returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let settings = match EnvSettings::from_lookup(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => return report_user_errors(&e.into()),
    };
    match cli.command {
        Command::List(args) => list(&args, &settings),
        Command::Run(args) => match runtime() {
            Ok(rt) => {
                let code = rt.block_on(run(args, settings)).0;
                // The artifacts are written: a lookup that the resolver never
                // answers (its blocking thread cannot be cancelled) must not
                // keep the process alive.
                rt.shutdown_background();
                code
            }
            Err(code) => code,
        },
        Command::Verify(args) => verify(&args),
        Command::Keygen(args) => keygen(&args),
        Command::Digest(args) => digest(&args),
        Command::Demo(args) => demo::exec(args),
    }
}

/// The one tokio runtime of the process.
pub fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            report_user_errors(
                &UserError::new(format!("cannot start the async runtime: {e}")).into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn demo_arguments_pass_through_untouched() {
        let cli =
            Cli::try_parse_from(["spinup-smoke", "demo", "up", "--state", "/tmp/s", "--help"])
                .unwrap();
        let Command::Demo(args) = cli.command else {
            panic!("not the demo command: {cli:?}");
        };
        assert_eq!(args.args, ["up", "--state", "/tmp/s", "--help"]);
        let cli = Cli::try_parse_from(["spinup-smoke", "demo"]).unwrap();
        assert!(matches!(cli.command, Command::Demo(ref a) if a.args.is_empty()));
    }
}
