//! What the commands share: the selection of profiles, target and phases,
//! the settings read from the environment, loading the plan, and how user
//! errors are printed.

use std::path::PathBuf;
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
}
