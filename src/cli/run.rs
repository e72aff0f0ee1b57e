//! `spinup-smoke run`: checks everything about the input up front, runs the
//! plan, hashes the image meanwhile, writes the signed artifacts and picks
//! the exit code (`exit::for_run`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::Phase;
use crate::error::{UserError, UserErrors};
use crate::exit;
use crate::report::console::{Console, Style};

use super::shared::{parse_phase, prepare, report_user_errors, EnvSettings, Format, Selection};

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

/// Runs the checks and writes the artifacts: the exit code, and the files
/// when they were written.
pub async fn run(args: RunArgs, settings: EnvSettings) -> (i32, Option<crate::report::Written>) {
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

    // From here on the checks are judged: the exit code is `exit::for_run`'s.
    let mut image_hashed = true;
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
                image_hashed = false;
                None
            }
            Err(e) => {
                eprintln!("error: hashing the image stopped: {e}");
                image_hashed = false;
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
            (
                exit::for_run(report.status, true, image_hashed),
                Some(written),
            )
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "error: the checks were judged ({}), but the signed transcript, attestation and JUnit report were not all written",
                report.status.label()
            );
            (exit::for_run(report.status, false, image_hashed), None)
        }
    }
}
