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
mod verify;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check::Phase;
use crate::error::{UserError, UserErrors};
use crate::exit;
use crate::plan::Plan;
use crate::profile::{self, LoadOptions, Target};

pub use demo::DemoArgs;
pub use digest::{digest, DigestArgs};
pub use keygen::{keygen, KeygenArgs};
pub use list::{list, ListArgs};
pub use run::{run, RunArgs};
pub use verify::{verify, VerifyArgs};

/// Proves a freshly built RAVE stack is ready, and signs the proof.
///
/// Runs declarative checks (TOML profiles) phase by phase against a live
/// system and writes an ed25519-signed boot transcript bound to the image's
/// SHA-256 digest, an in-toto/DSSE attestation and a JUnit report.
///
/// Exit codes: 0 every check passed (warnings allowed), 1 a check failed
/// (or `verify` found the file invalid), 2 usage, profile, target or key
/// error (nothing was judged), 3 the run was aborted (SIGINT, SIGTERM,
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
    /// Verify a signed transcript or DSSE envelope (exit 0 valid, 1 invalid).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Live progress, failure blocks and a summary.
    Human,
    /// The signed transcript on stdout (progress goes to stderr).
    Json,
}

/// What to check and against what (shared by `run` and `list`).
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// A profile file or a directory of them (repeatable).
    #[arg(
        long = "profile",
        short = 'p',
        value_name = "PATH",
        default_value = "health-checks"
    )]
    pub profiles: Vec<PathBuf>,
    /// Target file naming endpoints, hosts and secret sources.
    #[arg(long, short = 't', value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// Run only these phases, plus the checks they need (repeatable).
    #[arg(long = "phase", value_name = "NAME", value_parser = parse_phase)]
    pub phases: Vec<Phase>,
}

fn parse_phase(name: &str) -> Result<Phase, String> {
    Phase::parse(name).ok_or_else(|| {
        format!(
            "unknown phase `{name}`; phases: {}",
            Phase::ALL.map(|p| p.name()).join(", ")
        )
    })
}

/// Settings from the environment, validated once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvSettings {
    pub validation_timeout: Duration,
    pub safe_mode: bool,
    pub debug: bool,
}

impl EnvSettings {
    /// Pure: reads settings through `get` (the process environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EnvSettings, UserError> {
        let timeout = match get("VALIDATION_TIMEOUT") {
            None => 1800,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(UserError::new(format!("VALIDATION_TIMEOUT=`{v}` is not a positive number of seconds"))
                        .field("VALIDATION_TIMEOUT")
                        .hint("set it to the run's bound in seconds, e.g. VALIDATION_TIMEOUT=1800 (the default)"))
                }
            },
        };
        let flag = |name: &str, default: bool| -> Result<bool, UserError> {
            match get(name).as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some("1") | Some("true") | Some("yes") => Ok(true),
                Some("0") | Some("false") | Some("no") => Ok(false),
                Some(other) => Err(UserError::new(format!("{name}=`{other}` is not 0 or 1"))
                    .field(name.to_string())
                    .hint(format!("set {name}=1 or {name}=0"))),
            }
        };
        Ok(EnvSettings {
            validation_timeout: Duration::from_secs(timeout),
            safe_mode: flag("SAFE_MODE", true)?,
            debug: flag("DEBUG", false)?,
        })
    }
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
            Ok(rt) => rt.block_on(run(args, settings)).0,
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

/// Prints user errors; returns the exit code for them (`exit::USAGE`).
pub fn report_user_errors(errors: &UserErrors) -> i32 {
    eprintln!("{errors}");
    exit::USAGE
}

/// Loads target and profiles and builds the plan.
fn prepare(
    selection: &Selection,
    settings: &EnvSettings,
) -> Result<(Target, profile::Profiles, Plan), UserErrors> {
    let target = match &selection.target {
        Some(path) => profile::target::load(path)?,
        None => Target::local(),
    };
    let profiles = profile::load(
        &selection.profiles,
        &target,
        LoadOptions {
            safe_mode: settings.safe_mode,
        },
    )?;
    let plan = Plan::build(profiles.checks.clone(), &selection.phases)?;
    if plan.checks.is_empty() {
        return Err(
            UserError::new("nothing to run: the selection holds no checks")
                .hint(
                    "check --profile and --phase; `spinup-smoke list` shows what the profiles hold",
                )
                .into(),
        );
    }
    Ok((target, profiles, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<EnvSettings, UserError> {
        EnvSettings::from_lookup(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn environment_defaults_and_validation() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.validation_timeout, Duration::from_secs(1800));
        assert!(s.safe_mode && !s.debug);
        let s = settings(&[
            ("SAFE_MODE", "0"),
            ("DEBUG", "1"),
            ("VALIDATION_TIMEOUT", "2400"),
        ])
        .unwrap();
        assert_eq!(s.validation_timeout, Duration::from_secs(2400));
        assert!(!s.safe_mode && s.debug);
        let e = settings(&[("VALIDATION_TIMEOUT", "soon")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("VALIDATION_TIMEOUT=`soon`") && e.contains("hint"),
            "{e}"
        );
        assert!(settings(&[("VALIDATION_TIMEOUT", "0")]).is_err());
        let e = settings(&[("SAFE_MODE", "maybe")]).unwrap_err().to_string();
        assert!(e.contains("SAFE_MODE=`maybe` is not 0 or 1"), "{e}");
    }

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
