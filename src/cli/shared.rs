//! What the commands share: the selection of profiles, target and phases,
//! the settings read from the environment, loading the plan, and how user
//! errors are printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;

use crate::check::Phase;
use crate::error::{UserError, UserErrors};
use crate::exit;
use crate::plan::Plan;
use crate::profile::{self, LoadOptions, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Live progress, failure blocks and a summary.
    Human,
    /// The signed transcript on stdout (progress goes to stderr).
    Json,
}

/// What to check and against what (shared by `run` and `list`).
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// A profile file or a directory of them (repeatable). Default:
    /// ./health-checks when it exists, else the installed profiles
    /// (<prefix>/share/spinup-smoke/health-checks beside the program).
    #[arg(long = "profile", short = 'p', value_name = "PATH")]
    pub profiles: Vec<PathBuf>,
    /// Target file naming endpoints, hosts and secret sources.
    #[arg(long, short = 't', value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// Run only these phases, plus the checks they need (repeatable).
    #[arg(long = "phase", value_name = "NAME", value_parser = parse_phase)]
    pub phases: Vec<Phase>,
    /// Only the checks marked `smoke = true` (plus the checks they need):
    /// a quick look, not a proof of readiness (required phases are not
    /// enforced, so the verdict is at best WARNING).
    #[arg(long)]
    pub smoke: bool,
}

pub(super) fn parse_phase(name: &str) -> Result<Phase, String> {
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

/// Prints user errors; returns the exit code for them (`exit::USAGE`).
pub fn report_user_errors(errors: &UserErrors) -> i32 {
    eprintln!("{errors}");
    exit::USAGE
}

/// Loads target and profiles and builds the plan.
pub(super) fn prepare(
    selection: &Selection,
    settings: &EnvSettings,
) -> Result<(Target, profile::Profiles, Plan), UserErrors> {
    let target = match &selection.target {
        Some(path) => profile::target::load(path)?,
        None => Target::local(),
    };
    let chosen = if selection.profiles.is_empty() {
        vec![default_profiles(
            Path::new("health-checks"),
            std::env::current_exe().ok().as_deref(),
        )]
    } else {
        selection.profiles.clone()
    };
    let profiles = profile::load(
        &chosen,
        &target,
        LoadOptions {
            safe_mode: settings.safe_mode,
        },
    )?;
    let smoke = selection.smoke;
    let plan = Plan::build_where(profiles.checks.clone(), &selection.phases, |c| {
        !smoke || c.smoke
    })?;
    if plan.checks.is_empty() {
        let hint = if smoke {
            "no selected check is marked `smoke = true`: mark the quick ones in the profiles, or drop --smoke"
        } else {
            "check --profile and --phase; `spinup-smoke list` shows what the profiles hold"
        };
        return Err(
            UserError::new("nothing to run: the selection holds no checks")
                .hint(hint)
                .into(),
        );
    }
    Ok((target, profiles, plan))
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
}

/// The profiles `run` and `list` use without `--profile`: `local` (the
/// working directory's health-checks/) when it exists, else the ones
/// installed beside the program (`<prefix>/bin/spinup-smoke` ->
/// `<prefix>/share/spinup-smoke/health-checks`), else `local` again so the
/// error names the path a user expects.
pub fn default_profiles(local: &Path, exe: Option<&Path>) -> PathBuf {
    if local.is_dir() {
        return local.to_path_buf();
    }
    exe.and_then(Path::parent)
        .and_then(Path::parent)
        .map(|prefix| prefix.join("share/spinup-smoke/health-checks"))
        .filter(|installed| installed.is_dir())
        .unwrap_or_else(|| local.to_path_buf())
}

#[cfg(test)]
mod default_profile_tests {
    use super::*;

    #[test]
    fn the_working_directory_wins_then_the_installed_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("cwd/health-checks");
        let installed = dir.path().join("prefix/share/spinup-smoke/health-checks");
        let exe = dir.path().join("prefix/bin/spinup-smoke");
        // Neither exists: the local path, so the error names it.
        assert_eq!(default_profiles(&local, Some(&exe)), local);
        std::fs::create_dir_all(&installed).unwrap();
        assert_eq!(default_profiles(&local, Some(&exe)), installed);
        assert_eq!(default_profiles(&local, None), local);
        std::fs::create_dir_all(&local).unwrap();
        assert_eq!(default_profiles(&local, Some(&exe)), local);
    }
}
