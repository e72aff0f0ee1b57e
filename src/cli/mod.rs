//! The command line: parses arguments and environment, validates them once,
//! runs the requested command and maps the outcome to an exit code
//! (`crate::exit`). All user-facing error printing happens here; each
//! command has its own module (`run`, `list`, `verify`, `keygen`, `digest`,
//! and `demo`, which hands over to the separate `spinup-smoke-demo` program).

mod bundle;
mod compare;
pub mod config;
mod demo;
mod digest;
mod keygen;
mod list;
mod run;
mod serve;
mod shared;
mod verify;
mod watch;

use clap::{Parser, Subcommand};

use crate::error::UserError;
use crate::exit;

pub use demo::DemoArgs;
pub use digest::{digest, DigestArgs};
pub use keygen::{keygen, KeygenArgs};
pub use list::{list, ListArgs};
pub use run::{run, RunArgs};
pub use shared::{report_user_errors, runtime, EnvSettings, Format, Selection};
pub use verify::{verify, VerifyArgs};
pub use watch::{watch, WatchAction, WatchArgs};

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
    /// The configuration file for run, list, watch, serve and config show
    /// (default: $SPINUP_SMOKE_CONFIG, else ./spinup-smoke.toml when it
    /// exists). Flags beat the environment, which beats the file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the checks and write the signed transcript, DSSE envelope and JUnit report.
    Run(RunArgs),
    /// Show the plan (phases, checks, dependencies) without running anything.
    List(ListArgs),
    /// Verify a signed transcript, DSSE envelope or proof bundle (exit 0 valid, 1 invalid or signer not pinned).
    Verify(VerifyArgs),
    /// Pack a run's transcript, DSSE envelope, JUnit report, console log and
    /// evidence files into a tar.gz proof bundle whose manifest (every
    /// member's SHA-256 and size) the run's key signs; `verify` checks it.
    Bundle(bundle::BundleArgs),
    /// Compare two signed transcripts: newly failing, newly passing, changed,
    /// appeared, vanished and slower checks; exit 0 when NEW meets --criteria.
    Compare(compare::CompareArgs),
    /// A soak: run the checks every --every for --for, keep every transcript,
    /// and summarise flaps, failures and latency trends; `watch status`,
    /// `watch stop` and `watch logs` for a watch in the background.
    Watch(watch::WatchArgs),
    /// Serve health over HTTP: /healthz (200 or 503 from a result no older
    /// than --max-age; a stale one starts a run, one at a time), /metrics
    /// (Prometheus text) and /transcript (the latest signed transcript).
    Serve(serve::ServeArgs),
    /// The effective configuration: each setting, its value and where it
    /// came from (flag, environment, configuration file, default), and
    /// every problem with it at once (exit 2).
    #[command(subcommand)]
    Config(ConfigAction),
    /// Generate an ed25519 signing key pair: PREFIX.key (PKCS#8, 0600) and PREFIX.pub.
    Keygen(KeygenArgs),
    /// Print the streamed SHA-256 digest of a file as `sha256:<hex>`.
    Digest(DigestArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `spinup-smoke man > spinup-smoke.1`.
    Man,
    /// The embedded demo stack: without a subcommand, start it, validate it
    /// (all phases), verify the signed transcript and stop it; `up` and
    /// `down` start or stop it alone. Runs `spinup-smoke-demo` (installed
    /// next to this program) with the same arguments; see
    /// `spinup-smoke demo --help`.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print what `run` with these arguments would use, and where each
    /// value came from; secrets are never shown.
    Show(RunArgs),
}

/// The settings of `run`-like commands: `args` as parsed, completed from
/// the environment and the configuration file (`config::resolve`).
/// `watch`'s and `serve`'s run inputs resolved as `run`'s are (flag,
/// environment, configuration file, default), in place.
fn configured_inputs(
    inputs: &mut run::RunInputs,
    matches: &clap::ArgMatches,
    config: Option<&std::path::Path>,
) -> Result<EnvSettings, crate::error::UserErrors> {
    // `out`, `format` and `quiet` are their own in `watch` and `serve`.
    let as_run = inputs.run_args(std::path::PathBuf::from("artifacts"));
    let resolved = configured(as_run, matches, config)?;
    *inputs = run::RunInputs::from_run(resolved.args);
    Ok(resolved.settings)
}

fn configured(
    args: RunArgs,
    matches: &clap::ArgMatches,
    config: Option<&std::path::Path>,
) -> Result<config::Resolved, crate::error::UserErrors> {
    let env = |k: &str| std::env::var(k).ok();
    let file = config::locate(config, &env, std::path::Path::new("."))?;
    let text = match &file {
        None => None,
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            UserError::new(format!("cannot read the configuration file: {e}"))
                .in_file(path)
                .hint("make it readable, or pass another --config")
        })?),
    };
    let known: Vec<String> = matches.ids().map(|id| id.as_str().to_string()).collect();
    let given = |id: &str| -> Option<config::Origin> {
        if !known.iter().any(|k| k == id) {
            return None;
        }
        match matches.value_source(id)? {
            clap::parser::ValueSource::CommandLine => Some(config::Origin::Flag(flag_name(id))),
            clap::parser::ValueSource::EnvVariable => {
                Some(config::Origin::Env("SPINUP_SIGNING_KEY".into()))
            }
            _ => None,
        }
    };
    config::resolve(args, &given, &env, file.as_deref().zip(text.as_deref()))
}

/// The flag of an argument id (`require_phases` -> `--require-phase`).
fn flag_name(id: &str) -> String {
    match id {
        "profiles" => "--profile".into(),
        "phases" => "--phase".into(),
        "require_phases" => "--require-phase".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// Entry point from `main`: returns the process exit code.
pub fn main() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let sub = |name: &str| -> clap::ArgMatches {
        matches
            .subcommand_matches(name)
            .cloned()
            .unwrap_or_default()
    };
    match cli.command {
        Command::List(args) => {
            let as_run = RunArgs::with_selection(args.selection.clone());
            match configured(as_run, &sub("list"), cli.config.as_deref()) {
                Ok(resolved) => list(
                    &ListArgs {
                        selection: resolved.args.selection,
                        format: args.format,
                    },
                    &resolved.settings,
                ),
                Err(e) => report_user_errors(&e),
            }
        }
        Command::Config(ConfigAction::Show(args)) => {
            let show = sub("config")
                .subcommand_matches("show")
                .cloned()
                .unwrap_or_default();
            match configured(args, &show, cli.config.as_deref()) {
                Ok(resolved) => config::show(&resolved),
                Err(e) => report_user_errors(&e),
            }
        }
        Command::Run(args) => match configured(args, &sub("run"), cli.config.as_deref()) {
            Err(e) => report_user_errors(&e),
            Ok(resolved) => match runtime() {
                Ok(rt) => {
                    let code = rt.block_on(run(resolved.args, resolved.settings)).0;
                    // The artifacts are written: a lookup that the resolver never
                    // answers (its blocking thread cannot be cancelled) must not
                    // keep the process alive.
                    rt.shutdown_background();
                    code
                }
                Err(code) => code,
            },
        },
        Command::Verify(args) => verify(&args),
        Command::Bundle(args) => bundle::bundle(&args),
        Command::Compare(args) => compare::compare(&args),
        Command::Watch(mut args) => {
            match configured_inputs(&mut args.inputs, &sub("watch"), cli.config.as_deref()) {
                Ok(settings) => watch::watch(args, settings),
                Err(e) => report_user_errors(&e),
            }
        }
        Command::Serve(mut args) => {
            match configured_inputs(&mut args.inputs, &sub("serve"), cli.config.as_deref()) {
                Ok(settings) => serve::serve(args, settings),
                Err(e) => report_user_errors(&e),
            }
        }
        Command::Keygen(args) => keygen(&args),
        Command::Digest(args) => digest(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "spinup-smoke",
                &mut std::io::stdout(),
            );
            exit::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => exit::SUCCESS,
                Err(e) => report_user_errors(
                    &UserError::new(format!("cannot write the man page: {e}")).into(),
                ),
            }
        }
        Command::Demo(args) => demo::exec(args),
    }
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
