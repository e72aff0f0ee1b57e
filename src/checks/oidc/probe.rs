//! Drives an OpenID Connect provider the way a browser and a relying party
//! would (openidconnect for discovery, the code exchange and ID-token
//! verification; a headless sign-in through the provider's own HTML form,
//! cookies kept across its redirects) and records what happened.
//!
//! Every request is bounded by the check's deadline; codes, tokens and
//! passwords never reach facts or evidence.

use std::str::FromStr;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreClient, CoreIdToken, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
};
use reqwest::Url;

use super::judge::{Discovery, Facts, Login, Outcome, Tamper};
use super::spec::{AssertKind, Spec};
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::error::error_chain;
use crate::web::browser::{text_of, without_query, Browser, Credentials, SignInEnd};

/// The steps taken and how the flow ended; a flow that could not get to
/// what is judged (unreachable, the deadline...) is `Outcome::Failed`.
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let mut steps = Vec::new();
    let outcome = match tokio::time::timeout(ctx.remaining(), gather(spec, ctx, route, &mut steps)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => Outcome::Failed("the flow did not finish before the check's deadline".into()),
    };
    Facts { steps, outcome }
}

async fn gather(
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
    steps: &mut Vec<String>,
) -> Result<Outcome, String> {
    let http = http_client(spec, ctx, route).await?;
    let issuer = IssuerUrl::new(spec.issuer.clone()).map_err(|e| format!("issuer: {e}"))?;
    steps.push(format!(
        "GET {}/.well-known/openid-configuration (and its jwks_uri)",
        spec.issuer
    ));
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| format!("discovery failed: {}", error_chain(&e)))?;
    if spec.assertion == AssertKind::Discovery {
        return discovery_facts(spec, &http, &metadata)
            .await
            .map(Outcome::Discovered);
    }
    let (Some(client_spec), user) = (&spec.client, &spec.user) else {
        return Err("internal: no client for a flow assertion".into());
    };
    let redirect = RedirectUrl::new(client_spec.redirect_uri.clone())
        .map_err(|e| format!("redirect_uri: {e}"))?;
    let client = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(client_spec.client_id.clone()),
        client_spec
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.0.clone())),
    )
    .set_redirect_uri(redirect);
    let mut browser = Browser::new(&http);

    if spec.assertion == AssertKind::ForeignRedirectRejected {
        let foreign = "https://spinup-smoke.invalid/not-registered";
        let mut url = Url::parse(metadata.authorization_endpoint().as_str())
            .map_err(|e| format!("authorization_endpoint: {e}"))?;
        let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
        url.query_pairs_mut()
            .append_pair("client_id", &client_spec.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("redirect_uri", foreign)
            .append_pair("state", CsrfToken::new_random().secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        let page = browser.get(&url).await?;
        steps.append(&mut browser.steps);
        let location = page.location.as_ref().map(without_query);
        let followed = page
            .location
            .as_ref()
            .is_some_and(|l| l.as_str().starts_with(foreign));
        return Ok(Outcome::ForeignRedirect {
            status: page.status,
            location,
            followed,
            answer: crate::check::excerpt(&text_of(&page.body), 200),
        });
    }

    let Some(user) = user else {
        return Err("internal: no user for a sign-in assertion".into());
    };
    let wrong = spec.assertion == AssertKind::WrongPasswordRejected;
    let password = if wrong {
        // Certainly not the user's password: theirs with more appended.
        format!("{}-not-the-password", user.password.0)
    } else {
        user.password.0.clone()
    };
    let started = Instant::now();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &client_spec.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (auth_url, state, nonce) = request.url();
    let credentials = Credentials {
        username: &user.username,
        password: &password,
        username_field: user.username_field.as_deref(),
    };
    let end = browser
        .sign_in(&auth_url, &client_spec.redirect_uri, &credentials)
        .await;
    steps.append(&mut browser.steps);
    let arrived = match end? {
        SignInEnd::Refused { status } => return Ok(Outcome::LoginRefused { status }),
        SignInEnd::Arrived(url) => url,
    };
    let param = |key: &str| {
        arrived
            .query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let (code, returned_state) = match param("code") {
        Some(_) if wrong => return Ok(Outcome::CodeIssued),
        Some(code) => (code, param("state")),
        None => {
            return Err(format!(
                "the provider redirected back with error `{}`",
                param("error").unwrap_or_else(|| "(no code, no error)".into())
            ))
        }
    };
    if returned_state.as_deref() != Some(state.secret().as_str()) {
        return Err("the provider returned a different `state` than was sent".into());
    }
    steps.push(format!(
        "POST {} (code + PKCE verifier)",
        without_query(
            &Url::parse(metadata.token_endpoint().map(|t| t.as_str()).unwrap_or(""))
                .unwrap_or_else(|_| auth_url.clone())
        )
    ));
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| format!("no token endpoint: {e}"))?
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(|e| format!("the code exchange failed: {}", error_chain(&e)))?;
    let id_token = token
        .extra_fields()
        .id_token()
        .ok_or("the token response has no id_token")?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .map_err(|e| format!("the ID token does not verify: {}", error_chain(&e)))?;
    let login_ms = started.elapsed().as_secs_f64() * 1000.0;
    let subject = claims.subject().to_string();

    if spec.assertion == AssertKind::TamperedTokenRejected {
        let userinfo = metadata
            .userinfo_endpoint()
            .ok_or("the provider has no userinfo_endpoint")?
            .url()
            .clone();
        let genuine = token.access_token().secret().clone();
        let genuine_status = bearer_status(&http, &userinfo, &genuine).await?;
        let tampered_status = bearer_status(&http, &userinfo, &tamper(&genuine)).await?;
        steps.push(format!(
            "GET {} with the access token -> {genuine_status}; with one character changed -> {tampered_status}",
            without_query(&userinfo)
        ));
        let tampered_id = tamper_signature(&id_token.to_string());
        let id_token_rejected = match CoreIdToken::from_str(&tampered_id) {
            Err(e) => Ok(format!("it no longer parses: {e}")),
            Ok(t) => match t.claims(&verifier, &nonce) {
                Err(e) => Ok(error_chain(&e)),
                Ok(_) => Err("the ID token with a changed signature still verified".into()),
            },
        };
        return Ok(Outcome::Tamper(Tamper {
            genuine_status,
            tampered_status,
            id_token_rejected,
        }));
    }

    let userinfo_subject = match client.user_info(token.access_token().clone(), None) {
        Err(e) => Err(format!("no userinfo endpoint: {e}")),
        Ok(request) => {
            steps.push("GET userinfo with the access token".into());
            request
                .request_async::<openidconnect::EmptyAdditionalClaims, _, openidconnect::core::CoreGenderClaim>(&http)
                .await
                .map(|c: CoreUserInfoClaims| c.subject().to_string())
                .map_err(|e| format!("userinfo failed: {}", error_chain(&e)))
        }
    };
    let now = chrono::Utc::now();
    Ok(Outcome::LoggedIn(Login {
        subject,
        issuer: claims.issuer().to_string(),
        audiences: claims.audiences().iter().map(|a| a.to_string()).collect(),
        expires_in_s: (claims.expiration() - now).num_seconds(),
        alg: id_token
            .signing_alg()
            .ok()
            .and_then(|a| serde_json::to_value(a).ok())
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| "?".into()),
        userinfo_subject,
        login_ms,
    }))
}

async fn discovery_facts(
    spec: &Spec,
    http: &reqwest::Client,
    metadata: &CoreProviderMetadata,
) -> Result<Discovery, String> {
    // PKCE methods are an RFC 8414 field the typed metadata does not carry.
    let raw: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", spec.issuer))
        .send()
        .await
        .map_err(|e| error_chain(&e))?
        .json()
        .await
        .map_err(|e| format!("the discovery document is not JSON: {}", error_chain(&e)))?;
    let strings = |key: &str| -> Vec<String> {
        raw[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut missing = Vec::new();
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        if raw[key].as_str().is_none_or(|s| s.is_empty()) {
            missing.push(key.to_string());
        }
    }
    let keys = metadata.jwks().keys();
    let mut kids: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            use openidconnect::JsonWebKey;
            k.key_id().map(|id| id.to_string())
        })
        .collect();
    kids.sort();
    let mut duplicates: Vec<String> = kids
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0].clone())
        .collect();
    duplicates.dedup();
    Ok(Discovery {
        issuer: metadata.issuer().to_string(),
        response_types: strings("response_types_supported"),
        pkce_methods: strings("code_challenge_methods_supported"),
        signing_algs: strings("id_token_signing_alg_values_supported"),
        jwks_keys: keys.len(),
        duplicate_kids: duplicates,
        missing_endpoints: missing,
    })
}

/// The client of discovery, the sign-in and the token exchange, on the
/// check's route: through a tunnel every link of the discovery document is
/// fetched from the host.
async fn http_client(
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
) -> Result<reqwest::Client, String> {
    // Redirects are followed by hand: the flow must see each one.
    via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline)
        .await?
        .timeout(ctx.remaining().max(Duration::from_millis(1)))
        .build()
        .map_err(|e| e.to_string())
}

async fn bearer_status(http: &reqwest::Client, url: &Url, token: &str) -> Result<u16, String> {
    http.get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("GET {}: {}", without_query(url), error_chain(&e)))
}

/// The token with one character in its middle changed.
fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    if chars.is_empty() {
        return "x".into();
    }
    let at = chars.len() / 2;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// A JWT with one character inside its signature changed (not the last,
/// whose low bits base64url may ignore).
fn tamper_signature(jwt: &str) -> String {
    match jwt.rfind('.') {
        Some(dot) if jwt.len() - dot > 8 => {
            let (head, signature) = jwt.split_at(dot + 1);
            format!("{head}{}", tamper(signature))
        }
        _ => tamper(jwt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampering_changes_the_signature_and_nothing_else() {
        let jwt = "aGVhZA.cGF5bG9hZA.c2lnbmF0dXJlc2lnbmF0dXJl";
        let t = tamper_signature(jwt);
        assert_ne!(t, jwt);
        assert!(t.starts_with("aGVhZA.cGF5bG9hZA."));
        assert_eq!(t.len(), jwt.len());
        assert_ne!(tamper("AAAA"), "AAAA");
    }
}
