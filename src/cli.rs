//! The command line: parses arguments and environment, validates them once,
//! runs the requested command and maps the outcome to an exit code
//! (`crate::exit`). All user-facing error printing happens here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check::{OverallStatus, Phase};
use crate::error::{UserError, UserErrors};
use crate::exit;
use crate::plan::Plan;
use crate::profile::{self, LoadOptions, Target};
use crate::report::console::{Console, Style};

/// Proves a freshly built RAVE stack is ready, and signs the proof.
///
/// Runs declarative checks (TOML profiles) phase by phase against a live
/// system and writes an ed25519-signed boot transcript bound to the image's
/// SHA-256 digest, an in-toto/DSSE attestation and a JUnit report.
///
/// Exit codes: 0 every check passed (WARNING allowed: warned checks, phases
/// not examined), 1 a check failed or a required phase ran no check (or
/// `verify` found the file invalid), 2 usage, profile, target or key error,
/// 3 the run was aborted (SIGINT, SIGTERM, VALIDATION_TIMEOUT).
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
    /// `down` start or stop it alone.
    Demo(crate::demo::cli::DemoArgs),
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

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// The image under test; its SHA-256 becomes `image_digest`.
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// Signing key (PKCS#8 PEM). Without it (and SPINUP_SIGNING_KEY) an
    /// ephemeral key is used and the transcript says so.
    #[arg(long, value_name = "PATH", env = "SPINUP_SIGNING_KEY")]
    pub key: Option<PathBuf>,
    /// Where to write the transcript, DSSE envelope and JUnit report.
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub out: PathBuf,
    /// Checks of one phase running at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// A phase that must run a check, or the run fails (repeatable; adds to
    /// the target's `require_phases`).
    #[arg(long = "require-phase", value_name = "NAME", value_parser = parse_phase)]
    pub require_phases: Vec<Phase>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A `boot_transcript_*.json` or its `*.intoto.json` DSSE envelope.
    pub file: PathBuf,
    /// The expected public key (SubjectPublicKeyInfo PEM); pins the key id.
    #[arg(long, value_name = "PUB")]
    pub pubkey: Option<PathBuf>,
    /// The image; its digest must equal the one signed.
    #[arg(long, value_name = "IMG")]
    pub image: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key and PREFIX.pub; refuses to overwrite.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DigestArgs {
    pub path: PathBuf,
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
        Command::Demo(args) => match runtime() {
            Ok(rt) => rt.block_on(demo(args, settings)),
            Err(code) => code,
        },
        Command::Verify(args) => verify(&args),
        Command::Keygen(args) => keygen(&args),
        Command::Digest(args) => digest(&args),
    }
}

/// The one tokio runtime of the process.
fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            report_user_errors(
                &UserError::new(format!("cannot start the async runtime: {e}")).into(),
            )
        })
}

fn report_user_errors(errors: &UserErrors) -> i32 {
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

fn list(args: &ListArgs, settings: &EnvSettings) -> i32 {
    let (_, profiles, plan) = match prepare(&args.selection, settings) {
        Ok(p) => p,
        Err(e) => return report_user_errors(&e),
    };
    match args.format {
        Format::Json => {
            let checks: Vec<serde_json::Value> = plan
                .checks
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id,
                        "phase": c.phase,
                        "service": c.service,
                        "kind": c.probe.kind(),
                        "severity": c.severity,
                        "timeout_ms": c.timeout.as_millis() as u64,
                        "needs": c.needs,
                        "description": c.description,
                        "profile": c.location.file.display().to_string(),
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "profiles_digest": profiles.digest(),
                "phases": plan.phases(),
                "checks": checks,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => print!("{}", render_tree(&plan)),
    }
    exit::SUCCESS
}

/// The plan as a tree: phase, then checks with their dependencies.
pub fn render_tree(plan: &Plan) -> String {
    let mut out = String::new();
    for phase in plan.phases() {
        let checks: Vec<_> = plan.in_phase(phase).collect();
        out.push_str(&format!(
            "phase {}/10 {phase} ({} checks)\n",
            phase.number(),
            checks.len()
        ));
        for (i, c) in checks.iter().enumerate() {
            let last = i + 1 == checks.len();
            let branch = if last { "└─" } else { "├─" };
            let mut line = format!("{branch} {} [{}", c.id, c.probe.kind());
            if c.severity == crate::check::Severity::Warn {
                line.push_str(", warn");
            }
            line.push(']');
            if !c.description.is_empty() {
                line.push_str(&format!(" {}", c.description));
            }
            out.push_str(&line);
            out.push('\n');
            if !c.needs.is_empty() {
                let pad = if last { "  " } else { "│ " };
                out.push_str(&format!("{pad}   needs: {}\n", c.needs.join(", ")));
            }
        }
    }
    out
}

/// Resolves on SIGINT or SIGTERM with the signal's name.
async fn termination_signal() -> String {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT".into();
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT".into(),
        _ = term.recv() => "SIGTERM".into(),
    }
}

/// Checks that `dir` exists (or can be created) and is writable.
fn check_out_dir(dir: &Path) -> Result<(), UserError> {
    std::fs::create_dir_all(dir)
        .and_then(|_| {
            let probe = dir.join(format!(".spinup-smoke-write-test-{}", std::process::id()));
            std::fs::write(&probe, b"")?;
            std::fs::remove_file(&probe)
        })
        .map_err(|e| {
            UserError::new(format!(
                "artifacts directory {} is not writable: {e}",
                dir.display()
            ))
            .field("--out")
            .hint("pass --out with a writable directory")
        })
}

/// Exit code for a finished run: reporters never choose it.
pub fn exit_code(status: OverallStatus) -> i32 {
    match status {
        OverallStatus::Success | OverallStatus::Warning => exit::SUCCESS,
        OverallStatus::Failure => exit::CHECK_FAILED,
        OverallStatus::Aborted => exit::ABORTED,
    }
}

/// Runs the checks and writes the artifacts: the exit code, and the files
/// when they were written.
async fn run(args: RunArgs, settings: EnvSettings) -> (i32, Option<crate::report::Written>) {
    // Everything that can be wrong with the input is found before any check runs.
    let mut errors = Vec::new();
    if let Err(e) = check_out_dir(&args.out) {
        errors.push(e);
    }
    if let Some(image) = &args.image {
        if !image.is_file() {
            errors.push(
                UserError::new(format!(
                    "image {} does not exist or is not a file",
                    image.display()
                ))
                .field("--image")
                .hint("pass --image with the path of the built image (qcow2 or raw)"),
            );
        }
    }
    let key = match &args.key {
        Some(path) => match crate::sign::keys::load_signing_key(path) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => Some(crate::sign::SigningMaterial::ephemeral()),
    };
    let prepared = prepare(&args.selection, &settings);
    let (target, profiles, plan) = match prepared {
        Ok(p) if errors.is_empty() => p,
        Ok(_) => return (report_user_errors(&UserErrors(errors)), None),
        Err(e) => {
            errors.extend(e.0);
            return (report_user_errors(&UserErrors(errors)), None);
        }
    };
    let Some(key) = key else {
        return (report_user_errors(&UserErrors(errors)), None);
    };
    let plan = plan.requiring(
        target
            .required_phases
            .iter()
            .chain(&args.require_phases)
            .copied(),
    );
    if key.ephemeral {
        eprintln!(
            "warning: no signing key given (--key or SPINUP_SIGNING_KEY): signing with a fresh EPHEMERAL key.\n\
             warning: the transcript will prove integrity, not origin; `verify` will warn.\n\
             warning: create a key once with `spinup-smoke keygen --out keys/spinup-smoke`."
        );
    }

    let redactor = Arc::new(crate::redact::Redactor::new(target.secret_values()));
    let redact_fn: crate::run::RedactFn = {
        let r = redactor.clone();
        Arc::new(move |s: &str| r.redact(s))
    };
    let digest_task = args.image.clone().map(|path| {
        tokio::task::spawn_blocking(move || crate::digest::sha256_file(&path).map(|d| (path, d)))
    });
    let sink: Arc<dyn crate::run::EventSink> = match args.format {
        Format::Human => Arc::new(Console::new(
            std::io::stdout(),
            Style::detect(std::io::stdout().is_terminal(), settings.debug),
        )),
        Format::Json => Arc::new(Console::new(
            std::io::stderr(),
            Style::detect(std::io::stderr().is_terminal(), settings.debug),
        )),
    };
    let options = crate::run::RunOptions {
        jobs: usize::from(args.jobs),
        global_timeout: settings.validation_timeout,
        artifacts_dir: args.out.clone(),
        executor: Arc::new(crate::os::LocalExecutor),
        redact: redact_fn,
        safe_mode: settings.safe_mode,
        so_far: Default::default(),
    };
    let report = crate::run::run(&plan, &options, sink, termination_signal()).await;
    // Every VM a check booted is torn down, whatever the outcome (pass,
    // fail, timeout or abort).
    for (name, teardown) in crate::vm::registry::teardown_all().await {
        if !teardown.clean() {
            eprintln!("warning: VM `{name}` was not torn down cleanly: {teardown:?}");
        }
    }

    let mut code = exit_code(report.status);
    let image = match digest_task {
        None => None,
        Some(task) => match task.await {
            Ok(Ok((path, digest))) => Some(crate::report::ImageInfo {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path,
                digest,
            }),
            Ok(Err(e)) => {
                eprintln!("error: cannot hash the image: {e}");
                code = code.max(exit::USAGE);
                None
            }
            Err(e) => {
                eprintln!("error: hashing the image stopped: {e}");
                code = code.max(exit::USAGE);
                None
            }
        },
    };
    let info = crate::report::RunInfo {
        rave_version: target
            .rave_version
            .clone()
            .unwrap_or_else(|| "unknown".to_string()),
        target_name: target.name.clone(),
        profiles: profiles.sources.clone(),
        profiles_digest: profiles.digest(),
        image,
        system_info: crate::sysinfo::SystemInfo::gather(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        target_sha256: target.sha256.clone(),
        stand_ins: target.stand_ins.clone(),
    };
    match crate::report::write_all(&args.out, &report, &info, &key, &redactor) {
        Ok(written) => {
            if args.format == Format::Json {
                match std::fs::read_to_string(&written.transcript) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("error: cannot read back the transcript: {e}"),
                }
            }
            let paths = format!(
                "transcript: {}\nattestation: {}\njunit: {}",
                written.transcript.display(),
                written.attestation.display(),
                written.junit.display()
            );
            if args.format == Format::Json {
                eprintln!("{paths}");
            } else {
                println!("{paths}");
            }
            (code, Some(written))
        }
        Err(e) => {
            eprintln!("{e}");
            (exit::USAGE, None)
        }
    }
}

/// The profiles the demo validates: every service profile and the host self-test.
const DEMO_PROFILES: [&str; 10] = [
    "health-checks/postgres.toml",
    "health-checks/matrix.toml",
    "health-checks/prometheus.toml",
    "health-checks/gitlab.toml",
    "health-checks/grafana.toml",
    "health-checks/networking.toml",
    "health-checks/containers.toml",
    "scenarios/oidc.toml",
    "scenarios/selftest.toml",
    "scenarios/vm.toml",
];

async fn demo(args: crate::demo::cli::DemoArgs, settings: EnvSettings) -> i32 {
    use crate::demo::cli::DemoAction;
    let state = args.state.clone();
    let started = match args.action {
        Some(DemoAction::Down) => {
            return match crate::demo::down(&state).await {
                Ok(stopped) if stopped.is_empty() => {
                    println!("demo: nothing was running in {}", state.display());
                    exit::SUCCESS
                }
                Ok(stopped) => {
                    println!(
                        "demo: stopped {} and removed {}",
                        stopped.join(", "),
                        state.display()
                    );
                    exit::SUCCESS
                }
                Err(e) => report_user_errors(&e.into()),
            };
        }
        Some(DemoAction::Up) | None => match crate::demo::up(&state).await {
            Ok(info) => info,
            Err(e) => return report_user_errors(&e.into()),
        },
    };
    println!("demo: stack up in {}", state.display());
    for (component, took) in &started.timings {
        println!("  {component:<26} {:>7.2}s", took.as_secs_f64());
    }
    println!("demo: target file {}", started.target.display());
    if args.action.is_some() {
        println!("demo: validate it with `spinup-smoke run --profile health-checks --phase services --phase sandbox --target {}`; stop it with `spinup-smoke demo down`", started.target.display());
        return exit::SUCCESS;
    }
    let repo = crate::demo::repo_root();
    // The build, boot and sandbox phases use the demo guest image (built
    // once, then cached); the transcript is bound to its digest.
    let guest = state.join("guest");
    let image = match prepare_guest(&repo, &guest, &started.target) {
        Ok(image) => image,
        Err(e) => {
            let _ = crate::demo::down(&state).await;
            return report_user_errors(&e.into());
        }
    };
    let run_args = RunArgs {
        selection: Selection {
            profiles: DEMO_PROFILES.iter().map(|p| repo.join(p)).collect(),
            target: Some(started.target.clone()),
            phases: Vec::new(),
        },
        image: Some(image),
        key: args.key.clone(),
        out: args.out.clone(),
        jobs: 16,
        format: Format::Human,
        require_phases: Vec::new(),
    };
    let written_image = run_args.image.clone().unwrap_or_default();
    let (mut code, written) = run(run_args, settings).await;
    if let Some(written) = &written {
        println!("\n==> verify the signed transcript and its attestation");
        let pubkey = args
            .key
            .as_ref()
            .map(|k| k.with_extension("pub"))
            .filter(|p| p.exists());
        for file in [&written.transcript, &written.attestation] {
            let verdict = verify(&VerifyArgs {
                file: file.clone(),
                pubkey: pubkey.clone(),
                image: Some(written_image.clone()),
            });
            code = code.max(verdict);
        }
    }
    match crate::demo::down(&state).await {
        Ok(stopped) => println!("\ndemo: stopped {}", stopped.join(", ")),
        Err(e) => {
            eprintln!("{e}");
            code = code.max(exit::USAGE);
        }
    }
    if let Some(written) = written {
        println!(
            "demo: artifacts in {}",
            written
                .transcript
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    code
}

/// Builds (or reuses) the demo guest image into `guest` and adds its paths
/// to the target's vars; returns the image path.
fn prepare_guest(repo: &Path, guest: &Path, target: &Path) -> Result<PathBuf, UserError> {
    println!("demo: guest image (built once with debootstrap, a few minutes; then cached)");
    let status = std::process::Command::new(repo.join("scripts/build-guest-image.sh"))
        .arg(guest)
        .current_dir(repo)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| UserError::new(format!("cannot run scripts/build-guest-image.sh: {e}")))?;
    if !status.success() {
        return Err(UserError::new(format!("building the demo guest image failed ({status})"))
            .hint("run scripts/build-guest-image.sh to see why; it needs root, debootstrap and the Debian mirror"));
    }
    let image = guest.join("guest.qcow2");
    let text = std::fs::read_to_string(target).map_err(|e| UserError::new(e.to_string()))?;
    let q = |p: PathBuf| serde_json::to_string(&p.display().to_string()).unwrap_or_default();
    let vars = format!(
        "[vars]\nimage.build_dir = {}\nimage.path = {}\nimage.kernel = {}\nimage.initrd = {}\n",
        q(guest.to_path_buf()),
        q(image.clone()),
        q(guest.join("vmlinuz")),
        q(guest.join("initrd.img"))
    );
    std::fs::write(target, text.replacen("[vars]\n", &vars, 1))
        .map_err(|e| UserError::new(e.to_string()))?;
    Ok(image)
}

fn verify(args: &VerifyArgs) -> i32 {
    match crate::sign::verify::verify_file(
        &args.file,
        args.pubkey.as_deref(),
        args.image.as_deref(),
    ) {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}: valid ({})", args.file.display(), report.summary());
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: INVALID: {e}", args.file.display());
            exit::CHECK_FAILED
        }
    }
}

fn keygen(args: &KeygenArgs) -> i32 {
    match crate::sign::keys::write_keypair(&args.out) {
        Ok((key, public, key_id)) => {
            println!("private key: {} (mode 0600; keep it secret)", key.display());
            println!("public key:  {}", public.display());
            println!("key id:      {key_id}");
            exit::SUCCESS
        }
        Err(e) => report_user_errors(&e.into()),
    }
}

fn digest(args: &DigestArgs) -> i32 {
    match crate::digest::sha256_file(&args.path) {
        Ok(d) => {
            println!("{d}");
            exit::SUCCESS
        }
        Err(e) => report_user_errors(
            &UserError::new(format!("cannot read {}: {e}", args.path.display()))
                .hint("pass the path of a readable file")
                .into(),
        ),
    }
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
    fn exit_codes_follow_the_verdict() {
        assert_eq!(exit_code(OverallStatus::Success), 0);
        assert_eq!(exit_code(OverallStatus::Warning), 0);
        assert_eq!(exit_code(OverallStatus::Failure), 1);
        assert_eq!(exit_code(OverallStatus::Aborted), 3);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
