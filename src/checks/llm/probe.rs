//! Asks the endpoint for its model list and, for `assert = "chat"`, one
//! chat completion (temperature 0), each bounded by the check's deadline.
//! The API key goes only into the Authorization header.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::judge::{Facts, Reply};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::error::error_chain;

/// Largest recorded body (bytes).
const BODY_EXCERPT_BYTES: usize = 1500;

pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let client = match via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline).await {
        Ok(b) => match b.user_agent(crate::web::USER_AGENT).build() {
            Ok(c) => c,
            Err(e) => return Facts::Unreachable(format!("cannot build an HTTP client: {}", error_chain(&e))),
        },
        Err(e) => return Facts::Unreachable(e),
    };
    let models = match exchange(spec, ctx, &client, reqwest::Method::GET, "/models", None).await {
        Ok(r) => r,
        Err(e) => return Facts::Unreachable(e),
    };
    let chat = match (&spec.chat, models.status) {
        (Some(ask), 200) => Some(
            exchange(
                spec,
                ctx,
                &client,
                reqwest::Method::POST,
                "/chat/completions",
                Some(json!({
                    "model": spec.model,
                    "messages": [{"role": "user", "content": ask.prompt}],
                    "max_tokens": ask.max_tokens,
                    "temperature": 0,
                    "stream": false,
                })),
            )
            .await,
        ),
        _ => None,
    };
    Facts::Answered { models, chat }
}

async fn exchange(
    spec: &Spec,
    ctx: &ProbeContext,
    client: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Reply, String> {
    let request = format!("{method} {path}");
    let mut builder = client
        .request(method, format!("{}{path}", spec.base_url))
        .timeout(ctx.remaining().max(Duration::from_millis(1)));
    if let Some(key) = &spec.api_key {
        builder = builder.bearer_auth(&key.0);
    }
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let started = Instant::now();
    let response = builder
        .send()
        .await
        .map_err(|e| format!("{request}: {}", error_chain(&e)))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("{request}: status {status}, then {}", error_chain(&e)))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let json = serde_json::from_slice(&bytes).ok();
    Ok(Reply {
        request,
        status,
        body: crate::check::excerpt(&String::from_utf8_lossy(&bytes), BODY_EXCERPT_BYTES),
        json,
        ms,
    })
}
