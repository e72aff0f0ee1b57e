//! `spinup-smoke run`: checks everything about the input up front, runs the
//! plan, hashes the image meanwhile, writes the signed artifacts and picks
//! the exit code (`exit::for_run`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::Phase;
use crate::error::{UserError, UserErrors};
use crate::exit;
use crate::host::{Host, HostKeyPin, Hosts, Identity, LocalHost, SshConfig, SshHost};
use crate::profile::hosts::{HostSpec, Transport};
use crate::profile::target::Target;
use crate::profile::Profiles;
use crate::report::console::{Console, Style, Tee};

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
    /// Where to write the transcript, DSSE envelope, JUnit report and console log.
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub out: PathBuf,
    /// Checks of one phase running at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// No progress lines: only the failures and the summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// A phase that must run a check, or the run fails (repeatable; adds to
    /// the target's `require_phases`).
    #[arg(long = "require-phase", value_name = "NAME", value_parser = parse_phase)]
    pub require_phases: Vec<Phase>,
}

/// What `watch` and `serve` take as `run` does (the selection, image, key,
/// jobs and required phases): each of their runs is made from it.
#[derive(Debug, Clone, clap::Args)]
pub struct RunInputs {
    #[command(flatten)]
    pub selection: Selection,
    /// The image under test (hashed once per run).
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// Signing key (PKCS#8 PEM); without it each run signs with its own
    /// ephemeral key.
    #[arg(long, value_name = "PATH", env = "SPINUP_SIGNING_KEY")]
    pub key: Option<PathBuf>,
    /// Checks of one phase running at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// A phase that must run a check (repeatable), as for `run`.
    #[arg(long = "require-phase", value_name = "NAME", value_parser = parse_phase)]
    pub require_phases: Vec<Phase>,
}

impl RunInputs {
    /// One quiet run of these inputs into `out`.
    pub fn run_args(&self, out: PathBuf) -> RunArgs {
        RunArgs {
            selection: self.selection.clone(),
            image: self.image.clone(),
            key: self.key.clone(),
            out,
            jobs: self.jobs,
            format: Format::Human,
            quiet: true,
            require_phases: self.require_phases.clone(),
        }
    }

    /// Everything wrong with these inputs (profiles, target, plan, key,
    /// image), found at once before the first run.
    pub fn check(&self, settings: &EnvSettings) -> Result<(), UserErrors> {
        let mut errors = Vec::new();
        if let Err(e) = prepare(&self.selection, settings) {
            errors.extend(e.0);
        }
        if let Some(key) = &self.key {
            if let Err(e) = crate::sign::keys::load_signing_key(key) {
                errors.push(e);
            }
        }
        if let Some(image) = &self.image {
            if let Err(e) = check_image(image) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(UserErrors(errors))
        }
    }

    /// The inputs of `args` (as the configuration resolved them).
    pub fn from_run(args: RunArgs) -> RunInputs {
        RunInputs {
            selection: args.selection,
            image: args.image,
            key: args.key,
            jobs: args.jobs,
            require_phases: args.require_phases,
        }
    }
}

impl RunArgs {
    /// `run`'s defaults for this selection (what `list` and `watch` share
    /// with it when the configuration is resolved).
    pub fn with_selection(selection: Selection) -> RunArgs {
        RunArgs {
            selection,
            image: None,
            key: None,
            out: PathBuf::from("artifacts"),
            jobs: 16,
            format: Format::Human,
            quiet: false,
            require_phases: Vec::new(),
        }
    }
}

/// Resolves on SIGINT or SIGTERM with the signal's name.
pub(super) async fn termination_signal() -> String {
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
/// The image under test must be a file.
fn check_image(image: &Path) -> Result<(), UserError> {
    if image.is_file() {
        return Ok(());
    }
    Err(UserError::new(format!(
        "image {} does not exist or is not a file",
        image.display()
    ))
    .field("--image")
    .hint("pass --image with the path of the built image (qcow2 or raw)"))
}

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

/// The hosts of the run from the target: `[hosts.NAME]` for the checks of
/// the profiles it claims, `[host]` for the rest, else this machine.
pub fn hosts(target: &Target, profiles: &Profiles) -> Hosts {
    let make = |spec: &HostSpec| -> Arc<dyn Host> {
        match &spec.transport {
            Transport::Local => Arc::new(LocalHost { sudo: spec.sudo }),
            Transport::Ssh(ssh) => {
                let identity = match &ssh.identity_file {
                    Some(file) => Identity::File(file.clone()),
                    None => Identity::Key(
                        target
                            .values
                            .secrets
                            .get(&ssh.identity_secret)
                            .cloned()
                            .unwrap_or_default(),
                    ),
                };
                let pin = match (&ssh.host_key, &ssh.known_hosts) {
                    (Some(fingerprint), _) => HostKeyPin::Fingerprint(fingerprint.clone()),
                    (None, path) => HostKeyPin::KnownHosts {
                        path: path.clone().unwrap_or_default(),
                        trust_on_first_use: ssh.trust_on_first_use,
                    },
                };
                Arc::new(SshHost::new(SshConfig {
                    address: ssh.address.clone(),
                    port: ssh.port,
                    user: ssh.user.clone(),
                    identity_name: ssh.identity_secret.clone(),
                    identity,
                    pin,
                    sudo: spec.sudo,
                    connect_timeout: ssh.connect_timeout,
                    via_host: spec.via_host,
                }))
            }
        }
    };
    let mut hosts = match &target.host {
        Some(spec) => Hosts::new(make(spec)),
        None => Hosts::local(),
    };
    for spec in &target.hosts {
        let host = make(spec);
        for name in &spec.profiles {
            let files: Vec<&Path> = profiles
                .sources
                .iter()
                .filter(|s| &s.name == name)
                .map(|s| s.path.as_path())
                .collect();
            if files.is_empty() {
                eprintln!(
                    "warning: {} claims profile `{name}`, but no loaded profile has that name",
                    spec.table()
                );
            }
            for file in files {
                hosts.route(file, host.clone());
            }
        }
    }
    hosts
}

/// Runs the checks and writes the artifacts: the exit code, and the files
/// when they were written. SIGINT or SIGTERM aborts the run.
pub async fn run(args: RunArgs, settings: EnvSettings) -> (i32, Option<crate::report::Written>) {
    run_until(args, settings, termination_signal()).await
}

/// `run`, aborted when `abort` resolves (with the reason it gives).
pub async fn run_until(
    args: RunArgs,
    settings: EnvSettings,
    abort: impl std::future::Future<Output = String>,
) -> (i32, Option<crate::report::Written>) {
    // Everything that can be wrong with the input is found before any check runs.
    let mut errors = Vec::new();
    if let Err(e) = check_out_dir(&args.out) {
        errors.push(e);
    }
    if let Some(image) = &args.image {
        if let Err(e) = check_image(image) {
            errors.push(e);
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
    let required: Vec<Phase> = target
        .required_phases
        .iter()
        .chain(&args.require_phases)
        .copied()
        .collect();
    let plan = if args.selection.smoke {
        if !required.is_empty() {
            eprintln!(
                "note: a smoke run (--smoke): the required phases ({}) are not enforced; the verdict is at best WARNING",
                required.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            );
        }
        plan
    } else {
        plan.requiring(required)
    };
    if key.ephemeral && args.quiet {
        eprintln!("warning: signing with a fresh EPHEMERAL key (no --key or SPINUP_SIGNING_KEY)");
    } else if key.ephemeral {
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
    // What the console prints is kept for `<stem>.console.log`.
    let console_copy = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink: Arc<dyn crate::run::EventSink> = match args.format {
        Format::Human => Arc::new(Console::new(
            Tee {
                out: std::io::stdout(),
                copy: console_copy.clone(),
            },
            Style::detect(std::io::stdout().is_terminal(), settings.debug, args.quiet),
        )),
        Format::Json => Arc::new(Console::new(
            Tee {
                out: std::io::stderr(),
                copy: console_copy.clone(),
            },
            Style::detect(std::io::stderr().is_terminal(), settings.debug, args.quiet),
        )),
    };
    let options = crate::run::RunOptions {
        jobs: usize::from(args.jobs),
        global_timeout: settings.validation_timeout,
        artifacts_dir: args.out.clone(),
        hosts: Arc::new(hosts(&target, &profiles)),
        redact: redact_fn,
        safe_mode: settings.safe_mode,
        so_far: Default::default(),
    };
    let report = crate::run::run(&plan, &options, sink, abort).await;

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
    let console_log = console_copy
        .lock()
        .map(|c| crate::report::console::strip_ansi(&String::from_utf8_lossy(&c)))
        .unwrap_or_default();
    match crate::report::write_run(&args.out, &report, &info, &key, &redactor, &console_log) {
        Ok(written) => {
            if args.format == Format::Json {
                match std::fs::read_to_string(&written.transcript) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("error: cannot read back the transcript: {e}"),
                }
            }
            let mut paths = format!(
                "transcript: {}\nattestation: {}\njunit: {}",
                written.transcript.display(),
                written.attestation.display(),
                written.junit.display()
            );
            if let Some(log) = &written.console_log {
                paths.push_str(&format!("\nconsole log: {}", log.display()));
            }
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
