//! The host tables of a target: `[host]` (the default host) and
//! `[hosts.NAME]` (a host that claims the checks of some profiles), raw to
//! checked. Every problem names the file, line, field and the fix; none
//! echoes what might be a key.
//!
//! ```toml
//! [host]
//! transport = "ssh"                       # or "local" (the default)
//! address = "p6.example.org"
//! port = 22
//! user = "rave"
//! identity = { secret = "host_ssh_key" }  # a [secrets] entry
//! known_hosts = "p6.known_hosts"          # or host_key = "SHA256:..."
//! trust_on_first_use = false
//! sudo = false
//! connect_timeout = "10s"
//! via = "direct"                          # or "host"
//! [hosts.guest]
//! profiles = ["security"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use toml::Spanned;

use crate::check::HumanDuration;
use crate::error::{Location, UserError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    #[serde(default)]
    transport: Option<Spanned<String>>,
    #[serde(default)]
    address: Option<Spanned<String>>,
    #[serde(default)]
    port: Option<Spanned<i64>>,
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    identity: Option<Spanned<toml::Value>>,
    #[serde(default)]
    known_hosts: Option<Spanned<String>>,
    #[serde(default)]
    host_key: Option<Spanned<String>>,
    #[serde(default)]
    trust_on_first_use: Option<Spanned<bool>>,
    #[serde(default)]
    sudo: Option<Spanned<bool>>,
    #[serde(default)]
    connect_timeout: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    via: Option<Spanned<String>>,
    #[serde(default)]
    profiles: Option<Spanned<Vec<String>>>,
}

/// A checked host table.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// `None` for `[host]`, else the NAME of `[hosts.NAME]`.
    pub name: Option<String>,
    pub transport: Transport,
    /// Every command on this host runs as root through `sudo -n`.
    pub sudo: bool,
    /// Network kinds without `via` go through this host (`via = "host"`).
    pub via_host: bool,
    /// The `[profile]` names whose checks run here (named hosts only).
    pub profiles: Vec<String>,
}

impl HostSpec {
    /// `[host]` or `[hosts.NAME]`, as the docs and errors write it.
    pub fn table(&self) -> String {
        match &self.name {
            None => "[host]".into(),
            Some(name) => format!("[hosts.{name}]"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Local,
    Ssh(SshSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SshSpec {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// The `[secrets]` entry holding the private key.
    pub identity_secret: String,
    /// That secret's file, when it comes from one.
    pub identity_file: Option<PathBuf>,
    /// Resolved against the target file's directory.
    pub known_hosts: Option<PathBuf>,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub host_key: Option<String>,
    pub trust_on_first_use: bool,
    pub connect_timeout: Duration,
}

/// The default of `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the host tables may use from the rest of the target.
pub(super) struct Context<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    /// Every `[secrets]` name, and its file when it comes from one.
    pub secrets: &'a BTreeMap<String, Option<PathBuf>>,
}

impl Context<'_> {
    fn at(&self, offset: usize) -> Location {
        Location::from_offset(self.path, self.text, offset)
    }
    /// `path` relative to the target file's directory.
    fn relative(&self, path: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }
}

const SSH_ONLY: &str =
    "address, port, user, identity, known_hosts, host_key, trust_on_first_use and connect_timeout";

/// Checks one host table; `name` is `None` for `[host]`.
pub(super) fn check(
    cx: &Context,
    name: Option<&str>,
    table: &Spanned<RawHost>,
    errors: &mut Vec<UserError>,
) -> Option<HostSpec> {
    let raw = table.get_ref();
    let prefix = match name {
        None => "host".to_string(),
        Some(n) => format!("hosts.{n}"),
    };
    let shown = match name {
        None => "[host]".to_string(),
        Some(n) => format!("[hosts.{n}]"),
    };
    let before = errors.len();
    let mut fail = |offset: usize, field: &str, message: String, hint: String| {
        errors.push(
            UserError::new(message)
                .at(cx.at(offset))
                .field(format!("{prefix}.{field}"))
                .hint(hint),
        );
    };
    let table_at = table.span().start;

    let transport = match &raw.transport {
        None => "local",
        Some(t) => match t.get_ref().as_str() {
            "local" => "local",
            "ssh" => "ssh",
            other => {
                fail(
                    t.span().start,
                    "transport",
                    format!("{shown} has unknown transport `{other}`"),
                    "write `transport = \"ssh\"` for a host reached over ssh, or `transport = \"local\"` for this machine".into(),
                );
                "local"
            }
        },
    };
    let via_host = match &raw.via {
        None => false,
        Some(v) => match v.get_ref().as_str() {
            "direct" => false,
            "host" => true,
            other => {
                fail(
                    v.span().start,
                    "via",
                    format!("{shown} has unknown via `{other}`"),
                    "write `via = \"direct\"` (connect from here) or `via = \"host\"` (through the host's ssh connection)".into(),
                );
                false
            }
        },
    };
    let profiles = match (&raw.profiles, name) {
        (Some(p), None) => {
            fail(
                p.span().start,
                "profiles",
                "[host] is the default host and claims no profiles".into(),
                "move the host to `[hosts.NAME]` with `profiles = [...]`, or drop `profiles`: every check not claimed by a [hosts.NAME] runs on [host]".into(),
            );
            Vec::new()
        }
        (Some(p), Some(_)) if p.get_ref().is_empty() => {
            fail(
                p.span().start,
                "profiles",
                format!("{shown} claims no profile"),
                "list the `[profile] name`s whose checks run on this host, e.g. `profiles = [\"security\"]`".into(),
            );
            Vec::new()
        }
        (Some(p), Some(_)) => p.get_ref().clone(),
        (None, Some(_)) => {
            fail(
                table_at,
                "profiles",
                format!("{shown} claims no profile"),
                "add `profiles = [\"NAME\", ...]` with the `[profile] name`s whose checks run on this host".into(),
            );
            Vec::new()
        }
        (None, None) => Vec::new(),
    };
    let sudo = raw.sudo.as_ref().is_some_and(|s| *s.get_ref());

    if transport == "local" {
        let ssh_fields: [(&str, Option<usize>); 8] = [
            ("address", raw.address.as_ref().map(|s| s.span().start)),
            ("port", raw.port.as_ref().map(|s| s.span().start)),
            ("user", raw.user.as_ref().map(|s| s.span().start)),
            ("identity", raw.identity.as_ref().map(|s| s.span().start)),
            (
                "known_hosts",
                raw.known_hosts.as_ref().map(|s| s.span().start),
            ),
            ("host_key", raw.host_key.as_ref().map(|s| s.span().start)),
            (
                "trust_on_first_use",
                raw.trust_on_first_use.as_ref().map(|s| s.span().start),
            ),
            (
                "connect_timeout",
                raw.connect_timeout.as_ref().map(|s| s.span().start),
            ),
        ];
        for (field, at) in ssh_fields {
            if let Some(at) = at {
                fail(
                    at,
                    field,
                    format!("`{field}` is only for an ssh host, and {shown} is local"),
                    format!("add `transport = \"ssh\"` to {shown}, or remove `{field}` ({SSH_ONLY} are ssh fields)"),
                );
            }
        }
        if via_host {
            if let Some(v) = &raw.via {
                fail(
                    v.span().start,
                    "via",
                    format!("`via = \"host\"` needs an ssh host, and {shown} is local"),
                    "remove `via` (a local host's services are reached directly) or make the host `transport = \"ssh\"`".into(),
                );
            }
        }
        return (errors.len() == before).then(|| HostSpec {
            name: name.map(str::to_string),
            transport: Transport::Local,
            sudo,
            via_host,
            profiles,
        });
    }

    let required = |field: &str,
                    value: &Option<Spanned<String>>,
                    example: &str,
                    errors: &mut Vec<UserError>|
     -> Option<String> {
        match value {
            Some(v) if !v.get_ref().trim().is_empty() => Some(v.get_ref().trim().to_string()),
            other => {
                errors.push(
                    UserError::new(format!("{shown} is an ssh host without `{field}`"))
                        .at(cx.at(other.as_ref().map_or(table_at, |v| v.span().start)))
                        .field(format!("{prefix}.{field}"))
                        .hint(format!("add `{field} = {example}` to {shown}")),
                );
                None
            }
        }
    };
    let address = required("address", &raw.address, "\"p6.example.org\"", errors);
    let user = required("user", &raw.user, "\"rave\"", errors);
    let mut fail = |offset: usize, field: &str, message: String, hint: String| {
        errors.push(
            UserError::new(message)
                .at(cx.at(offset))
                .field(format!("{prefix}.{field}"))
                .hint(hint),
        );
    };
    let port = match &raw.port {
        None => 22,
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(port) if port > 0 => port,
            _ => {
                fail(
                    p.span().start,
                    "port",
                    format!("{shown} has port {}, which is not a TCP port", p.get_ref()),
                    "write a port from 1 to 65535, or leave `port` out for 22".into(),
                );
                22
            }
        },
    };
    let identity = match &raw.identity {
        None => {
            fail(
                table_at,
                "identity",
                format!("{shown} is an ssh host without `identity`"),
                "add `identity = { secret = \"host_ssh_key\" }` and `[secrets] host_ssh_key = { file = \"/run/secrets/host_ssh_key\" }` (or `{ env = \"VAR\" }`)".into(),
            );
            None
        }
        Some(v) => identity_secret(cx, &shown, v.get_ref()).map_or_else(
            |(message, hint)| {
                fail(v.span().start, "identity", message, hint);
                None
            },
            Some,
        ),
    };
    let trust_on_first_use = raw
        .trust_on_first_use
        .as_ref()
        .is_some_and(|t| *t.get_ref());
    let known_hosts = raw
        .known_hosts
        .as_ref()
        .map(|k| (k.span().start, cx.relative(Path::new(k.get_ref()))));
    let host_key = raw
        .host_key
        .as_ref()
        .map(|k| (k.span().start, k.get_ref().trim().to_string()));
    match (&known_hosts, &host_key) {
        (None, None) => fail(
            table_at,
            "known_hosts",
            format!("{shown} is an ssh host without a pinned host key"),
            "add `known_hosts = \"p6.known_hosts\"` (a known_hosts file, relative to the target) or `host_key = \"SHA256:...\"` (the fingerprint `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the host)".into(),
        ),
        (Some(_), Some((at, _))) => fail(
            *at,
            "host_key",
            format!("{shown} pins its host key twice (`known_hosts` and `host_key`)"),
            "keep one of the two: `known_hosts` (a file) or `host_key` (a fingerprint)".into(),
        ),
        (None, Some((at, pin))) => {
            if let Err(why) = check_pin(pin) {
                fail(
                    *at,
                    "host_key",
                    why,
                    "copy the SHA256 fingerprint that `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the host, e.g. `host_key = \"SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU\"`".into(),
                );
            }
        }
        (Some((at, file)), None) => {
            if !trust_on_first_use && !file.is_file() {
                fail(
                    *at,
                    "known_hosts",
                    format!("{shown} names known_hosts file {}, which does not exist", file.display()),
                    "create it with the host's key line (`ssh-keyscan -p PORT HOST > FILE`, then check its fingerprint with the host's owner), fix the path (it is relative to the target file), or set `trust_on_first_use = true` to record the key on first contact".into(),
                );
            }
        }
    }
    if let Some(t) = &raw.trust_on_first_use {
        if *t.get_ref() && known_hosts.is_none() {
            fail(
                t.span().start,
                "trust_on_first_use",
                format!("{shown} trusts on first use without a known_hosts file to record the key in"),
                "add `known_hosts = \"FILE\"` (the key is recorded there), or remove `trust_on_first_use` when the host key is pinned with `host_key`".into(),
            );
        }
    }
    let connect_timeout = match &raw.connect_timeout {
        None => DEFAULT_CONNECT_TIMEOUT,
        Some(d) if d.get_ref().0.is_zero() => {
            fail(
                d.span().start,
                "connect_timeout",
                format!("{shown} has a zero connect_timeout"),
                "write a duration such as `connect_timeout = \"10s\"`".into(),
            );
            DEFAULT_CONNECT_TIMEOUT
        }
        Some(d) => d.get_ref().0,
    };
    if errors.len() != before {
        return None;
    }
    let (identity_secret, identity_file) = identity?;
    Some(HostSpec {
        name: name.map(str::to_string),
        transport: Transport::Ssh(SshSpec {
            address: address?,
            port,
            user: user?,
            identity_secret,
            identity_file,
            known_hosts: known_hosts.map(|(_, p)| p),
            host_key: host_key.map(|(_, k)| k),
            trust_on_first_use,
            connect_timeout,
        }),
        sudo,
        via_host,
        profiles,
    })
}

/// `identity = { secret = "NAME" }` naming a known secret: the name and
/// its file; else the message and the fix (never echoing a key).
fn identity_secret(
    cx: &Context,
    shown: &str,
    value: &toml::Value,
) -> Result<(String, Option<PathBuf>), (String, String)> {
    let fix = "write `identity = { secret = \"host_ssh_key\" }` and add `host_ssh_key = { file = \"/run/secrets/host_ssh_key\" }` (or `{ env = \"VAR\" }`) to [secrets]";
    match value {
        toml::Value::String(s) => {
            let looks_like_key = s.contains("PRIVATE KEY") || s.contains('\n') || s.len() > 200;
            if looks_like_key {
                Err((
                    format!("{shown} has its private key written inline; keys must never be stored in a target file"),
                    format!("remove the key from the file; {fix}"),
                ))
            } else {
                Err((
                    format!("{shown} names its identity as a path string (`{s}`); the identity must be a secret"),
                    format!("write `identity = {{ secret = \"host_ssh_key\" }}` and add `host_ssh_key = {{ file = \"{s}\" }}` to [secrets]"),
                ))
            }
        }
        toml::Value::Table(t) if t.len() == 1 && t.get("secret").is_some_and(|v| v.is_str()) => {
            let name = t.get("secret").and_then(|v| v.as_str()).unwrap_or_default();
            match cx.secrets.get(name) {
                Some(file) => Ok((name.to_string(), file.clone())),
                None => {
                    let known: Vec<&str> = cx.secrets.keys().map(String::as_str).collect();
                    Err((
                        format!("{shown} names identity secret `{name}`, which [secrets] does not define"),
                        if known.is_empty() {
                            format!("add `{name} = {{ file = \"/run/secrets/{name}\" }}` (or `{{ env = \"VAR\" }}`) to [secrets]")
                        } else {
                            format!(
                                "add `{name} = {{ file = \"/run/secrets/{name}\" }}` to [secrets], or name one of: {}",
                                known.join(", ")
                            )
                        },
                    ))
                }
            }
        }
        _ => Err((
            format!("{shown} has an identity that is not `{{ secret = \"NAME\" }}`"),
            fix.to_string(),
        )),
    }
}

/// `SHA256:` and 43 base64 characters (32 bytes), as ssh-keygen prints.
fn check_pin(pin: &str) -> Result<(), String> {
    let Some(b64) = pin.strip_prefix("SHA256:") else {
        return Err(format!(
            "host_key `{pin}` is not a SHA256 fingerprint (it starts with `SHA256:`; MD5 fingerprints are not accepted)"
        ));
    };
    match base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(format!(
            "host_key `{pin}` is not a SHA256 fingerprint (`SHA256:` and 43 base64 characters)"
        )),
    }
}

/// No profile is claimed by two hosts.
pub(super) fn check_claims(
    cx: &Context,
    hosts: &BTreeMap<String, Spanned<RawHost>>,
    errors: &mut Vec<UserError>,
) {
    let mut claimed: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, table) in hosts {
        let Some(profiles) = &table.get_ref().profiles else {
            continue;
        };
        let mut own = BTreeSet::new();
        for profile in profiles.get_ref() {
            if !own.insert(profile.as_str()) {
                continue;
            }
            if let Some(first) = claimed.insert(profile.as_str(), name.as_str()) {
                errors.push(
                    UserError::new(format!(
                        "profile `{profile}` is claimed by two hosts: [hosts.{first}] and [hosts.{name}]"
                    ))
                    .at(cx.at(profiles.span().start))
                    .field(format!("hosts.{name}.profiles"))
                    .hint(format!(
                        "a profile's checks run on one host: remove `{profile}` from one of the two `profiles` lists"
                    )),
                );
            }
        }
    }
}
