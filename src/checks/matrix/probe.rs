//! Asks the homeserver's client API what one assertion needs and records
//! the exchanges: versions, server version, a registration attempt, the
//! federation endpoints, a login/whoami/logout session, a media round
//! trip, the login flows, or an SSO sign-in through the identity provider
//! followed by a token login.
//!
//! Every request is bounded by the check's deadline. Access tokens are
//! removed from recorded answers and passwords are never recorded.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::judge::{Exchange, Facts, Media, Reply, Session};
use super::spec::{Assertion, Password, Spec};
use crate::check::sessions::Closer;
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::error::error_chain;

/// Largest recorded body (bytes); the rest is cut.
const BODY_EXCERPT_BYTES: usize = 2000;

/// Why a probe gathered no facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// No HTTP client (e.g. an unreadable `ca_file`).
    Client(String),
    /// The exchanges did not finish before the check's deadline.
    Deadline,
}

/// The exchanges of the spec's assertion, all within the deadline.
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Result<Facts, ProbeError> {
    let client = http_client(spec, ctx, route)
        .await
        .map_err(ProbeError::Client)?;
    let api = Api {
        client,
        base_url: &spec.base_url,
        ctx,
    };
    tokio::time::timeout(ctx.remaining(), gather(spec, &api))
        .await
        .map_err(|_| ProbeError::Deadline)
}

/// The client of every exchange, on the check's route (the SSO flow's
/// redirects through the identity provider included).
async fn http_client(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Result<reqwest::Client, String> {
    via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline)
        .await?
        .user_agent(crate::web::USER_AGENT)
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

    /// The run's session for `user` (logged in by the first check that
    /// needs it, reused by the others, logged out when the run ends), then a
    /// whoami of this check's own. Returns the session and the access token.
    async fn shared_session(&self, user: &str, password: &Password) -> (Session, Option<String>) {
        let key = format!(
            "matrix {} {user} (password {})",
            self.base_url,
            &hex::encode(Sha256::digest(password.0.as_bytes()))[..12]
        );
        let opened = self
            .ctx
            .sessions
            .get_or_open(&key, || async {
                let (login, token) = self.login(user, password).await;
                let Some(token) = token else {
                    return Err(login);
                };
                let closer = logout_later(self.client.clone(), self.base_url.to_string(), token.clone());
                Ok((
                    OpenSession {
                        token,
                        login,
                        at: chrono::Utc::now(),
                    },
                    Some(closer),
                ))
            })
            .await;
        match opened {
            Ok(shared) => {
                let open = &shared.session;
                let note = if shared.opened_here {
                    format!("the run's session for {user}: logged in here, shared with the run's other checks, logged out when the run ends")
                } else {
                    format!(
                        "the run's session for {user}, logged in at {} by an earlier check and reused (logged out when the run ends)",
                        open.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    )
                };
                let (mut session, token) = self
                    .whoami_after((open.login.clone(), Some(open.token.clone())))
                    .await;
                session.shared = Some(note);
                (session, token)
            }
            Err(login) => self.whoami_after((login, None)).await,
        }
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
                shared: None,
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
            let (session, _) = api.shared_session(user, password).await;
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
    let (session, token) = api.shared_session(user, password).await;
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
    Facts::MediaRoundtrip {
        session,
        upload: Some(upload),
        downloads,
        media: Some(media),
    }
}

/// A login the run shares; the token never leaves memory.
struct OpenSession {
    token: String,
    login: Exchange,
    at: chrono::DateTime<chrono::Utc>,
}

/// Logs `token` out when the run ends (on the route of the check that
/// opened it).
fn logout_later(client: reqwest::Client, base_url: String, token: String) -> Closer {
    Box::new(move |deadline| {
        Box::pin(async move {
            let left = deadline
                .saturating_duration_since(std::time::Instant::now())
                .max(Duration::from_millis(1));
            let response = client
                .post(format!("{base_url}/_matrix/client/v3/logout"))
                .bearer_auth(&token)
                .json(&json!({}))
                .timeout(left)
                .send()
                .await
                .map_err(|e| format!("logout failed: {}", error_chain(&e)))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("logout answered {}", response.status()))
            }
        })
    })
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
pub fn remove_tokens(value: &mut Value) {
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
