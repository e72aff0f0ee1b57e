//! Judges what a Matrix homeserver answered against one assertion.
//!
//! Decisions that need saying:
//! - registration is closed when an unauthenticated `POST /register` is
//!   refused (403 `M_FORBIDDEN`) or the endpoint is not served (404/405).
//!   Any user-interactive auth flow (401 with `flows`), even one gated by
//!   a token or an email, means registration is open.
//! - federation is disabled when, on the client listener, both
//!   `/_matrix/federation/v1/version` and `/_matrix/key/v2/server` answer
//!   with a 4xx status (not served). A 2xx on either means it is served; a
//!   5xx or no answer proves nothing and fails.

use serde_json::Value;

use super::spec::{version_numbers, Assertion, Spec};
use crate::check::{all_of, Verdict};

/// One HTTP request and what came back (tokens removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// `METHOD /path`.
    pub request: String,
    pub reply: Result<Reply, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// An excerpt of the body (JSON re-serialized without tokens).
    pub body: String,
    pub json: Option<Value>,
    /// Body size in bytes.
    pub size: usize,
}

impl Exchange {
    pub fn status(&self) -> Option<u16> {
        self.reply.as_ref().ok().map(|r| r.status)
    }
    pub fn json(&self) -> Option<&Value> {
        self.reply.as_ref().ok().and_then(|r| r.json.as_ref())
    }
    /// The Matrix `errcode` of an error answer.
    pub fn errcode(&self) -> Option<&str> {
        self.json()?.get("errcode")?.as_str()
    }
    fn is_success(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }
    /// "GET /x -> 200 {...}" for evidence.
    pub fn describe(&self) -> String {
        match &self.reply {
            Ok(r) => format!("{} -> {} {}", self.request, r.status, r.body),
            Err(e) => format!("{} -> error: {e}", self.request),
        }
    }
    /// "status 403 M_FORBIDDEN: Registration has been disabled" or the error.
    pub fn summary(&self) -> String {
        match &self.reply {
            Err(e) => format!("no answer: {e}"),
            Ok(r) => {
                let mut text = format!("status {}", r.status);
                if let Some(code) = self.errcode() {
                    text.push_str(&format!(" {code}"));
                }
                if let Some(error) = self
                    .json()
                    .and_then(|j| j.get("error"))
                    .and_then(Value::as_str)
                {
                    text.push_str(&format!(": {error}"));
                }
                text
            }
        }
    }
}

/// A login, the whoami that follows it, and the logout.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub login: Exchange,
    pub whoami: Option<Exchange>,
    pub logout: Option<Exchange>,
    /// Set when the login is the run's shared session: how it was shared
    /// (opened here, or reused and when it was opened); the run logs it out
    /// when it ends, so `logout` stays empty.
    pub shared: Option<String>,
}

impl Session {
    fn exchanges(&self) -> Vec<&Exchange> {
        std::iter::once(&self.login)
            .chain(self.whoami.iter())
            .chain(self.logout.iter())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub uploaded_bytes: usize,
    pub uploaded_sha256: String,
    pub content_uri: Option<String>,
    pub downloaded_bytes: Option<usize>,
    pub downloaded_sha256: Option<String>,
}

/// What one probe attempt found, per assertion. (Built once per attempt,
/// so the size difference between variants does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    Versions {
        versions: Exchange,
        server_version: Vec<Exchange>,
    },
    ServerVersion {
        attempts: Vec<Exchange>,
    },
    RegistrationClosed {
        /// The localpart the probe tried to register.
        localpart: String,
        register: Exchange,
    },
    FederationDisabled {
        federation_version: Exchange,
        server_keys: Exchange,
    },
    LoginWhoami {
        session: Session,
    },
    MediaRoundtrip {
        session: Session,
        upload: Option<Exchange>,
        downloads: Vec<Exchange>,
        media: Option<Media>,
    },
    SsoAdvertised {
        login_flows: Exchange,
    },
    /// A sign-in through the identity provider, then a token login.
    SsoLogin {
        /// The browser's requests (no queries, so no codes or tokens).
        steps: Vec<String>,
        /// Why the sign-in did not yield a login token, if it did not.
        sign_in: Result<(), String>,
        session: Option<Session>,
    },
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    match (&spec.assertion, facts) {
        (
            Assertion::Versions { expect },
            Facts::Versions {
                versions,
                server_version,
            },
        ) => judge_versions(expect, versions, server_version),
        (Assertion::ServerVersion { min_version }, Facts::ServerVersion { attempts }) => {
            judge_server_version(min_version.as_deref(), attempts)
        }
        (
            Assertion::RegistrationClosed,
            Facts::RegistrationClosed {
                localpart,
                register,
            },
        ) => judge_registration_closed(localpart, register),
        (
            Assertion::FederationDisabled,
            Facts::FederationDisabled {
                federation_version,
                server_keys,
            },
        ) => all_of(vec![
            not_served(federation_version, "the federation API"),
            not_served(server_keys, "the server signing keys"),
        ]),
        (Assertion::LoginWhoami { user, .. }, Facts::LoginWhoami { session }) => {
            judge_login_whoami(user, session)
        }
        (
            Assertion::MediaRoundtrip { user, .. },
            Facts::MediaRoundtrip {
                session,
                upload,
                downloads,
                media,
            },
        ) => judge_media(user, session, upload.as_ref(), downloads, media.as_ref()),
        (Assertion::SsoAdvertised { identity_provider }, Facts::SsoAdvertised { login_flows }) => {
            judge_sso(identity_provider.as_deref(), login_flows)
        }
        (
            Assertion::SsoLogin {
                user,
                identity_provider,
                ..
            },
            Facts::SsoLogin {
                steps,
                sign_in,
                session,
            },
        ) => judge_sso_login(user, identity_provider, steps, sign_in, session.as_ref()),
        (assertion, facts) => Verdict::fail(
            format!("{assertion:?}"),
            format!("internal error: facts of another assertion: {facts:?}"),
        ),
    }
}

fn verdict(pass: bool, expected: String, found: String) -> Verdict {
    if pass {
        Verdict::pass(expected, found)
    } else {
        Verdict::fail(expected, found)
    }
}

/// The answer was not the JSON success we needed: say what it was.
fn unexpected(expected: String, exchange: &Exchange) -> Verdict {
    Verdict::fail(
        expected,
        format!("{}: {}", exchange.request, exchange.summary()),
    )
    .with_evidence(exchange.describe())
}

fn judge_versions(expect: &[String], versions: &Exchange, server: &[Exchange]) -> Verdict {
    let expected = format!("/_matrix/client/versions lists {}", expect.join(", "));
    let listed: Vec<&str> = match versions.json().and_then(|j| j.get("versions")) {
        Some(Value::Array(items)) if versions.is_success() => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => return unexpected(expected, versions),
    };
    let missing: Vec<&str> = expect
        .iter()
        .map(String::as_str)
        .filter(|v| !listed.contains(v))
        .collect();
    let found = if missing.is_empty() {
        format!("all listed (server speaks {} versions)", listed.len())
    } else {
        format!("missing: {}", missing.join(", "))
    };
    let mut evidence = format!("versions: {}", listed.join(", "));
    match reported_version(server) {
        Some((version, source)) => {
            evidence.push_str(&format!("\nserver version {version} (from {source})"))
        }
        None => {
            evidence.push_str("\nserver version not reported by the admin or federation endpoint")
        }
    }
    verdict(missing.is_empty(), expected, found).with_evidence(evidence)
}

/// The first version an endpoint reported, with the endpoint.
fn reported_version(attempts: &[Exchange]) -> Option<(String, String)> {
    attempts.iter().filter(|e| e.is_success()).find_map(|e| {
        let json = e.json()?;
        let version = json
            .get("server_version")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| {
                let server = json.get("server")?;
                let name = server.get("name").and_then(Value::as_str).unwrap_or("");
                let version = server.get("version").and_then(Value::as_str)?;
                Some(format!("{name} {version}").trim().to_string())
            })?;
        Some((version, e.request.clone()))
    })
}

fn judge_server_version(min_version: Option<&str>, attempts: &[Exchange]) -> Verdict {
    let expected = match min_version {
        Some(min) => format!("the server reports version {min} or newer"),
        None => "the server reports its version".to_string(),
    };
    let evidence = attempts
        .iter()
        .map(Exchange::describe)
        .collect::<Vec<_>>()
        .join("\n");
    let Some((version, source)) = reported_version(attempts) else {
        let tried: Vec<String> = attempts
            .iter()
            .map(|e| format!("{}: {}", e.request, e.summary()))
            .collect();
        return Verdict::fail(
            expected,
            format!("no version reported ({})", tried.join("; ")),
        )
        .with_evidence(evidence);
    };
    let found = format!("{version} (from {source})");
    let pass = match min_version {
        None => true,
        Some(min) => {
            // "Synapse 1.98.0" or "1.163.2 (b=main,abc123)": the first
            // token that starts with a digit is the version.
            let number = version
                .split_whitespace()
                .find(|t| t.starts_with(|c: char| c.is_ascii_digit()))
                .map(version_numbers)
                .unwrap_or_default();
            !number.is_empty() && number >= version_numbers(min)
        }
    };
    verdict(pass, expected, found).with_evidence(evidence)
}

fn judge_registration_closed(localpart: &str, register: &Exchange) -> Verdict {
    let expected =
        "POST /_matrix/client/v3/register is refused (403 M_FORBIDDEN) or not served".to_string();
    let evidence = register.describe();
    let Ok(reply) = &register.reply else {
        return unexpected(expected, register);
    };
    let flows = flows_of(register);
    match (reply.status, register.errcode()) {
        (403, Some("M_FORBIDDEN")) => {
            Verdict::pass(expected, format!("refused: {}", register.summary())).with_evidence(evidence)
        }
        (404 | 405, _) => Verdict::pass(
            expected,
            format!("register endpoint not served ({})", register.summary()),
        )
        .with_evidence(evidence),
        (401, _) if !flows.is_empty() => Verdict::fail(
            expected,
            format!(
                "registration is open: the server offers the flows {}",
                flows.join(" | ")
            ),
        )
        .with_evidence(evidence),
        (200..=299, _) => Verdict::fail(
            expected,
            format!(
                "registration is open: account `{localpart}` was created without any check; deactivate it"
            ),
        )
        .with_evidence(evidence),
        _ => Verdict::fail(
            expected,
            format!("cannot tell: unexpected answer {}", register.summary()),
        )
        .with_evidence(evidence),
    }
}

/// The stages of each user-interactive auth flow ("m.login.dummy").
fn flows_of(exchange: &Exchange) -> Vec<String> {
    let Some(Value::Array(flows)) = exchange.json().and_then(|j| j.get("flows")) else {
        return Vec::new();
    };
    flows
        .iter()
        .map(|flow| match flow.get("stages") {
            Some(Value::Array(stages)) => stages
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" + "),
            _ => flow
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
        })
        .collect()
}

fn not_served(exchange: &Exchange, what: &str) -> Verdict {
    let expected = format!("{what} not served ({} answers 4xx)", exchange.request);
    let evidence = exchange.describe();
    let verdict = match exchange.status() {
        Some(s) if (400..500).contains(&s) => Verdict::pass(
            expected,
            format!("{}: {}", exchange.request, exchange.summary()),
        ),
        Some(s) if (200..300).contains(&s) => Verdict::fail(
            expected,
            format!("{} is served ({})", exchange.request, exchange.summary()),
        ),
        _ => Verdict::fail(
            expected,
            format!(
                "cannot tell: {} -> {}",
                exchange.request,
                exchange.summary()
            ),
        ),
    };
    verdict.with_evidence(evidence)
}

fn user_matches(user: &str, user_id: &str) -> bool {
    if user.starts_with('@') {
        user_id == user
    } else {
        user_id.starts_with(&format!("@{user}:"))
    }
}

/// Login and whoami properties shared by `login_whoami` and `media_roundtrip`.
fn judge_session(user: &str, session: &Session) -> Vec<Verdict> {
    let login_expected = format!("password login of `{user}` succeeds");
    let logged_in_as = session
        .login
        .json()
        .and_then(|j| j.get("user_id"))
        .and_then(Value::as_str);
    let login = match logged_in_as {
        Some(id) if session.login.is_success() => {
            Verdict::pass(login_expected, format!("logged in as {id}"))
        }
        _ => Verdict::fail(
            login_expected,
            format!("login refused: {}", session.login.summary()),
        ),
    };
    let mut parts = vec![login];
    if let Some(whoami) = &session.whoami {
        let expected = format!("whoami names `{user}`");
        let id = whoami
            .json()
            .and_then(|j| j.get("user_id"))
            .and_then(Value::as_str);
        parts.push(match id {
            Some(id) if whoami.is_success() => verdict(
                user_matches(user, id) && Some(id) == logged_in_as,
                expected,
                format!("whoami says {id}"),
            ),
            _ => Verdict::fail(expected, format!("whoami: {}", whoami.summary())),
        });
    }
    parts
}

fn session_evidence(session: &Session) -> Vec<String> {
    session
        .shared
        .iter()
        .cloned()
        .chain(session.exchanges().into_iter().map(Exchange::describe))
        .collect()
}

fn judge_login_whoami(user: &str, session: &Session) -> Verdict {
    let mut parts = judge_session(user, session);
    if let Some(logout) = &session.logout {
        parts.push(verdict(
            logout.is_success(),
            "logout succeeds (no device left behind)".into(),
            format!("logout: {}", logout.summary()),
        ));
    }
    all_of(parts).with_evidence(session_evidence(session).join("\n"))
}

fn judge_sso_login(
    user: &str,
    idp: &str,
    steps: &[String],
    sign_in: &Result<(), String>,
    session: Option<&Session>,
) -> Verdict {
    let trail = steps.join("\n");
    match (sign_in, session) {
        (Ok(()), Some(session)) => {
            let mut v = judge_login_whoami(user, session);
            v.expected = format!(
                "an SSO sign-in through `{idp}` and a token login succeed; whoami names `{user}`; logout succeeds"
            );
            v.evidence = format!("{trail}\n{}", v.evidence);
            v
        }
        (Err(e), _) => Verdict::fail(
            format!("an SSO sign-in through `{idp}` ends in a working access token for `{user}`"),
            format!("the SSO sign-in failed: {e}"),
        )
        .with_evidence(trail),
        (Ok(()), None) => Verdict::fail(
            format!("an SSO sign-in through `{idp}` ends in a working access token for `{user}`"),
            "no token login was attempted",
        )
        .with_evidence(trail),
    }
}

fn judge_media(
    user: &str,
    session: &Session,
    upload: Option<&Exchange>,
    downloads: &[Exchange],
    media: Option<&Media>,
) -> Verdict {
    let mut parts = judge_session(user, session);
    let mut evidence = session_evidence(session);
    if let (Some(upload), Some(media)) = (upload, media) {
        evidence.push(upload.describe());
        evidence.extend(downloads.iter().map(Exchange::describe));
        let expected = format!(
            "{} random bytes uploaded and downloaded unchanged",
            media.uploaded_bytes
        );
        parts.push(match (&media.content_uri, &media.downloaded_sha256) {
            (None, _) => Verdict::fail(expected, format!("upload failed: {}", upload.summary())),
            (Some(uri), None) => Verdict::fail(
                expected,
                format!(
                    "uploaded as {uri}, download failed: {}",
                    downloads
                        .last()
                        .map(Exchange::summary)
                        .unwrap_or_else(|| "not attempted".into())
                ),
            ),
            (Some(uri), Some(digest)) => verdict(
                digest == &media.uploaded_sha256
                    && media.downloaded_bytes == Some(media.uploaded_bytes),
                expected,
                format!(
                    "{uri}: downloaded {} bytes, sha256 {}",
                    media.downloaded_bytes.unwrap_or(0),
                    if digest == &media.uploaded_sha256 {
                        "matches"
                    } else {
                        "differs"
                    }
                ),
            ),
        });
        evidence.push(format!(
            "uploaded {} bytes sha256 {}; downloaded {} bytes sha256 {}",
            media.uploaded_bytes,
            media.uploaded_sha256,
            media
                .downloaded_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            media.downloaded_sha256.as_deref().unwrap_or("-")
        ));
    }
    let verdict = all_of(parts).with_evidence(evidence.join("\n"));
    match media.and_then(|m| m.downloaded_bytes) {
        Some(bytes) => verdict.with_metric("media_bytes", bytes as f64),
        None => verdict,
    }
}

fn judge_sso(identity_provider: Option<&str>, login_flows: &Exchange) -> Verdict {
    let expected = match identity_provider {
        Some(id) => format!("GET /_matrix/client/v3/login offers m.login.sso with provider `{id}`"),
        None => "GET /_matrix/client/v3/login offers m.login.sso with an identity provider".into(),
    };
    let Some(Value::Array(flows)) = login_flows
        .json()
        .and_then(|j| j.get("flows"))
        .filter(|_| login_flows.is_success())
    else {
        return unexpected(expected, login_flows);
    };
    let types: Vec<&str> = flows
        .iter()
        .filter_map(|f| f.get("type").and_then(Value::as_str))
        .collect();
    let providers: Vec<String> = flows
        .iter()
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("m.login.sso"))
        .filter_map(|f| f.get("identity_providers").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| {
            let id = p.get("id").and_then(Value::as_str)?;
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            Some(format!("{id} ({name})"))
        })
        .collect();
    let has_provider = match identity_provider {
        Some(id) => providers.iter().any(|p| p.starts_with(&format!("{id} ("))),
        None => !providers.is_empty(),
    };
    let found = if !types.contains(&"m.login.sso") {
        format!("no m.login.sso flow; flows: {}", types.join(", "))
    } else if providers.is_empty() {
        "m.login.sso offered without identity providers".to_string()
    } else {
        format!("m.login.sso with {}", providers.join(", "))
    };
    verdict(has_provider, expected, found).with_evidence(login_flows.describe())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(request: &str, status: u16, body: Value) -> Exchange {
        Exchange {
            request: request.into(),
            reply: Ok(Reply {
                status,
                body: body.to_string(),
                size: body.to_string().len(),
                json: Some(body),
            }),
        }
    }

    fn refused(request: &str) -> Exchange {
        Exchange {
            request: request.into(),
            reply: Err("error sending request: Connection refused".into()),
        }
    }

    fn spec(body: &str) -> Spec {
        toml::from_str(&format!("base_url = \"http://hs\"\n{body}")).unwrap()
    }

    fn check(spec_body: &str, facts: Facts, pass: bool, found_contains: &str) {
        let v = judge(&spec(spec_body), &facts);
        assert_eq!(v.pass, pass, "{spec_body}: {v:?}");
        assert!(v.found.contains(found_contains), "{spec_body}: {v:?}");
    }

    #[test]
    fn versions() {
        let facts = |versions: Exchange| Facts::Versions {
            versions,
            server_version: vec![reply(
                "GET /_synapse/admin/v1/server_version",
                200,
                json!({"server_version": "1.98.0"}),
            )],
        };
        let body = "assert = \"versions\"\nexpect_versions = [\"v1.1\", \"v1.11\"]";
        let ok = reply(
            "GET /_matrix/client/versions",
            200,
            json!({"versions": ["r0.6.1", "v1.1", "v1.11"]}),
        );
        check(body, facts(ok.clone()), true, "all listed");
        let v = judge(&spec(body), &facts(ok));
        assert!(v.evidence.contains("server version 1.98.0"), "{v:?}");
        let old = reply(
            "GET /_matrix/client/versions",
            200,
            json!({"versions": ["v1.1"]}),
        );
        check(body, facts(old), false, "missing: v1.11");
        check(
            body,
            facts(refused("GET /_matrix/client/versions")),
            false,
            "no answer",
        );
        check(
            body,
            facts(reply("GET /_matrix/client/versions", 502, json!(null))),
            false,
            "status 502",
        );
    }

    #[test]
    fn server_version_from_either_endpoint() {
        let admin_404 = reply(
            "GET /_synapse/admin/v1/server_version",
            404,
            json!({"errcode": "M_UNRECOGNIZED"}),
        );
        let federation = reply(
            "GET /_matrix/federation/v1/version",
            200,
            json!({"server": {"name": "Synapse", "version": "1.98.0"}}),
        );
        let facts = |a: Exchange, b: Exchange| Facts::ServerVersion {
            attempts: vec![a, b],
        };
        check(
            "assert = \"server_version\"",
            facts(admin_404.clone(), federation.clone()),
            true,
            "Synapse 1.98.0",
        );
        check(
            "assert = \"server_version\"\nmin_version = \"1.99\"",
            facts(admin_404.clone(), federation.clone()),
            false,
            "1.98.0",
        );
        check(
            "assert = \"server_version\"\nmin_version = \"1.9\"",
            facts(admin_404.clone(), federation),
            true,
            "1.98.0",
        );
        // A Synapse installed inside a git checkout appends build info.
        let admin_with_build = reply(
            "GET /_synapse/admin/v1/server_version",
            200,
            json!({"server_version": "1.163.2 (b=main,005a2b5)"}),
        );
        let fed_404 = reply(
            "GET /_matrix/federation/v1/version",
            404,
            json!({"errcode": "M_UNRECOGNIZED"}),
        );
        check(
            "assert = \"server_version\"\nmin_version = \"1.90\"",
            facts(admin_with_build, fed_404.clone()),
            true,
            "1.163.2",
        );
        check(
            "assert = \"server_version\"",
            facts(admin_404, fed_404),
            false,
            "no version reported",
        );
    }

    #[test]
    fn registration_closed_only_when_refused() {
        let facts = |register: Exchange| Facts::RegistrationClosed {
            localpart: "spinup-smoke-probe-1".into(),
            register,
        };
        let body = "assert = \"registration_closed\"";
        let req = "POST /_matrix/client/v3/register";
        check(
            body,
            facts(reply(
                req,
                403,
                json!({"errcode": "M_FORBIDDEN", "error": "Registration has been disabled"}),
            )),
            true,
            "Registration has been disabled",
        );
        check(
            body,
            facts(reply(req, 404, json!({"errcode": "M_UNRECOGNIZED"}))),
            true,
            "not served",
        );
        check(
            body,
            facts(reply(
                req,
                401,
                json!({"session": "s", "flows": [{"stages": ["m.login.dummy"]}]}),
            )),
            false,
            "open: the server offers the flows m.login.dummy",
        );
        check(
            body,
            facts(reply(
                req,
                401,
                json!({"flows": [{"stages": ["m.login.registration_token"]}]}),
            )),
            false,
            "m.login.registration_token",
        );
        check(
            body,
            facts(reply(
                req,
                200,
                json!({"user_id": "@spinup-smoke-probe-1:x"}),
            )),
            false,
            "was created",
        );
        check(
            body,
            facts(reply(req, 429, json!({"errcode": "M_LIMIT_EXCEEDED"}))),
            false,
            "cannot tell",
        );
        check(body, facts(refused(req)), false, "no answer");
    }

    #[test]
    fn federation_disabled_needs_both_endpoints_unserved() {
        let facts = |a: Exchange, b: Exchange| Facts::FederationDisabled {
            federation_version: a,
            server_keys: b,
        };
        let fed = "GET /_matrix/federation/v1/version";
        let keys = "GET /_matrix/key/v2/server";
        let not_found = |r| reply(r, 404, json!({"errcode": "M_UNRECOGNIZED"}));
        let body = "assert = \"federation_disabled\"";
        check(body, facts(not_found(fed), not_found(keys)), true, "404");
        check(
            body,
            facts(
                reply(fed, 200, json!({"server": {"name": "Synapse"}})),
                not_found(keys),
            ),
            false,
            "is served",
        );
        check(
            body,
            facts(
                not_found(fed),
                reply(keys, 200, json!({"server_name": "x"})),
            ),
            false,
            "/_matrix/key/v2/server is served",
        );
        check(
            body,
            facts(refused(fed), not_found(keys)),
            false,
            "cannot tell",
        );
    }

    fn session(login: Exchange, whoami_id: Option<&str>, logout_status: u16) -> Session {
        Session {
            whoami: whoami_id.map(|id| {
                reply(
                    "GET /_matrix/client/v3/account/whoami",
                    200,
                    json!({"user_id": id}),
                )
            }),
            logout: whoami_id
                .map(|_| reply("POST /_matrix/client/v3/logout", logout_status, json!({}))),
            login,
            shared: None,
        }
    }

    #[test]
    fn login_whoami() {
        let ok_login = reply(
            "POST /_matrix/client/v3/login",
            200,
            json!({"user_id": "@operator:rave.local", "access_token": "[removed]"}),
        );
        let body = "assert = \"login_whoami\"\nuser = \"@operator:rave.local\"\npassword = \"p\"";
        check(
            body,
            Facts::LoginWhoami {
                session: session(ok_login.clone(), Some("@operator:rave.local"), 200),
            },
            true,
            "whoami says @operator:rave.local",
        );
        let localpart = "assert = \"login_whoami\"\nuser = \"operator\"\npassword = \"p\"";
        check(
            localpart,
            Facts::LoginWhoami {
                session: session(ok_login.clone(), Some("@operator:rave.local"), 200),
            },
            true,
            "logged in as",
        );
        check(
            body,
            Facts::LoginWhoami {
                session: session(ok_login.clone(), Some("@admin:rave.local"), 200),
            },
            false,
            "whoami says @admin:rave.local",
        );
        check(
            body,
            Facts::LoginWhoami {
                session: session(ok_login, Some("@operator:rave.local"), 500),
            },
            false,
            "logout: status 500",
        );
        let refused_login = reply(
            "POST /_matrix/client/v3/login",
            403,
            json!({"errcode": "M_FORBIDDEN", "error": "Invalid username or password"}),
        );
        check(
            body,
            Facts::LoginWhoami {
                session: session(refused_login, None, 0),
            },
            false,
            "login refused: status 403 M_FORBIDDEN: Invalid username or password",
        );
    }

    #[test]
    fn media_roundtrip_compares_digests() {
        let body =
            "assert = \"media_roundtrip\"\nuser = \"@operator:rave.local\"\npassword = \"p\"";
        let login = reply(
            "POST /_matrix/client/v3/login",
            200,
            json!({"user_id": "@operator:rave.local"}),
        );
        let media = |down: Option<&str>| Media {
            uploaded_bytes: 10,
            uploaded_sha256: "aa".into(),
            content_uri: Some("mxc://rave.local/abc".into()),
            downloaded_bytes: down.map(|_| 10),
            downloaded_sha256: down.map(String::from),
        };
        let facts = |down: Option<&str>, status: u16| Facts::MediaRoundtrip {
            session: session(login.clone(), Some("@operator:rave.local"), 200),
            upload: Some(reply(
                "POST /_matrix/media/v3/upload",
                200,
                json!({"content_uri": "mxc://rave.local/abc"}),
            )),
            downloads: vec![reply(
                "GET /_matrix/client/v1/media/download/rave.local/abc",
                status,
                json!(null),
            )],
            media: Some(media(down)),
        };
        check(body, facts(Some("aa"), 200), true, "sha256 matches");
        check(body, facts(Some("bb"), 200), false, "sha256 differs");
        check(body, facts(None, 404), false, "download failed: status 404");
        let v = judge(&spec(body), &facts(Some("aa"), 200));
        assert!(v.evidence.contains("uploaded 10 bytes sha256 aa"), "{v:?}");
    }

    #[test]
    fn sso_advertised() {
        let flows = |f: Value| Facts::SsoAdvertised {
            login_flows: reply("GET /_matrix/client/v3/login", 200, json!({"flows": f})),
        };
        let sso = json!([{"type": "m.login.sso", "identity_providers": [{"id": "oidc-rave", "name": "RAVE"}]}, {"type": "m.login.token"}]);
        check(
            "assert = \"sso_advertised\"",
            flows(sso.clone()),
            true,
            "oidc-rave (RAVE)",
        );
        check(
            "assert = \"sso_advertised\"\nidentity_provider = \"oidc-rave\"",
            flows(sso.clone()),
            true,
            "oidc-rave",
        );
        check(
            "assert = \"sso_advertised\"\nidentity_provider = \"oidc-other\"",
            flows(sso),
            false,
            "oidc-rave",
        );
        check(
            "assert = \"sso_advertised\"",
            flows(json!([{"type": "m.login.password"}])),
            false,
            "no m.login.sso flow; flows: m.login.password",
        );
        check(
            "assert = \"sso_advertised\"",
            flows(json!([{"type": "m.login.sso"}])),
            false,
            "without identity providers",
        );
    }

    #[test]
    fn sso_login_passes_only_through_a_token_login_as_the_user() {
        let spec_body = "assert = \"sso_login\"\nidentity_provider = \"oidc-rave\"\nuser = \"alice\"\nidp_username = \"alice\"\nidp_password = \"p\"";
        let ok_login = reply(
            "POST /_matrix/client/v3/login",
            200,
            json!({"user_id": "@alice:rave.local"}),
        );
        let steps = vec!["GET http://syn/_synapse/client/oidc/callback -> 302 http://syn/_spinup-smoke/sso-return".to_string()];
        let facts = |sign_in: Result<(), String>, session: Option<Session>| Facts::SsoLogin {
            steps: steps.clone(),
            sign_in,
            session,
        };
        let good = session(ok_login.clone(), Some("@alice:rave.local"), 200);
        let v = judge(&spec(spec_body), &facts(Ok(()), Some(good)));
        assert!(v.pass, "{v:?}");
        assert!(
            v.evidence.contains("oidc/callback") && v.expected.contains("oidc-rave"),
            "{v:?}"
        );
        check(
            spec_body,
            facts(
                Ok(()),
                Some(session(ok_login, Some("@bob:rave.local"), 200)),
            ),
            false,
            "whoami says @bob:rave.local",
        );
        check(
            spec_body,
            facts(
                Err("the identity provider refused the sign-in of alice (status 401)".into()),
                None,
            ),
            false,
            "refused the sign-in",
        );
        check(
            spec_body,
            facts(
                Err("Synapse redirected back without a loginToken".into()),
                None,
            ),
            false,
            "without a loginToken",
        );
    }
}
