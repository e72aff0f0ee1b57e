//! The settings of `run`, `list` and `config show`, from four places; the
//! first that gives a value wins:
//!
//! 1. a command-line flag (`--jobs 4`),
//! 2. the environment (`SPINUP_SIGNING_KEY`, `VALIDATION_TIMEOUT`,
//!    `SAFE_MODE`, `DEBUG`),
//! 3. the configuration file: `--config FILE`, else `$SPINUP_SMOKE_CONFIG`,
//!    else `./spinup-smoke.toml` when it exists (paths in it are relative to
//!    its directory),
//! 4. the built-in default.
//!
//! `resolve` is pure and validates everything at once: every bad value of
//! the file (with its line) and of the environment is reported together.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::check::{HumanDuration, Phase};
use crate::error::{Location, UserError, UserErrors};
use crate::profile::toml_error::toml_error;

use super::run::RunArgs;
use super::shared::{prepare, report_user_errors, EnvSettings, Format};
use crate::exit;

/// The configuration file looked for in the current directory.
pub const FILE_NAME: &str = "spinup-smoke.toml";
/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "SPINUP_SMOKE_CONFIG";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(String),
    Env(String),
    File(Location),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::File(at) => write!(f, "{}:{}", at.file.display(), at.line),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    profiles: Option<Spanned<Vec<String>>>,
    target: Option<Spanned<String>>,
    phases: Option<Spanned<Vec<String>>>,
    require_phases: Option<Spanned<Vec<String>>>,
    image: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    out: Option<Spanned<String>>,
    jobs: Option<Spanned<i64>>,
    format: Option<Spanned<String>>,
    quiet: Option<Spanned<bool>>,
    smoke: Option<Spanned<bool>>,
    validation_timeout: Option<Spanned<String>>,
    safe_mode: Option<Spanned<bool>>,
    debug: Option<Spanned<bool>>,
}

/// One effective setting, for `config show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: &'static str,
    pub value: String,
    pub origin: Origin,
}

/// The effective settings and where each came from.
#[derive(Debug)]
pub struct Resolved {
    pub args: RunArgs,
    pub settings: EnvSettings,
    pub file: Option<PathBuf>,
    pub entries: Vec<Entry>,
}

/// The configuration file to read, if any: the flag's, the environment's
/// (both must exist), else `dir/spinup-smoke.toml` when it exists.
pub fn locate(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
) -> Result<Option<PathBuf>, UserError> {
    let asked = match (flag, env(CONFIG_ENV).filter(|v| !v.trim().is_empty())) {
        (Some(path), _) => Some((path.to_path_buf(), "--config")),
        (None, Some(path)) => Some((PathBuf::from(path), CONFIG_ENV)),
        (None, None) => None,
    };
    match asked {
        Some((path, by)) if !path.is_file() => Err(UserError::new(format!(
            "the configuration file {} does not exist",
            path.display()
        ))
        .field(by)
        .hint(format!(
            "create it, or drop {by} to use ./{FILE_NAME} when it exists"
        ))),
        Some((path, _)) => Ok(Some(path)),
        None => {
            let here = dir.join(FILE_NAME);
            Ok(here.is_file().then_some(here))
        }
    }
}

/// What resolving one value needs.
struct Ctx<'a> {
    given: &'a dyn Fn(&str) -> Option<Origin>,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<(&'a Path, &'a str)>,
    errors: Vec<UserError>,
    entries: Vec<Entry>,
}

impl Ctx<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        let (path, text) = self.file.unwrap_or((Path::new(""), ""));
        Location::from_offset(path, text, spanned.span().start)
    }
    fn base(&self) -> PathBuf {
        self.file
            .and_then(|(p, _)| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
    fn path_from_file(&self, text: &str) -> PathBuf {
        let p = PathBuf::from(text);
        if p.is_absolute() || self.base().as_os_str().is_empty() {
            p
        } else {
            self.base().join(p)
        }
    }
    fn bad<T>(&mut self, spanned: &Spanned<T>, field: &str, message: String, hint: &str) {
        let (path, _) = self.file.unwrap_or((Path::new(""), ""));
        let err = UserError::new(message)
            .in_file(path)
            .at(self.at(spanned))
            .field(field.to_string())
            .hint(hint.to_string());
        self.errors.push(err);
    }
    fn record(&mut self, name: &'static str, value: String, origin: Origin) {
        self.entries.push(Entry {
            name,
            value,
            origin,
        });
    }
    /// One setting of `run`: a value the user gave (a flag, or the
    /// environment through clap) stands; else the file's value, converted
    /// by `from_file` (which reports a bad one and answers `None`),
    /// replaces it; else the default stands, shown as `default` or as
    /// itself.
    fn pick<R, T>(
        &mut self,
        name: &'static str,
        current: &mut T,
        raw: &Option<Spanned<R>>,
        from_file: impl FnOnce(&mut Self, &Spanned<R>) -> Option<T>,
        show: impl Fn(&T) -> String,
        default: Option<&str>,
    ) {
        match ((self.given)(name), raw) {
            (Some(origin), _) => self.record(name, show(current), origin),
            (None, Some(value)) => {
                if let Some(v) = from_file(self, value) {
                    *current = v;
                    let origin = Origin::File(self.at(value));
                    self.record(name, show(current), origin);
                }
            }
            (None, None) => {
                let shown = default.map_or_else(|| show(current), str::to_string);
                self.record(name, shown, Origin::Default)
            }
        }
    }
    fn phases(&mut self, spanned: &Spanned<Vec<String>>, field: &str) -> Vec<Phase> {
        let mut out = Vec::new();
        for name in spanned.get_ref() {
            match Phase::parse(name) {
                Some(p) => out.push(p),
                None => self.bad(
                    spanned,
                    field,
                    format!("unknown phase `{name}`"),
                    &format!("phases: {}", Phase::ALL.map(|p| p.name()).join(", ")),
                ),
            }
        }
        out
    }
}

fn shown_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn shown_path(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn shown_phases(phases: &[Phase]) -> String {
    phases
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The effective settings: `args` as the command line parsed them,
/// `given(id)` the origin of each argument the user gave (by its clap id),
/// `env` the environment, `file` the configuration file's path and text.
pub fn resolve(
    mut args: RunArgs,
    given: &dyn Fn(&str) -> Option<Origin>,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<(&Path, &str)>,
) -> Result<Resolved, UserErrors> {
    let mut cx = Ctx {
        given,
        env,
        file,
        errors: Vec::new(),
        entries: Vec::new(),
    };
    let raw = match file {
        None => Raw::default(),
        Some((path, text)) => match toml::from_str::<Raw>(text) {
            Ok(raw) => raw,
            Err(e) => {
                return Err(toml_error(
                    path,
                    text,
                    &e,
                    "the configuration file's fields are listed in the README (Configuration)",
                )
                .into())
            }
        },
    };

    // Paths and lists.
    cx.pick(
        "profiles",
        &mut args.selection.profiles,
        &raw.profiles,
        |cx, p| Some(p.get_ref().iter().map(|s| cx.path_from_file(s)).collect()),
        |v| shown_paths(v),
        Some("./health-checks, else the installed profiles"),
    );
    cx.pick(
        "target",
        &mut args.selection.target,
        &raw.target,
        |cx, t| Some(Some(cx.path_from_file(t.get_ref()))),
        shown_path,
        Some("none (this machine, no vars)"),
    );
    cx.pick(
        "phases",
        &mut args.selection.phases,
        &raw.phases,
        |cx, p| Some(cx.phases(p, "phases")),
        |v| shown_phases(v),
        Some("all"),
    );
    cx.pick(
        "require_phases",
        &mut args.require_phases,
        &raw.require_phases,
        |cx, p| Some(cx.phases(p, "require_phases")),
        |v| shown_phases(v),
        Some("none"),
    );
    cx.pick(
        "image",
        &mut args.image,
        &raw.image,
        |cx, v| Some(Some(cx.path_from_file(v.get_ref()))),
        shown_path,
        Some("none (no image digest)"),
    );
    cx.pick(
        "key",
        &mut args.key,
        &raw.key,
        |cx, v| Some(Some(cx.path_from_file(v.get_ref()))),
        shown_path,
        Some("none (an ephemeral key)"),
    );
    cx.pick(
        "out",
        &mut args.out,
        &raw.out,
        |cx, v| Some(cx.path_from_file(v.get_ref())),
        |v| v.display().to_string(),
        None,
    );
    cx.pick(
        "jobs",
        &mut args.jobs,
        &raw.jobs,
        |cx, v| match u16::try_from(*v.get_ref()) {
            Ok(n) if (1..=256).contains(&n) => Some(n),
            _ => {
                let message = format!("jobs = {} is out of range", v.get_ref());
                cx.bad(v, "jobs", message, "write a number from 1 to 256");
                None
            }
        },
        u16::to_string,
        None,
    );
    cx.pick(
        "format",
        &mut args.format,
        &raw.format,
        |cx, v| match v.get_ref().as_str() {
            "human" => Some(Format::Human),
            "json" => Some(Format::Json),
            other => {
                let message = format!("format = \"{other}\" is not a format");
                cx.bad(v, "format", message, "write \"human\" or \"json\"");
                None
            }
        },
        |f| format_name(*f).to_string(),
        None,
    );
    cx.pick(
        "quiet",
        &mut args.quiet,
        &raw.quiet,
        |_, v| Some(*v.get_ref()),
        bool::to_string,
        None,
    );
    cx.pick(
        "smoke",
        &mut args.selection.smoke,
        &raw.smoke,
        |_, v| Some(*v.get_ref()),
        bool::to_string,
        None,
    );

    // The settings the environment has always given.
    let timeout = match ((cx.env)("VALIDATION_TIMEOUT"), &raw.validation_timeout) {
        (Some(v), _) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Some((
                Duration::from_secs(n),
                Origin::Env("VALIDATION_TIMEOUT".into()),
            )),
            _ => {
                cx.errors.push(
                    UserError::new(format!("VALIDATION_TIMEOUT=`{v}` is not a positive number of seconds"))
                        .field("VALIDATION_TIMEOUT")
                        .hint("set it to the run's bound in seconds, e.g. VALIDATION_TIMEOUT=1800 (the default)"),
                );
                None
            }
        },
        (None, Some(v)) => match HumanDuration::parse(v.get_ref()) {
            Ok(d) if d.0 > Duration::ZERO => Some((d.0, Origin::File(cx.at(v)))),
            Ok(_) => {
                cx.bad(
                    v,
                    "validation_timeout",
                    "validation_timeout must be more than zero".into(),
                    "write e.g. \"30m\"",
                );
                None
            }
            Err(e) => {
                cx.bad(v, "validation_timeout", e, "write e.g. \"30m\" or \"1h\"");
                None
            }
        },
        (None, None) => Some((Duration::from_secs(1800), Origin::Default)),
    };
    let mut flag = |name: &'static str,
                    env_name: &'static str,
                    raw_value: &Option<Spanned<bool>>,
                    default: bool|
     -> bool {
        let (value, origin) = match ((cx.env)(env_name).as_deref().map(str::trim), raw_value) {
            (Some("1") | Some("true") | Some("yes"), _) => (true, Origin::Env(env_name.into())),
            (Some("0") | Some("false") | Some("no"), _) => (false, Origin::Env(env_name.into())),
            (Some("") | None, None) => (default, Origin::Default),
            (Some(other), _) if !other.is_empty() => {
                cx.errors.push(
                    UserError::new(format!("{env_name}=`{other}` is not 0 or 1"))
                        .field(env_name)
                        .hint(format!("set {env_name}=1 or {env_name}=0")),
                );
                (default, Origin::Env(env_name.into()))
            }
            (_, Some(v)) => (*v.get_ref(), Origin::File(cx.at(v))),
            (Some(_), None) => (default, Origin::Default),
        };
        cx.record(name, value.to_string(), origin);
        value
    };
    let safe_mode = flag("safe_mode", "SAFE_MODE", &raw.safe_mode, true);
    let debug = flag("debug", "DEBUG", &raw.debug, false);
    if let Some((d, origin)) = &timeout {
        cx.record(
            "validation_timeout",
            HumanDuration(*d).to_string(),
            origin.clone(),
        );
    }
    if !cx.errors.is_empty() {
        return Err(UserErrors(cx.errors));
    }
    Ok(Resolved {
        args,
        settings: EnvSettings {
            validation_timeout: timeout.map(|t| t.0).unwrap_or(Duration::from_secs(1800)),
            safe_mode,
            debug,
        },
        file: file.map(|(p, _)| p.to_path_buf()),
        entries: cx.entries,
    })
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Human => "human",
        Format::Json => "json",
    }
}

/// `config show`'s table: each setting, its value and where it came from.
pub fn render(resolved: &Resolved) -> String {
    let mut out = match &resolved.file {
        Some(path) => format!("configuration file: {}\n", path.display()),
        None => format!("configuration file: none (--config, {CONFIG_ENV} or ./{FILE_NAME})\n"),
    };
    let width = resolved
        .entries
        .iter()
        .map(|e| e.value.chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    for e in &resolved.entries {
        out.push_str(&format!(
            "{:<20} {:<width$}  {}\n",
            e.name,
            e.value,
            e.origin,
            width = width
        ));
    }
    out
}

/// `config show`: the effective settings and their origins, the target's
/// secrets by name only, then every problem a run would refuse (exit 2),
/// else what it would run (exit 0).
pub fn show(resolved: &Resolved) -> i32 {
    print!("{}", render(resolved));
    let args = &resolved.args;
    let mut problems = Vec::new();
    if let Some(image) = &args.image {
        if !image.is_file() {
            problems.push(
                UserError::new(format!(
                    "image {} does not exist or is not a file",
                    image.display()
                ))
                .field("image"),
            );
        }
    }
    if let Some(path) = &args.key {
        if let Err(e) = crate::sign::keys::load_signing_key(path) {
            problems.push(e);
        }
    }
    match prepare(&args.selection, &resolved.settings) {
        Ok((target, _, plan)) => {
            let secrets: Vec<&String> = target.values.secrets.keys().collect();
            if !secrets.is_empty() {
                println!("secrets of the target (values never shown):");
                for name in secrets {
                    println!("  {name} = [REDACTED]");
                }
            }
            if problems.is_empty() {
                println!(
                    "ok: {} check(s) in {} phase(s) would run",
                    plan.checks.len(),
                    plan.phases().len()
                );
                return exit::SUCCESS;
            }
        }
        Err(e) => problems.extend(e.0),
    }
    report_user_errors(&UserErrors(problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::shared::Selection;

    fn args() -> RunArgs {
        RunArgs {
            selection: Selection {
                profiles: Vec::new(),
                target: None,
                phases: Vec::new(),
                smoke: false,
            },
            image: None,
            key: None,
            out: PathBuf::from("artifacts"),
            jobs: 16,
            format: Format::Human,
            require_phases: Vec::new(),
            quiet: false,
        }
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    fn origin_of(r: &Resolved, name: &str) -> String {
        let e = r.entries.iter().find(|e| e.name == name).unwrap();
        format!("{} <- {}", e.value, e.origin)
    }

    const FILE: &str = "profiles = [\"health-checks\", \"/abs/vm.toml\"]\ntarget = \"targets/p6.toml\"\njobs = 4\nrequire_phases = [\"agent\"]\nvalidation_timeout = \"45m\"\nsafe_mode = false\nsmoke = true\n";

    #[test]
    fn flag_beats_environment_beats_file_beats_default() {
        let path = Path::new("/etc/rave/spinup-smoke.toml");
        // The file alone: its values, paths relative to its directory.
        let r = resolve(args(), &|_| None, &none, Some((path, FILE))).unwrap();
        assert_eq!(
            r.args.selection.profiles,
            [
                PathBuf::from("/etc/rave/health-checks"),
                PathBuf::from("/abs/vm.toml")
            ]
        );
        assert_eq!(
            r.args.selection.target,
            Some(PathBuf::from("/etc/rave/targets/p6.toml"))
        );
        assert_eq!(r.args.jobs, 4);
        assert_eq!(r.args.require_phases, [Phase::Agent]);
        assert!(r.args.selection.smoke);
        assert_eq!(r.settings.validation_timeout, Duration::from_secs(2700));
        assert!(!r.settings.safe_mode);
        assert_eq!(origin_of(&r, "jobs"), "4 <- /etc/rave/spinup-smoke.toml:3");
        assert_eq!(
            origin_of(&r, "validation_timeout"),
            "2700s <- /etc/rave/spinup-smoke.toml:5"
        );
        assert_eq!(origin_of(&r, "out"), "artifacts <- default");

        // The environment beats the file; a flag beats both.
        let env = |k: &str| match k {
            "VALIDATION_TIMEOUT" => Some("60".to_string()),
            "SAFE_MODE" => Some("1".to_string()),
            _ => None,
        };
        let mut given_args = args();
        given_args.jobs = 2;
        let given = |id: &str| (id == "jobs").then(|| Origin::Flag("--jobs".into()));
        let r = resolve(given_args, &given, &env, Some((path, FILE))).unwrap();
        assert_eq!(r.args.jobs, 2);
        assert_eq!(origin_of(&r, "jobs"), "2 <- flag --jobs");
        assert_eq!(r.settings.validation_timeout, Duration::from_secs(60));
        assert_eq!(
            origin_of(&r, "validation_timeout"),
            "60s <- env VALIDATION_TIMEOUT"
        );
        assert!(r.settings.safe_mode);

        // Nothing anywhere: the defaults.
        let r = resolve(args(), &|_| None, &none, None).unwrap();
        assert_eq!(r.settings.validation_timeout, Duration::from_secs(1800));
        assert!(r.settings.safe_mode && !r.settings.debug);
        assert!(
            render(&r).contains("configuration file: none"),
            "{}",
            render(&r)
        );
        assert!(r.entries.iter().all(|e| e.origin == Origin::Default));
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_line_and_field() {
        let path = Path::new("spinup-smoke.toml");
        let text = "jobs = 0\nformat = \"yaml\"\nphases = [\"services\", \"nope\"]\nvalidation_timeout = \"5\"\n";
        let env = |k: &str| (k == "DEBUG").then(|| "maybe".to_string());
        let errors = resolve(args(), &|_| None, &env, Some((path, text))).unwrap_err();
        let shown = errors.to_string();
        for (needle, line) in [
            ("jobs = 0 is out of range", "spinup-smoke.toml:1"),
            ("format = \"yaml\"", "spinup-smoke.toml:2"),
            ("unknown phase `nope`", "spinup-smoke.toml:3"),
            ("missing unit", "spinup-smoke.toml:4"),
        ] {
            assert!(
                shown.contains(needle) && shown.contains(line),
                "{needle} at {line}: {shown}"
            );
        }
        assert!(shown.contains("DEBUG=`maybe` is not 0 or 1"), "{shown}");
        assert_eq!(errors.0.len(), 5, "{shown}");

        // An unknown key is named with its line and the fix.
        let errors = resolve(
            args(),
            &|_| None,
            &none,
            Some((path, "jobs = 2\ntoken = \"x\"\n")),
        )
        .unwrap_err();
        let shown = errors.to_string();
        assert!(
            shown.contains("unknown field `token`") && shown.contains(":2:"),
            "{shown}"
        );
    }

    #[test]
    fn the_file_is_the_flags_the_environments_or_the_one_here() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(locate(None, &none, dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(FILE_NAME), "").unwrap();
        assert_eq!(
            locate(None, &none, dir.path()).unwrap(),
            Some(dir.path().join(FILE_NAME))
        );
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "").unwrap();
        let env = |k: &str| (k == CONFIG_ENV).then(|| other.display().to_string());
        assert_eq!(locate(None, &env, dir.path()).unwrap(), Some(other.clone()));
        let missing = dir.path().join("missing.toml");
        let e = locate(Some(&missing), &env, dir.path()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("--config"));
        let env = |k: &str| (k == CONFIG_ENV).then(|| "/nowhere.toml".to_string());
        let e = locate(None, &env, dir.path()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(CONFIG_ENV));
    }
}
