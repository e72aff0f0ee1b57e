//! Check kinds: one folder per kind (`checks/<kind>/`), each with `spec.rs`
//! (the TOML table a check declares and its validation), `probe.rs` (gathers
//! facts through the `ProbeContext`), `judge.rs` (pure: spec + facts ->
//! verdict) and a `mod.rs` that composes them into `run(spec, ctx)`.
//!
//! Adding a kind: write `checks/<kind>/`, then add one line to the
//! `check_kinds!` list below. Every kind is documented in docs/checks.md.

use std::sync::Arc;

use serde::Deserialize;

use crate::check::{HumanDuration, Phase, Probe, ProbeContext, RawRetry, Severity, Verdict};

pub mod ran;
#[cfg(any(test, feature = "testkit"))]
pub mod testutil;
pub mod via;

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

/// A `base_url` field: trimmed, without a trailing slash, and http(s), else
/// an error that shows `example` as the fix.
pub fn http_base_url(raw: &str, example: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/').to_string();
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(format!(
            "`base_url = \"{raw}\"` is not an http(s) URL; write e.g. `base_url = \"{example}\"`"
        ))
    }
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

macro_rules! check_kinds {
    ($( $key:ident => $variant:ident ),* $(,)?) => {
        $( pub mod $key; )*

        /// A resolved probe declaration: one variant per probe kind.
        #[derive(Debug, Clone)]
        pub enum ProbeSpec { $( $variant($key::Spec), )* }

        impl ProbeSpec {
            /// Every probe kind, as written in profiles (`[check.<kind>]`).
            pub const KINDS: &'static [&'static str] = &[$( stringify!($key) ),*];



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

        impl Probe for ProbeSpec {
            fn kind(&self) -> &'static str {
                match self { $( ProbeSpec::$variant(_) => stringify!($key), )* }
            }
            fn run<'a>(&'a self, ctx: &'a ProbeContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + 'a>> {
                match self { $( ProbeSpec::$variant(spec) => Box::pin($key::run(spec, ctx)), )* }
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
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
            /// `always`: run once `needs` finished, whatever they concluded.
            #[serde(default)]
            pub when: Option<crate::check::When>,
            /// `true`: part of the quick look `--smoke` selects.
            #[serde(default)]
            pub smoke: bool,
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

// One line per check kind: `<folder> => <Variant>`.
check_kinds! {
    tcp => Tcp,
    postgres => Postgres,
    matrix => Matrix,
    prometheus => Prometheus,
    llm => Llm,
    command => Command,
    file => File,
    process => Process,
    ports => Ports,
    dns => Dns,
    http => Http,
    tls => Tls,
    budget => Budget,
    flake_lock => FlakeLock,
    sops => Sops,
    secret_scan => SecretScan,
    memory => Memory,
    facts => Facts,
    build => Build,
    image => Image,
    vm => Vm,
    vm_command => VmCommand,
    systemd => Systemd,
    sandbox => Sandbox,
    container => Container,
    oidc => Oidc,
    sshd => Sshd,
    nftables => Nftables,
    agent_command => AgentCommand,
    git => Git,
    gitlab_pipeline => GitlabPipeline,
}

impl ProbeSpec {
    /// The spec as the check model's probe.
    pub fn into_probe(self) -> Arc<dyn Probe> {
        Arc::new(self)
    }
}
