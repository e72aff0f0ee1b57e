//! Sends one command to the agent as a Matrix client (matrix-sdk) and
//! waits for the agent's reply to it: log in, find (or create) the control
//! room by its alias, join it, stop at an encrypted room, bring the agent
//! in (invite, wait for its join), send the command, read the room's
//! newest events until the agent's reply to the command's event arrives or
//! the deadline is near, log out.
//!
//! The wait ends a little before the check's deadline, so a silent agent
//! yields facts (what was sent, what came instead) rather than a timeout.
//! Each step is recorded without its token or password (matrix-sdk keeps
//! the session in memory; nothing is written to disk).

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use matrix_sdk::config::RequestConfig;
use matrix_sdk::reqwest;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::api::client::state::get_state_event_for_key;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::events::StateEventType;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomAliasId, UserId};
use matrix_sdk::{Client, Room};
use serde_json::Value;

use super::judge::{Facts, Message};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};

/// How often the room is read while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How many of the room's newest events are read per poll.
const EVENTS_PER_POLL: u32 = 50;

/// The margin kept before the check's deadline to return the facts.
fn margin(remaining: Duration) -> Duration {
    (remaining / 10).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// The HTTP status of a failed request, when the homeserver answered
/// (`as_client_api_error` of a matrix-sdk `Error` or `HttpError`).
fn status_of(e: Option<&matrix_sdk::ruma::api::error::Error>) -> Option<u16> {
    e.map(|c| c.status_code.as_u16())
}

/// The client, its steps and when the probe must have its facts.
struct Session {
    client: Client,
    stop: Instant,
    steps: Vec<String>,
}

impl Session {
    fn remaining(&self) -> Duration {
        self.stop.saturating_duration_since(Instant::now())
    }

    /// Runs one client step, bounded by `stop`; the outer `Err` says the
    /// deadline came first.
    async fn within<T, E>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<Result<T, E>, String> {
        let remaining = self.remaining();
        if remaining.is_zero() {
            return Err(format!("{what}: not sent, the deadline is near"));
        }
        tokio::time::timeout(remaining, work)
            .await
            .map_err(|_| format!("{what}: no answer before the check's deadline"))
    }

    /// A step whose failure ends the exchange: recorded either way.
    async fn step<T, E: std::fmt::Display>(
        &mut self,
        what: &str,
        work: impl Future<Output = Result<T, E>>,
        describe: impl FnOnce(&T) -> String,
    ) -> Result<T, String> {
        match self.within(what, work).await {
            Ok(Ok(value)) => {
                let line = format!("{what} -> {}", describe(&value));
                self.steps.push(line);
                Ok(value)
            }
            Ok(Err(e)) => {
                let line = format!("{what} -> {e}");
                self.steps.push(line.clone());
                Err(line)
            }
            Err(why) => {
                self.steps.push(why.clone());
                Err(why)
            }
        }
    }
}

/// An HTTP client on the check's route for matrix-sdk: no redirect
/// followed, the CA of `ca_file` trusted, through the tunnel's SOCKS5
/// proxy (names resolved on the host) when the check goes via the host.
async fn http_client(spec: &Spec, route: &Route, deadline: Instant) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(crate::web::USER_AGENT);
    if let Some(ca_file) = &spec.ca_file {
        let pem = crate::web::read_ca_file(ca_file)?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file {} is not PEM: {e}", ca_file.display()))?;
        builder = builder.tls_certs_merge(certificates);
    }
    if let Some(proxy) = via::socks_proxy(route, deadline).await? {
        let proxy = reqwest::Proxy::all(format!("socks5h://{proxy}"))
            .map_err(|e| format!("cannot use the SOCKS proxy {proxy}: {e}"))?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Result<Facts, String> {
    let http = http_client(spec, route, ctx.deadline).await?;
    let remaining = ctx.remaining();
    let client = Client::builder()
        .homeserver_url(&spec.base_url)
        .http_client(http)
        .request_config(RequestConfig::new().timeout(remaining).disable_retry())
        .build()
        .await
        .map_err(|e| format!("cannot build a Matrix client for {}: {e}", spec.base_url))?;
    let mut session = Session {
        client,
        stop: Instant::now() + remaining.saturating_sub(margin(remaining)),
        steps: Vec::new(),
    };
    let mut facts = Facts::default();
    if let Err(why) = exchange(spec, &mut session, &mut facts).await {
        facts.stopped = Some(why);
    }
    if session.client.matrix_auth().logged_in() {
        // The session ends with the check; a little past `stop` is allowed.
        session.stop = session.stop.max(Instant::now() + Duration::from_millis(500));
        let client = session.client.clone();
        let _ = session
            .step("logout", client.matrix_auth().logout(), |_| "ok".into())
            .await;
    }
    facts.steps = std::mem::take(&mut session.steps);
    Ok(facts)
}

/// The steps up to the reply; `Err` says why they stopped early.
async fn exchange(spec: &Spec, s: &mut Session, facts: &mut Facts) -> Result<(), String> {
    let client = s.client.clone();
    let login = s
        .step(
            &format!("login as {}", spec.user),
            client
                .matrix_auth()
                .login_username(&spec.user, &spec.password.0)
                .initial_device_display_name("spinup-smoke agent_command")
                .into_future(),
            |r| format!("ok ({})", r.user_id),
        )
        .await
        .map_err(|e| format!("login as {} failed: {e}", spec.user))?;
    let me = login.user_id.to_string();

    let room_id = find_or_create_room(spec, s).await?;
    facts.room_id = Some(room_id.to_string());
    // A room another check is creating has its alias before it can be
    // joined (404): a few tries.
    let mut tries = 0;
    let room = loop {
        let joined = s
            .within("join", client.join_room_by_id(&room_id))
            .await?;
        tries += 1;
        match joined {
            Ok(room) => {
                s.steps.push(format!("join {room_id} -> ok"));
                break room;
            }
            Err(e) => {
                if status_of(e.as_client_api_error()) != Some(404) || tries == 10 || s.remaining() <= POLL_INTERVAL {
                    s.steps.push(format!("join {room_id} -> {e}"));
                    return Err(format!("{me} cannot join {} ({room_id}): {e}", spec.room));
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let encryption = s
        .step(
            "read m.room.encryption",
            room.latest_encryption_state(),
            |state| {
                if state.is_encrypted() {
                    "set".to_string()
                } else {
                    "not set".to_string()
                }
            },
        )
        .await?;
    if encryption.is_encrypted() {
        facts.encrypted = true;
        return Ok(());
    }
    for user in &spec.invite {
        // Best effort: a user already in the room (or invited) is refused.
        let user = user_id(user, "invite")?;
        if membership(s, &room_id, &user).await?.as_deref() != Some("join") {
            let _ = s
                .step(&format!("invite {user}"), room.invite_user_by_id(&user), |_| {
                    "ok".into()
                })
                .await;
        }
    }
    bring_in_agent(spec, s, &room).await?;

    let sent_at = Instant::now();
    let sent = s
        .step(
            "send m.room.message",
            room.send(RoomMessageEventContent::text_plain(&spec.command))
                .into_future(),
            |r| r.response.event_id.to_string(),
        )
        .await
        .map_err(|e| format!("sending the command to {room_id} failed: {e}"))?;
    let event_id = sent.response.event_id.to_string();
    facts.command = Some(Message {
        event_id: event_id.clone(),
        sender: me,
        body: spec.command.clone(),
        origin_server_ts: None,
        in_reply_to: None,
    });
    let outcome = wait_for_reply(spec, s, &room, &event_id, facts).await;
    facts.waited_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
    outcome
}

fn user_id(text: &str, field: &str) -> Result<OwnedUserId, String> {
    UserId::parse(text).map_err(|e| format!("`{text}` ({field}) is not a Matrix user id: {e}"))
}

/// The room the alias names; created (private, the agent and `invite`
/// invited) when the alias is unknown.
async fn find_or_create_room(spec: &Spec, s: &mut Session) -> Result<OwnedRoomId, String> {
    let alias = RoomAliasId::parse(&spec.room)
        .map_err(|e| format!("`{}` (room) is not a room alias: {e}", spec.room))?;
    let client = s.client.clone();
    let mut refused = String::new();
    for _ in 0..2 {
        let what = format!("resolve {alias}");
        match s.within(&what, client.resolve_room_alias(&alias)).await? {
            Ok(found) => {
                s.steps.push(format!("{what} -> {}", found.room_id));
                return Ok(found.room_id);
            }
            Err(e) if status_of(e.as_client_api_error()) == Some(404) => {
                s.steps.push(format!("{what} -> not found"));
            }
            Err(e) => {
                s.steps.push(format!("{what} -> {e}"));
                return Err(format!("resolving {} failed: {e}", spec.room));
            }
        }
        let mut invite = vec![user_id(&spec.agent, "agent")?];
        for user in &spec.invite {
            invite.push(user_id(user, "invite")?);
        }
        let mut request = create_room::v3::Request::new();
        request.room_alias_name = Some(spec.room_localpart().to_string());
        request.name = Some("RAVE control".to_string());
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        request.invite = invite;
        match s.within("create the room", client.create_room(request)).await? {
            Ok(room) => {
                s.steps.push(format!("create {alias} -> {}", room.room_id()));
                return Ok(room.room_id().to_owned());
            }
            Err(e) => {
                // Created meanwhile by another check (M_ROOM_IN_USE, or 409
                // from Synapse on PostgreSQL): resolve it again.
                s.steps.push(format!("create {alias} -> {e}"));
                refused = e.to_string();
            }
        }
    }
    Err(format!("creating {} failed: {refused}", spec.room))
}

/// `user`'s membership in the room (`None`: never a member), read from
/// the room's state on the homeserver.
async fn membership(
    s: &mut Session,
    room_id: &OwnedRoomId,
    user: &UserId,
) -> Result<Option<String>, String> {
    let request = get_state_event_for_key::v3::Request::new(
        room_id.clone(),
        StateEventType::RoomMember,
        user.to_string(),
    );
    let client = s.client.clone();
    let what = format!("read the membership of {user}");
    match s.within(&what, client.send(request).into_future()).await? {
        Ok(answer) => {
            let content: Value =
                serde_json::from_str(answer.event_or_content.get()).unwrap_or(Value::Null);
            // The event or its content, depending on the homeserver.
            let membership = content["membership"]
                .as_str()
                .or_else(|| content["content"]["membership"].as_str())
                .map(String::from);
            Ok(membership)
        }
        Err(e) if status_of(e.as_client_api_error()) == Some(404) => Ok(None),
        Err(e) => {
            s.steps.push(format!("{what} -> {e}"));
            Ok(None)
        }
    }
}

/// The agent joined: invited when it is not, then waited for. The
/// membership is read every poll, and only its changes are recorded.
async fn bring_in_agent(spec: &Spec, s: &mut Session, room: &Room) -> Result<(), String> {
    let agent = user_id(&spec.agent, "agent")?;
    let room_id = room.room_id().to_owned();
    let mut state = membership(s, &room_id, &agent).await?;
    s.steps.push(format!(
        "membership of {agent}: {}",
        state.as_deref().unwrap_or("none")
    ));
    if state.as_deref() == Some("join") {
        return Ok(());
    }
    if state.as_deref() != Some("invite") {
        s.step(&format!("invite {agent}"), room.invite_user_by_id(&agent), |_| {
            "ok".into()
        })
        .await
        .map_err(|e| format!("inviting {agent} to {room_id} failed: {e}"))?;
    }
    let since = Instant::now();
    loop {
        let now = membership(s, &room_id, &agent).await?;
        if now != state {
            s.steps.push(format!(
                "membership of {agent}: {}",
                now.as_deref().unwrap_or("none")
            ));
            state = now;
        }
        if state.as_deref() == Some("join") {
            s.steps.push(format!(
                "{agent} joined after {} ms",
                since.elapsed().as_millis()
            ));
            return Ok(());
        }
        if s.remaining() <= POLL_INTERVAL {
            return Err(format!(
                "{agent} did not join {room_id} within {:.1} s of its invite (membership: {})",
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
    s: &mut Session,
    room: &Room,
    event_id: &str,
    facts: &mut Facts,
) -> Result<(), String> {
    let mut polls = 0u32;
    loop {
        let mut options = MessagesOptions::backward();
        options.limit = EVENTS_PER_POLL.into();
        let read = s.within("read the room", room.messages(options)).await;
        polls += 1;
        match read {
            Ok(Ok(messages)) => {
                let events: Vec<Value> = messages
                    .chunk
                    .iter()
                    .filter_map(|e| serde_json::from_str(e.raw().json().get()).ok())
                    .collect();
                if let Some(reply) = scan(spec, &events, event_id, facts) {
                    facts.reply = Some(reply);
                    s.steps
                        .push(format!("read the room {polls} time(s): the reply is there"));
                    return Ok(());
                }
            }
            Ok(Err(e)) if polls == 1 || s.remaining() <= POLL_INTERVAL => {
                s.steps.push(format!("read the room -> {e}"));
            }
            Ok(Err(_)) => {}
            Err(why) => s.steps.push(why),
        }
        if s.remaining() <= POLL_INTERVAL {
            s.steps.push(format!(
                "read the room {polls} time(s); stopped waiting before the check's deadline"
            ));
            return Ok(());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The agent's reply to `event_id` among `events` (newest first); the
/// command's server timestamp and the agent's unrelated messages are
/// noted in `facts`.
fn scan(spec: &Spec, events: &[Value], event_id: &str, facts: &mut Facts) -> Option<Message> {
    // Newest first: everything before the command is after it in time.
    let mut newer = Vec::new();
    for event in events {
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
    replies.into_iter().next()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
