//! Sends one command to the agent over the client-server API and waits
//! for the agent's reply to it: log in, find (or create) the control room
//! by its alias, join it, stop at an encrypted room, bring the agent in
//! (invite, wait for its join), send the command, read the room's newest
//! events until the agent's reply to the command's event arrives or the
//! deadline is near, log out.
//!
//! The wait ends a little before the check's deadline, so a silent agent
//! yields facts (what was sent, what came instead) rather than a timeout.
//! The access token is never recorded; recorded answers pass through
//! `matrix::probe::remove_tokens`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::judge::{Facts, Message};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::error::error_chain;

/// How often the room is read while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How many of the room's newest events are read per poll.
const EVENTS_PER_POLL: u32 = 50;

/// A client for the homeserver, every request bounded by `stop`.
struct Api {
    client: reqwest::Client,
    base_url: String,
    token: Option<String>,
    /// When the probe must have its facts.
    stop: Instant,
}

/// One answer: status and JSON body (`Value::Null` when not JSON).
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `status 403 M_FORBIDDEN: <error>`.
    fn describe(&self) -> String {
        let mut text = format!("status {}", self.status);
        if let Some(code) = self.body["errcode"].as_str() {
            text.push_str(&format!(" {code}"));
        }
        if let Some(error) = self.body["error"].as_str() {
            text.push_str(&format!(": {error}"));
        }
        text
    }
}

impl Api {
    fn remaining(&self) -> Duration {
        self.stop.saturating_duration_since(Instant::now())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        steps: &mut Vec<String>,
    ) -> Result<Answer, String> {
        let line = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let remaining = self.remaining();
        if remaining.is_zero() {
            return Err(format!("{line}: not sent, the deadline is near"));
        }
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .timeout(remaining);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let error = format!("{line}: {}", error_chain(&e));
                steps.push(error.clone());
                return Err(error);
            }
        };
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let answer_for_token = body["access_token"].as_str().map(String::from);
        crate::checks::matrix::probe::remove_tokens(&mut body);
        let answer = Answer { status, body };
        if let Some(token) = answer_for_token {
            // Only the login asks for one; kept for the caller, never recorded.
            let mut with_token = answer;
            with_token.body["access_token"] = Value::String(token);
            steps.push(format!("{line} -> {}", with_token.status));
            return Ok(with_token);
        }
        steps.push(format!("{line} -> {}", answer.describe()));
        Ok(answer)
    }
}

/// Percent-encodes one path segment (`#alias:server`, `!room:server`).
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The margin kept before the check's deadline to return the facts.
fn margin(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Result<Facts, String> {
    let client = via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline)
        .await?
        .user_agent(crate::web::USER_AGENT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", error_chain(&e)))?;
    let remaining = ctx.remaining();
    let mut api = Api {
        client,
        base_url: spec.base_url.clone(),
        token: None,
        stop: Instant::now() + remaining.saturating_sub(margin(remaining)),
    };
    let mut facts = Facts::default();
    if let Err(why) = exchange(spec, &mut api, &mut facts).await {
        facts.stopped = Some(why);
    }
    if api.token.is_some() {
        // The session ends with the check; a little past `stop` is allowed.
        api.stop = api.stop.max(Instant::now() + Duration::from_millis(500));
        let _ = api
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/logout",
                Some(json!({})),
                &mut facts.steps,
            )
            .await;
    }
    Ok(facts)
}

/// The steps up to the reply; `Err` says why they stopped early.
async fn exchange(spec: &Spec, api: &mut Api, facts: &mut Facts) -> Result<(), String> {
    let steps = &mut facts.steps;
    let login = api
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/login",
            Some(json!({
                "type": "m.login.password",
                "identifier": { "type": "m.id.user", "user": spec.user },
                "password": spec.password.0,
                "initial_device_display_name": "spinup-smoke agent_command",
            })),
            steps,
        )
        .await?;
    if !login.ok() {
        return Err(format!("login as {} failed: {}", spec.user, login.describe()));
    }
    api.token = login.body["access_token"].as_str().map(String::from);
    let me = login.body["user_id"].as_str().unwrap_or(&spec.user).to_string();

    let room_id = find_or_create_room(spec, api, steps).await?;
    facts.room_id = Some(room_id.clone());
    let room = segment(&room_id);
    // A room another check is creating has its alias before it can be
    // joined (404): a few tries.
    let mut tries = 0;
    let joined = loop {
        let joined = api
            .call(
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/join/{room}"),
                Some(json!({})),
                steps,
            )
            .await?;
        tries += 1;
        if joined.ok() || joined.status != 404 || tries == 10 || api.remaining() <= POLL_INTERVAL {
            break joined;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    if !joined.ok() {
        return Err(format!(
            "{me} cannot join {} ({room_id}): {}",
            spec.room,
            joined.describe()
        ));
    }
    let encryption = api
        .call(
            reqwest::Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.encryption/"),
            None,
            steps,
        )
        .await?;
    if encryption.ok() {
        facts.encrypted = true;
        return Ok(());
    }
    for user in &spec.invite {
        // Best effort: a user already in the room (or invited) is refused.
        if membership(api, &room, user, steps).await?.as_deref() != Some("join") {
            invite(api, &room, user, steps).await?;
        }
    }
    bring_in_agent(spec, api, &room, &room_id, steps).await?;

    let txn = format!("spinup-smoke-{}", random_hex(8));
    let sent_at = Instant::now();
    let sent = api
        .call(
            reqwest::Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
            Some(json!({ "msgtype": "m.text", "body": spec.command })),
            steps,
        )
        .await?;
    let Some(event_id) = sent.body["event_id"].as_str().map(String::from) else {
        return Err(format!(
            "sending the command to {room_id} failed: {}",
            sent.describe()
        ));
    };
    facts.command = Some(Message {
        event_id: event_id.clone(),
        sender: me,
        body: spec.command.clone(),
        origin_server_ts: None,
        in_reply_to: None,
    });
    let outcome = wait_for_reply(spec, api, &room, &event_id, facts).await;
    facts.waited_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
    outcome
}

/// The room the alias names; created (private, the agent and `invite`
/// invited) when the alias is unknown.
async fn find_or_create_room(
    spec: &Spec,
    api: &Api,
    steps: &mut Vec<String>,
) -> Result<String, String> {
    let path = format!("/_matrix/client/v3/directory/room/{}", segment(&spec.room));
    let mut refused = String::new();
    for _ in 0..2 {
        let found = api.call(reqwest::Method::GET, &path, None, steps).await?;
        if let Some(id) = found.body["room_id"].as_str().filter(|_| found.ok()) {
            return Ok(id.to_string());
        }
        if found.status != 404 {
            return Err(format!("resolving {} failed: {}", spec.room, found.describe()));
        }
        let mut invite = vec![spec.agent.clone()];
        invite.extend(spec.invite.iter().cloned());
        let created = api
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(json!({
                    "room_alias_name": spec.room_localpart(),
                    "name": "RAVE control",
                    "preset": "private_chat",
                    "invite": invite,
                })),
                steps,
            )
            .await?;
        if let Some(id) = created.body["room_id"].as_str().filter(|_| created.ok()) {
            return Ok(id.to_string());
        }
        // Created meanwhile by another check (M_ROOM_IN_USE, or 409 from
        // Synapse on PostgreSQL): resolve it again.
        refused = created.describe();
    }
    Err(format!("creating {} failed: {refused}", spec.room))
}

/// `user`'s membership in `room` (`None`: never a member).
async fn membership(
    api: &Api,
    room: &str,
    user: &str,
    steps: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let answer = api
        .call(
            reqwest::Method::GET,
            &format!(
                "/_matrix/client/v3/rooms/{room}/state/m.room.member/{}",
                segment(user)
            ),
            None,
            steps,
        )
        .await?;
    Ok(answer.body["membership"]
        .as_str()
        .filter(|_| answer.ok())
        .map(String::from))
}

async fn invite(
    api: &Api,
    room: &str,
    user: &str,
    steps: &mut Vec<String>,
) -> Result<Answer, String> {
    api.call(
        reqwest::Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/invite"),
        Some(json!({ "user_id": user })),
        steps,
    )
    .await
}

/// The agent joined: invited when it is not, then waited for. The room's
/// member state is read every poll, and only its changes are recorded.
async fn bring_in_agent(
    spec: &Spec,
    api: &Api,
    room: &str,
    room_id: &str,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    let mut state = membership(api, room, &spec.agent, steps).await?;
    if state.as_deref() == Some("join") {
        return Ok(());
    }
    if state.as_deref() != Some("invite") {
        let invited = invite(api, room, &spec.agent, steps).await?;
        if !invited.ok() {
            return Err(format!(
                "inviting {} to {room_id} failed: {}",
                spec.agent,
                invited.describe()
            ));
        }
    }
    let since = Instant::now();
    loop {
        let mut quiet = Vec::new();
        match membership(api, room, &spec.agent, &mut quiet).await {
            Ok(now) => {
                if now != state {
                    steps.extend(quiet);
                    state = now;
                }
            }
            Err(_) => steps.extend(quiet),
        }
        if state.as_deref() == Some("join") {
            steps.push(format!(
                "{} joined after {} ms",
                spec.agent,
                since.elapsed().as_millis()
            ));
            return Ok(());
        }
        if api.remaining() <= POLL_INTERVAL {
            return Err(format!(
                "{} did not join {room_id} within {:.1} s of its invite (membership: {})",
                spec.agent,
                since.elapsed().as_secs_f64(),
                state.as_deref().unwrap_or("none")
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Reads the newest events until the agent's reply to `event_id` is
/// among them or the time is up (then `facts.reply` stays empty: the judge
/// says so).
async fn wait_for_reply(
    spec: &Spec,
    api: &Api,
    room: &str,
    event_id: &str,
    facts: &mut Facts,
) -> Result<(), String> {
    let path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit={EVENTS_PER_POLL}");
    let mut polls = 0u32;
    loop {
        let mut quiet = Vec::new();
        let read = api.call(reqwest::Method::GET, &path, None, &mut quiet).await;
        polls += 1;
        if let Some(answer) = read.as_ref().ok().filter(|a| a.ok()) {
            let events = answer.body["chunk"].as_array().cloned().unwrap_or_default();
            // Newest first: everything before the command is after it in time.
            let mut newer = Vec::new();
            for event in &events {
                if event["event_id"] == event_id {
                    if let Some(command) = &mut facts.command {
                        command.origin_server_ts = event["origin_server_ts"].as_u64();
                    }
                    break;
                }
                if let Some(m) = message(event) {
                    newer.push(m);
                }
            }
            newer.reverse();
            let (replies, others): (Vec<Message>, Vec<Message>) = newer
                .into_iter()
                .filter(|m| m.sender == spec.agent)
                .partition(|m| m.in_reply_to.as_deref() == Some(event_id));
            facts.unrelated = others;
            if let Some(reply) = replies.into_iter().next() {
                facts.reply = Some(reply);
                facts.steps.push(format!(
                    "read the room {polls} time(s): GET /_matrix/client/v3/rooms/{room}/messages -> {}",
                    answer.status
                ));
                return Ok(());
            }
        } else if polls == 1 || api.remaining() <= POLL_INTERVAL {
            facts.steps.extend(quiet);
        }
        if api.remaining() <= POLL_INTERVAL {
            facts.steps.push(format!(
                "read the room {polls} time(s); stopped waiting before the check's deadline"
            ));
            return Ok(());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// An `m.room.message` event as a `Message`.
fn message(event: &Value) -> Option<Message> {
    if event["type"] != "m.room.message" {
        return None;
    }
    Some(Message {
        event_id: event["event_id"].as_str()?.to_string(),
        sender: event["sender"].as_str()?.to_string(),
        body: event["content"]["body"].as_str().unwrap_or("").to_string(),
        origin_server_ts: event["origin_server_ts"].as_u64(),
        in_reply_to: event["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
            .as_str()
            .map(String::from),
    })
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
    fn segments_are_encoded() {
        assert_eq!(segment("#rave-control:rave.local"), "%23rave-control%3Arave.local");
        assert_eq!(segment("!a/b:x"), "%21a%2Fb%3Ax");
    }

    #[test]
    fn reads_reply_relations() {
        let m = message(&json!({
            "type": "m.room.message", "event_id": "$r", "sender": "@a:x", "origin_server_ts": 5,
            "content": {"msgtype": "m.notice", "body": "ok", "m.relates_to": {"m.in_reply_to": {"event_id": "$c"}}}
        }))
        .unwrap();
        assert_eq!(m.in_reply_to.as_deref(), Some("$c"));
        assert!(message(&json!({"type": "m.room.member", "event_id": "$m", "sender": "@a:x"})).is_none());
    }

    #[test]
    fn the_margin_is_bounded() {
        assert_eq!(margin(Duration::from_secs(1)), Duration::from_millis(200));
        assert_eq!(margin(Duration::from_secs(10)), Duration::from_secs(1));
        assert_eq!(margin(Duration::from_secs(60)), Duration::from_secs(2));
    }
}
