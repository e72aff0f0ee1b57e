//! `[check.matrix]`: asks a Matrix homeserver's client API one question:
//! which spec versions it speaks, its server version, whether registration
//! is closed and federation not served, whether a user can log in (and log
//! out), whether media survive an upload/download round trip, whether
//! SSO is advertised, and whether an SSO login through the identity
//! provider ends in a working access token.
//!
//! Every request is bounded by the check's deadline. Access tokens are
//! removed from recorded answers and passwords are never recorded.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::judge;
use super::judge::{Exchange, Facts, Media, Reply, Session};
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::error::error_chain;

/// Largest recorded body (bytes); the rest is cut.
const BODY_EXCERPT_BYTES: usize = 2000;
/// Largest media a round trip may upload.
const MAX_MEDIA_BYTES: usize = 10 * 1024 * 1024;

/// The table as written in a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// The client API base URL, e.g. `http://127.0.0.1:8008`.
    base_url: String,
    /// What to assert: versions, server_version, registration_closed,
    /// federation_disabled, login_whoami, media_roundtrip or sso_advertised.
    #[serde(rename = "assert")]
    assertion: AssertKind,
    /// `versions`: spec versions that `/_matrix/client/versions` must list, e.g. ["v1.1"].
    #[serde(default)]
    expect_versions: Option<Vec<String>>,
    /// `server_version`: the lowest acceptable server version, e.g. "1.90".
    #[serde(default)]
    min_version: Option<String>,
    /// `login_whoami`/`media_roundtrip`: a full user id (`@operator:rave.local`) or a localpart.
    #[serde(default)]
    user: Option<String>,
    /// That user's password, normally `${secret:...}`.
    #[serde(default)]
    password: Option<Password>,
    /// `media_roundtrip`: how many random bytes to upload (default 65536, at most 10 MiB).
    #[serde(default)]
    media_bytes: Option<usize>,
    /// `sso_advertised`: an identity provider id that must be listed (any one
    /// by default); `sso_login`: the one to sign in with, e.g. "oidc-rave".
    #[serde(default)]
    identity_provider: Option<String>,
    /// `sso_login`: the user name at the identity provider.
    #[serde(default)]
    idp_username: Option<String>,
    /// `sso_login`: that user's password there, normally `${secret:...}`.
    #[serde(default)]
    idp_password: Option<Password>,
    /// `sso_login`: where Synapse sends the login token; it must be under
    /// `sso.client_whitelist` (default `<base_url>/_spinup-smoke/sso-return`).
    #[serde(default)]
    return_url: Option<String>,
    /// A PEM file of CA certificates to trust for an https `base_url`.
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

/// The assertion names accepted by `assert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssertKind {
    Versions,
    ServerVersion,
    RegistrationClosed,
    FederationDisabled,
    LoginWhoami,
    MediaRoundtrip,
    SsoAdvertised,
    SsoLogin,
}

impl AssertKind {
    pub fn name(self) -> &'static str {
        match self {
            AssertKind::Versions => "versions",
            AssertKind::ServerVersion => "server_version",
            AssertKind::RegistrationClosed => "registration_closed",
            AssertKind::FederationDisabled => "federation_disabled",
            AssertKind::LoginWhoami => "login_whoami",
            AssertKind::MediaRoundtrip => "media_roundtrip",
            AssertKind::SsoAdvertised => "sso_advertised",
            AssertKind::SsoLogin => "sso_login",
        }
    }
}

/// A checked `[check.matrix]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// Without a trailing slash.
    pub base_url: String,
    pub ca_file: Option<PathBuf>,
    pub assertion: Assertion,
}

/// One assertion with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Assertion {
    /// `/_matrix/client/versions` lists every one of `expect`.
    Versions { expect: Vec<String> },
    /// The server reports its version (admin or federation endpoint),
    /// at least `min_version` when given.
    ServerVersion { min_version: Option<String> },
    /// A registration attempt without credentials is refused.
    RegistrationClosed,
    /// The federation API and the server-key endpoint are not served.
    FederationDisabled,
    /// Password login, whoami returns that user, logout succeeds.
    LoginWhoami { user: String, password: Password },
    /// Upload random bytes and download the same bytes.
    MediaRoundtrip {
        user: String,
        password: Password,
        bytes: usize,
    },
    /// The login flows include `m.login.sso` with an identity provider.
    SsoAdvertised { identity_provider: Option<String> },
    /// Sign in through the identity provider (its own form), log in with
    /// the login token Synapse hands back, whoami returns `user`, log out.
    SsoLogin {
        identity_provider: String,
        user: String,
        idp_username: String,
        idp_password: Password,
        return_url: Option<String>,
    },
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let kind = raw.assertion;
        let name = kind.name();
        let uses: &[&str] = match kind {
            AssertKind::Versions => &["expect_versions"],
            AssertKind::ServerVersion => &["min_version"],
            AssertKind::RegistrationClosed | AssertKind::FederationDisabled => &[],
            AssertKind::LoginWhoami => &["user", "password"],
            AssertKind::MediaRoundtrip => &["user", "password", "media_bytes"],
            AssertKind::SsoAdvertised => &["identity_provider"],
            AssertKind::SsoLogin => &[
                "identity_provider",
                "user",
                "idp_username",
                "idp_password",
                "return_url",
            ],
        };
        let set = [
            ("expect_versions", raw.expect_versions.is_some()),
            ("min_version", raw.min_version.is_some()),
            ("user", raw.user.is_some()),
            ("password", raw.password.is_some()),
            ("media_bytes", raw.media_bytes.is_some()),
            ("identity_provider", raw.identity_provider.is_some()),
            ("idp_username", raw.idp_username.is_some()),
            ("idp_password", raw.idp_password.is_some()),
            ("return_url", raw.return_url.is_some()),
        ];
        crate::checks::reject_unused_fields(name, &set, uses)?;
        let missing = |field: &str, example: &str| {
            format!("`assert = \"{name}\"` needs `{field}`, e.g. {example}")
        };
        let base_url = raw.base_url.trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "`base_url = \"{}\"` is not an http(s) URL; write e.g. `base_url = \"http://127.0.0.1:8008\"`",
                raw.base_url
            ));
        }
        let login = |raw: &RawSpec| -> Result<(String, Password), String> {
            let user = raw
                .user
                .clone()
                .ok_or_else(|| missing("user", "`user = \"@operator:rave.local\"`"))?;
            let password = raw.password.clone().ok_or_else(|| {
                missing(
                    "password",
                    "`password = \"${secret:synapse_operator_password}\"`",
                )
            })?;
            Ok((user, password))
        };
        let assertion = match kind {
            AssertKind::Versions => {
                let expect = raw
                    .expect_versions
                    .clone()
                    .ok_or_else(|| missing("expect_versions", "`expect_versions = [\"v1.1\"]`"))?;
                if expect.is_empty() {
                    return Err("`expect_versions` is empty; list at least one version".into());
                }
                Assertion::Versions { expect }
            }
            AssertKind::ServerVersion => {
                if let Some(v) = &raw.min_version {
                    if version_numbers(v).is_empty() {
                        return Err(format!(
                            "`min_version = \"{v}\"` is not a dotted version like \"1.90\""
                        ));
                    }
                }
                Assertion::ServerVersion {
                    min_version: raw.min_version.clone(),
                }
            }
            AssertKind::RegistrationClosed => Assertion::RegistrationClosed,
            AssertKind::FederationDisabled => Assertion::FederationDisabled,
            AssertKind::LoginWhoami => {
                let (user, password) = login(&raw)?;
                Assertion::LoginWhoami { user, password }
            }
            AssertKind::MediaRoundtrip => {
                let (user, password) = login(&raw)?;
                let bytes = raw.media_bytes.unwrap_or(65536);
                if bytes == 0 || bytes > MAX_MEDIA_BYTES {
                    return Err(format!(
                        "`media_bytes = {bytes}` must be between 1 and {MAX_MEDIA_BYTES}"
                    ));
                }
                Assertion::MediaRoundtrip {
                    user,
                    password,
                    bytes,
                }
            }
            AssertKind::SsoAdvertised => Assertion::SsoAdvertised {
                identity_provider: raw.identity_provider.clone(),
            },
            AssertKind::SsoLogin => Assertion::SsoLogin {
                identity_provider: raw.identity_provider.clone().ok_or_else(|| {
                    missing("identity_provider", "`identity_provider = \"oidc-rave\"`")
                })?,
                user: raw
                    .user
                    .clone()
                    .ok_or_else(|| missing("user", "`user = \"@alice:rave.local\"`"))?,
                idp_username: raw.idp_username.clone().ok_or_else(|| {
                    missing("idp_username", "`idp_username = \"${idp.test_user}\"`")
                })?,
                idp_password: raw.idp_password.clone().ok_or_else(|| {
                    missing(
                        "idp_password",
                        "`idp_password = \"${secret:idp_test_password}\"`",
                    )
                })?,
                return_url: raw.return_url.clone(),
            },
        };
        Ok(Spec {
            base_url,
            ca_file: raw.ca_file,
            assertion,
        })
    }
}

pub use crate::checks::Password;

/// The numbers of a dotted version ("1.98.0rc1" -> [1, 98, 0]).
pub fn version_numbers(version: &str) -> Vec<u64> {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let client = match http_client(spec) {
        Ok(c) => c,
        Err(e) => return Verdict::probe_error(format!("a client for {}", spec.base_url), e),
    };
    let api = Api {
        client,
        base_url: &spec.base_url,
        ctx,
    };
    let facts = match tokio::time::timeout(ctx.remaining(), gather(spec, &api)).await {
        Ok(facts) => facts,
        Err(_) => {
            return Verdict::probe_error(
                format!("an answer from {}", spec.base_url),
                "no answer before the check's deadline",
            )
        }
    };
    judge::judge(spec, &facts)
}

fn http_client(spec: &Spec) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("spinup-smoke/", env!("CARGO_PKG_VERSION")));
    crate::web::trust_ca_file(builder, spec.ca_file.as_deref())?
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", error_chain(&e)))
}

/// The homeserver's client API, every request bounded by the deadline.
struct Api<'a> {
    client: reqwest::Client,
    base_url: &'a str,
    ctx: &'a ProbeContext,
}

enum Body {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

impl Api<'_> {
    /// Sends one request. Returns the record (a body excerpt, tokens
    /// removed) and the raw body for the caller (media bytes, the login's
    /// token), which is never recorded.
    async fn exchange(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> (Exchange, Option<Vec<u8>>) {
        let request_line = format!("{method} {}", path_without_query_secrets(path));
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .timeout(self.ctx.remaining().max(Duration::from_millis(1)));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(v) => request.json(&v),
            Body::Bytes(b) => request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(b),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return (
                    Exchange {
                        request: request_line,
                        reply: Err(error_chain(&e)),
                    },
                    None,
                )
            }
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                return (
                    Exchange {
                        request: request_line,
                        reply: Err(format!(
                            "status {status}, then reading the body failed: {}",
                            error_chain(&e)
                        )),
                    },
                    None,
                )
            }
        };
        let mut json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if let Some(v) = &mut json {
            remove_tokens(v);
        }
        let body = match &json {
            Some(v) => crate::check::excerpt(&v.to_string(), BODY_EXCERPT_BYTES),
            None if content_type.starts_with("text/") || content_type.is_empty() => {
                crate::check::excerpt(&String::from_utf8_lossy(&bytes), BODY_EXCERPT_BYTES)
            }
            None => format!("[{} bytes of {content_type}]", bytes.len()),
        };
        let exchange = Exchange {
            request: request_line,
            reply: Ok(Reply {
                status,
                body,
                json,
                size: bytes.len(),
            }),
        };
        (exchange, Some(bytes))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Exchange {
        self.exchange(reqwest::Method::GET, path, token, Body::None)
            .await
            .0
    }

    async fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> Exchange {
        self.exchange(reqwest::Method::POST, path, token, Body::Json(body))
            .await
            .0
    }

    /// Logs in with a password. Returns the exchange (token removed) and
    /// the access token.
    async fn login(&self, user: &str, password: &Password) -> (Exchange, Option<String>) {
        self.login_with(json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": password.0,
            "initial_device_display_name": "spinup-smoke probe",
        }))
        .await
    }

    /// Logs in with any login body (password, `m.login.token`).
    async fn login_with(&self, body: Value) -> (Exchange, Option<String>) {
        let (exchange, raw) = self
            .exchange(
                reqwest::Method::POST,
                "/_matrix/client/v3/login",
                None,
                Body::Json(body),
            )
            .await;
        let succeeded = exchange.status().is_some_and(|s| (200..300).contains(&s));
        let token = raw
            .filter(|_| succeeded)
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|v| v.get("access_token")?.as_str().map(String::from));
        (exchange, token)
    }

    /// Logs in and asks whoami. Returns the session and the access token.
    async fn session(&self, user: &str, password: &Password) -> (Session, Option<String>) {
        let login = self.login(user, password).await;
        self.whoami_after(login).await
    }

    async fn whoami_after(
        &self,
        (login, token): (Exchange, Option<String>),
    ) -> (Session, Option<String>) {
        let whoami = match &token {
            Some(t) => Some(self.get("/_matrix/client/v3/account/whoami", Some(t)).await),
            None => None,
        };
        (
            Session {
                login,
                whoami,
                logout: None,
            },
            token,
        )
    }

    async fn logout(&self, token: &str) -> Exchange {
        self.post_json("/_matrix/client/v3/logout", Some(token), json!({}))
            .await
    }
}

async fn gather(spec: &Spec, api: &Api<'_>) -> Facts {
    match &spec.assertion {
        Assertion::Versions { .. } => Facts::Versions {
            versions: api.get("/_matrix/client/versions", None).await,
            server_version: server_version_exchanges(api).await,
        },
        Assertion::ServerVersion { .. } => Facts::ServerVersion {
            attempts: server_version_exchanges(api).await,
        },
        Assertion::RegistrationClosed => {
            let localpart = format!("spinup-smoke-probe-{}", random_hex(6));
            let register = api
                .post_json(
                    "/_matrix/client/v3/register?kind=user",
                    None,
                    json!({
                        "username": localpart,
                        "password": random_hex(24),
                        "inhibit_login": true,
                    }),
                )
                .await;
            Facts::RegistrationClosed {
                localpart,
                register,
            }
        }
        Assertion::FederationDisabled => Facts::FederationDisabled {
            federation_version: api.get("/_matrix/federation/v1/version", None).await,
            server_keys: api.get("/_matrix/key/v2/server", None).await,
        },
        Assertion::LoginWhoami { user, password } => {
            let (mut session, token) = api.session(user, password).await;
            if let Some(token) = &token {
                session.logout = Some(api.logout(token).await);
            }
            Facts::LoginWhoami { session }
        }
        Assertion::MediaRoundtrip {
            user,
            password,
            bytes,
        } => media_roundtrip(api, user, password, *bytes).await,
        Assertion::SsoAdvertised { .. } => Facts::SsoAdvertised {
            login_flows: api.get("/_matrix/client/v3/login", None).await,
        },
        Assertion::SsoLogin {
            identity_provider,
            idp_username,
            idp_password,
            return_url,
            ..
        } => {
            let return_to = return_url
                .clone()
                .unwrap_or_else(|| format!("{}/_spinup-smoke/sso-return", api.base_url));
            let mut steps = Vec::new();
            let token = sso_sign_in(
                api,
                identity_provider,
                &return_to,
                idp_username,
                idp_password,
                &mut steps,
            )
            .await;
            let session = match &token {
                Err(_) => None,
                Ok(login_token) => {
                    let login = api
                        .login_with(json!({
                            "type": "m.login.token",
                            "token": login_token,
                            "initial_device_display_name": "spinup-smoke probe (SSO)",
                        }))
                        .await;
                    let (mut session, access) = api.whoami_after(login).await;
                    if let Some(access) = &access {
                        session.logout = Some(api.logout(access).await);
                    }
                    Some(session)
                }
            };
            Facts::SsoLogin {
                steps,
                sign_in: token.map(|_| ()),
                session,
            }
        }
    }
}

/// Starts Synapse's SSO redirect for `idp`, signs in at the identity
/// provider through its form and returns the login token Synapse hands to
/// `return_to`.
async fn sso_sign_in(
    api: &Api<'_>,
    idp: &str,
    return_to: &str,
    username: &str,
    password: &Password,
    steps: &mut Vec<String>,
) -> Result<String, String> {
    use crate::web::browser::{Browser, Credentials, SignInEnd};
    let mut start = reqwest::Url::parse(&format!(
        "{}/_matrix/client/v3/login/sso/redirect/{idp}",
        api.base_url
    ))
    .map_err(|e| format!("the SSO redirect URL: {e}"))?;
    start
        .query_pairs_mut()
        .append_pair("redirectUrl", return_to);
    let mut browser = Browser::new(&api.client);
    let credentials = Credentials {
        username,
        password: &password.0,
        username_field: None,
    };
    let end = browser.sign_in(&start, return_to, &credentials).await;
    steps.append(&mut browser.steps);
    match end? {
        SignInEnd::Refused { status } => Err(format!(
            "the identity provider refused the sign-in of {username} (status {status})"
        )),
        SignInEnd::Arrived(url) => url
            .query_pairs()
            .find(|(k, _)| k == "loginToken")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| "Synapse redirected back without a loginToken".to_string()),
    }
}

/// The Synapse admin endpoint answers on the client listener; the
/// federation one only where federation is served.
async fn server_version_exchanges(api: &Api<'_>) -> Vec<Exchange> {
    vec![
        api.get("/_synapse/admin/v1/server_version", None).await,
        api.get("/_matrix/federation/v1/version", None).await,
    ]
}

async fn media_roundtrip(api: &Api<'_>, user: &str, password: &Password, size: usize) -> Facts {
    let (mut session, token) = api.session(user, password).await;
    let Some(token) = token else {
        return Facts::MediaRoundtrip {
            session,
            upload: None,
            downloads: Vec::new(),
            media: None,
        };
    };
    let payload: Vec<u8> = {
        use rand::RngCore;
        let mut bytes = vec![0u8; size];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes
    };
    let mut media = Media {
        uploaded_bytes: payload.len(),
        uploaded_sha256: hex::encode(Sha256::digest(&payload)),
        content_uri: None,
        downloaded_bytes: None,
        downloaded_sha256: None,
    };
    let (upload, _) = api
        .exchange(
            reqwest::Method::POST,
            "/_matrix/media/v3/upload?filename=spinup-smoke-probe.bin",
            Some(&token),
            Body::Bytes(payload),
        )
        .await;
    media.content_uri = upload
        .json()
        .and_then(|v| v.get("content_uri"))
        .and_then(Value::as_str)
        .map(String::from);
    let mut downloads = Vec::new();
    if let Some((server, media_id)) = media.content_uri.as_deref().and_then(parse_mxc) {
        // Authenticated media (Matrix 1.11) first, the legacy endpoint when
        // the server does not know it.
        let paths = [
            format!("/_matrix/client/v1/media/download/{server}/{media_id}"),
            format!("/_matrix/media/v3/download/{server}/{media_id}"),
        ];
        for path in paths {
            let (exchange, body) = api
                .exchange(reqwest::Method::GET, &path, Some(&token), Body::None)
                .await;
            let unrecognized = exchange.status() == Some(404)
                && exchange.errcode().is_none_or(|c| c == "M_UNRECOGNIZED");
            let ok = exchange.status().is_some_and(|s| (200..300).contains(&s));
            downloads.push(exchange);
            if ok {
                if let Some(body) = body {
                    media.downloaded_bytes = Some(body.len());
                    media.downloaded_sha256 = Some(hex::encode(Sha256::digest(&body)));
                }
                break;
            }
            if !unrecognized {
                break;
            }
        }
    }
    session.logout = Some(api.logout(&token).await);
    Facts::MediaRoundtrip {
        session,
        upload: Some(upload),
        downloads,
        media: Some(media),
    }
}

/// `mxc://server/media_id` -> (server, media_id), both URL-safe.
fn parse_mxc(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("mxc://")?;
    let (server, media_id) = rest.split_once('/')?;
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:[]".contains(c))
    };
    (safe(server) && safe(media_id)).then_some((server, media_id))
}

/// Replaces token values in a JSON answer.
fn remove_tokens(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.ends_with("_token") || key == "access_token" {
                    *v = Value::String("[removed]".into());
                } else {
                    remove_tokens(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(remove_tokens),
        _ => {}
    }
}

fn path_without_query_secrets(path: &str) -> String {
    match path.split_once('?') {
        Some((p, q)) if q.contains("token") => format!("{p}?[query removed]"),
        _ => path.to_string(),
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(&format!("base_url = \"http://hs:8008/\"\n{body}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_each_assertion() {
        let s = parse("assert = \"versions\"\nexpect_versions = [\"v1.1\"]").unwrap();
        assert_eq!(s.base_url, "http://hs:8008");
        assert_eq!(
            s.assertion,
            Assertion::Versions {
                expect: vec!["v1.1".into()]
            }
        );
        let s = parse("assert = \"media_roundtrip\"\nuser = \"@op:x\"\npassword = \"pw\"").unwrap();
        assert!(matches!(
            s.assertion,
            Assertion::MediaRoundtrip { bytes: 65536, .. }
        ));
        assert!(!format!("{s:?}").contains("pw\""));
        assert!(parse("assert = \"registration_closed\"").is_ok());
        assert!(parse("assert = \"sso_advertised\"\nidentity_provider = \"oidc-rave\"").is_ok());
    }

    #[test]
    fn rejects_wrong_fields_with_the_fix() {
        let cases = [
            ("assert = \"versions\"", "needs `expect_versions`"),
            (
                "assert = \"sso_login\"\nuser = \"alice\"\nidp_username = \"alice\"\nidp_password = \"p\"",
                "needs `identity_provider`",
            ),
            (
                "assert = \"sso_login\"\nidentity_provider = \"oidc-rave\"\nuser = \"alice\"\nidp_username = \"alice\"",
                "needs `idp_password`",
            ),
            (
                "assert = \"login_whoami\"\nuser = \"op\"\npassword = \"p\"\nidp_username = \"x\"",
                "`idp_username` does not apply",
            ),
            ("assert = \"versions\"\nexpect_versions = []", "is empty"),
            (
                "assert = \"login_whoami\"\nuser = \"op\"",
                "needs `password`",
            ),
            (
                "assert = \"federation_disabled\"\nuser = \"op\"",
                "`user` does not apply",
            ),
            (
                "assert = \"server_version\"\nmin_version = \"new\"",
                "not a dotted version",
            ),
            (
                "assert = \"media_roundtrip\"\nuser = \"a\"\npassword = \"b\"\nmedia_bytes = 0",
                "between 1",
            ),
            ("assert = \"open\"", "unknown variant"),
            (
                "assert = \"versions\"\nexpect_versions = [\"v1.1\"]\nurl = \"x\"",
                "unknown field `url`",
            ),
        ];
        for (body, expect) in cases {
            let err = parse(body).unwrap_err();
            assert!(err.contains(expect), "{body}: {err}");
        }
        let err =
            toml::from_str::<Spec>("base_url = \"hs:8008\"\nassert = \"registration_closed\"")
                .unwrap_err()
                .to_string();
        assert!(err.contains("not an http(s) URL"), "{err}");
    }

    #[test]
    fn version_numbers_read_dotted_versions() {
        assert_eq!(version_numbers("1.98.0"), vec![1, 98, 0]);
        assert_eq!(version_numbers("v1.11"), vec![1, 11]);
        assert_eq!(version_numbers("1.120.0rc1"), vec![1, 120, 0]);
        assert!(version_numbers("new").is_empty());
    }

    #[test]
    fn tokens_are_removed_from_answers() {
        let mut v = json!({"user_id": "@a:b", "access_token": "syt_secret", "nested": [{"refresh_token": "x"}]});
        remove_tokens(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("syt_secret") && !text.contains("\"x\""),
            "{text}"
        );
        assert!(text.contains("@a:b"));
    }

    #[test]
    fn mxc_uris() {
        assert_eq!(
            parse_mxc("mxc://rave.local/AbC_1"),
            Some(("rave.local", "AbC_1"))
        );
        assert_eq!(parse_mxc("mxc://rave.local/../admin"), None);
        assert_eq!(parse_mxc("https://x/y"), None);
    }
}
