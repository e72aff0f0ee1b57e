//! Probes gather facts from real systems; each kind lives in its own module
//! with its declaration (`Spec`, the TOML table of a check) and its
//! `probe(spec, ctx) -> Verdict`, which gathers facts and hands them to the
//! pure judge of the same name under `judge/`.
//!
//! **Architecture invariant:** a probe never decides pass/fail itself and
//! never waits past `ctx.deadline`; the runner also drops it at the deadline.
//!
//! Adding a probe kind: write `probe/<kind>.rs` and `judge/<kind>.rs`, then
//! add one line to the `probe_kinds!` list below.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::judge::Verdict;
use crate::model::{HumanDuration, Phase, Severity};

pub mod budget;
pub mod build;
pub mod command;
pub mod container;
pub mod dns;
pub mod exec;
pub mod file;
pub mod http;
pub mod image;
pub mod matrix;
pub mod oidc;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod sandbox;
pub mod systemd;
pub mod tcp;
#[cfg(test)]
pub mod testutil;
pub mod tls;
pub mod vm;
pub mod vm_command;

pub use exec::{
    CommandExecutor, CommandOutput, CommandSpec, ExecError, FakeExecutor, LocalExecutor,
};

/// The error and every cause, on one line ("error sending request: ...:
/// Connection refused").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Refuses a table that sets a field its assertion does not use: `set`
/// lists each optional field and whether it is present, `uses` the fields
/// the assertion reads.
pub fn reject_unused_fields(
    assertion: &str,
    set: &[(&str, bool)],
    uses: &[&str],
) -> Result<(), String> {
    match set
        .iter()
        .find(|(field, present)| *present && !uses.contains(field))
    {
        Some((field, _)) => Err(format!(
            "`{field}` does not apply to `assert = \"{assertion}\"`; remove it"
        )),
        None => Ok(()),
    }
}

/// Adds the CA certificates of a profile's `ca_file` (PEM) to an HTTP
/// client's trusted roots.
pub fn trust_ca_file(
    mut builder: reqwest::ClientBuilder,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::ClientBuilder, String> {
    let Some(ca_file) = ca_file else {
        return Ok(builder);
    };
    let pem = std::fs::read(ca_file).map_err(|e| {
        format!(
            "cannot read ca_file {}: {e}; point it at the PEM file of the CA that signed the server's certificate",
            ca_file.display()
        )
    })?;
    for certificate in reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("ca_file {} is not PEM: {e}", ca_file.display()))?
    {
        builder = builder.add_root_certificate(certificate);
    }
    Ok(builder)
}

/// A password from a profile: deserialized from a string, never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What a probe may use while it runs.
#[derive(Clone)]
pub struct ProbeContext {
    /// Where commands run (this host, ssh, a VM).
    pub executor: Arc<dyn CommandExecutor>,
    /// The end of this attempt: every network step must finish before it.
    pub deadline: Instant,
    /// The run's artifacts directory (probes may store evidence files here).
    pub artifacts_dir: PathBuf,
    /// What earlier checks and phases measured (for budget checks).
    pub so_far: Arc<RunSoFar>,
}

/// Facts of the run so far: phase wall times and check metrics. The runner
/// records them; `budget` checks read them.
#[derive(Debug, Default)]
pub struct RunSoFar {
    inner: std::sync::Mutex<SoFar>,
}

#[derive(Debug, Default)]
struct SoFar {
    phase_ms: std::collections::BTreeMap<Phase, u64>,
    metrics: std::collections::HashMap<String, std::collections::BTreeMap<String, f64>>,
}

impl RunSoFar {
    pub fn record_phase(&self, phase: Phase, ms: u64) {
        if let Ok(mut s) = self.inner.lock() {
            s.phase_ms.insert(phase, ms);
        }
    }
    pub fn record_metrics(&self, check: &str, metrics: &std::collections::BTreeMap<String, f64>) {
        if let Ok(mut s) = self.inner.lock() {
            s.metrics.insert(check.to_string(), metrics.clone());
        }
    }
    pub fn phase_ms(&self, phase: Phase) -> Option<u64> {
        self.inner.lock().ok()?.phase_ms.get(&phase).copied()
    }
    pub fn metric(&self, check: &str, name: &str) -> Option<f64> {
        self.inner
            .lock()
            .ok()?
            .metrics
            .get(check)?
            .get(name)
            .copied()
    }
}

impl ProbeContext {
    /// Time left in this attempt.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
    /// A context for unit tests: local executor, deadline in `secs`.
    pub fn for_tests(secs: u64) -> ProbeContext {
        ProbeContext {
            executor: Arc::new(LocalExecutor),
            deadline: Instant::now() + Duration::from_secs(secs),
            artifacts_dir: std::env::temp_dir(),
            so_far: Arc::new(RunSoFar::default()),
        }
    }
}

/// Raw retry table of a check or of `[defaults]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Stop after this many attempts; absent: retry until the deadline.
    pub attempts: Option<u32>,
    /// First backoff (default 250ms).
    pub initial: Option<HumanDuration>,
    /// Largest backoff (default 5s).
    pub max: Option<HumanDuration>,
    /// Growth factor (default 2.0).
    pub factor: Option<f64>,
}

macro_rules! probe_kinds {
    ($( $key:ident => $variant:ident ),* $(,)?) => {
        /// A resolved probe declaration: one variant per probe kind.
        #[derive(Debug, Clone)]
        pub enum ProbeSpec { $( $variant($key::Spec), )* }

        impl ProbeSpec {
            /// Every probe kind, as written in profiles (`[check.<kind>]`).
            pub const KINDS: &'static [&'static str] = &[$( stringify!($key) ),*];

            pub fn kind(&self) -> &'static str {
                match self { $( ProbeSpec::$variant(_) => stringify!($key), )* }
            }

            /// Gathers facts and judges them.
            pub async fn run(&self, ctx: &ProbeContext) -> Verdict {
                match self { $( ProbeSpec::$variant(spec) => $key::probe(spec, ctx).await, )* }
            }

            /// Deserializes the (interpolated) table of probe `kind`.
            pub fn from_value(kind: &str, value: toml::Value) -> Result<ProbeSpec, String> {
                match kind {
                    $( stringify!($key) => value
                        .try_into::<$key::Spec>()
                        .map(ProbeSpec::$variant)
                        .map_err(|e| e.to_string()), )*
                    other => Err(format!("unknown probe kind `{other}`")),
                }
            }
        }

        /// One `[[check]]` as written in a profile, before defaults and
        /// target values are applied. Exactly one probe table must be set.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawCheck {
            pub id: toml::Spanned<String>,
            pub phase: Phase,
            #[serde(default)]
            pub description: Option<String>,
            /// Groups the check under `service_health.<service>`; defaults to
            /// the profile's service, else the id's first segment.
            #[serde(default)]
            pub service: Option<String>,
            #[serde(default)]
            pub severity: Option<Severity>,
            #[serde(default)]
            pub timeout: Option<HumanDuration>,
            #[serde(default)]
            pub retry: Option<RawRetry>,
            #[serde(default)]
            pub needs: Vec<toml::Spanned<String>>,
            /// What to do when the check fails, shown with the failure.
            #[serde(default)]
            pub hint: Option<String>,
            $( #[serde(default)] pub $key: Option<toml::Spanned<toml::Value>>, )*
        }

        impl RawCheck {
            /// The probe tables that are present: kind, span and raw value.
            /// They are checked against the kind's `Spec` after interpolation.
            pub fn probe_tables(&self) -> Vec<(&'static str, &toml::Spanned<toml::Value>)> {
                let mut kinds = Vec::new();
                $( if let Some(s) = &self.$key { kinds.push((stringify!($key), s)); } )*
                kinds
            }
        }
    };
}

// One line per probe kind: `<module> => <Variant>`.
probe_kinds! {
    tcp => Tcp,
    postgres => Postgres,
    matrix => Matrix,
    prometheus => Prometheus,
    command => Command,
    file => File,
    process => Process,
    ports => Ports,
    dns => Dns,
    http => Http,
    tls => Tls,
    budget => Budget,
    build => Build,
    image => Image,
    vm => Vm,
    vm_command => VmCommand,
    systemd => Systemd,
    sandbox => Sandbox,
    container => Container,
    oidc => Oidc,
}
