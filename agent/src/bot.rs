//! The Matrix side: log in (retrying until the homeserver answers), accept
//! invites from allow-listed users, answer `!rave` commands in joined rooms
//! with a reply relation to the command's event, and keep syncing, with
//! backoff, across homeserver restarts.

use std::sync::Arc;
use std::time::Duration;

use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::ruma::events::room::member::{MembershipState, StrippedRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, MessageType, OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::{Client, Room, RoomState};

use crate::command::{self, Command};
use crate::config::Config;
use crate::gitlab::{Created, GitLab};

/// The longest wait between two attempts (login, sync, join).
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long one sync request may wait for events.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);
/// Commands older than this when they arrive are not obeyed: the history
/// a room shows on joining it is not a list of orders.
const MAX_COMMAND_AGE: Duration = Duration::from_secs(60);

/// What the handlers share.
struct Agent {
    config: Config,
    gitlab: GitLab,
}

/// One line on stdout, with the time.
pub fn log(line: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    println!("[{}.{:03}] {line}", now.as_secs(), now.subsec_millis());
}

/// Runs until the process is stopped.
pub async fn run(config: Config) -> Result<(), String> {
    let gitlab = GitLab::new(&config.gitlab_url, &config.gitlab_token)?;
    let agent = Arc::new(Agent { config, gitlab });
    let client = Client::builder()
        .homeserver_url(&agent.config.homeserver)
        .request_config(
            RequestConfig::new()
                .timeout(Duration::from_secs(30))
                .retry_limit(1),
        )
        .build()
        .await
        .map_err(|e| format!("field `homeserver`: cannot build a client: {e}"))?;
    login(&client, &agent.config).await;

    let invites = agent.clone();
    client.add_event_handler(
        move |event: StrippedRoomMemberEvent, room: Room, client: Client| {
            let agent = invites.clone();
            async move { on_invite(&agent, event, room, client).await }
        },
    );
    // The first sync catches up; commands sent before the agent ran are
    // not answered, so the message handler comes after it.
    let mut backoff = Duration::from_millis(500);
    loop {
        match client.sync_once(SyncSettings::default()).await {
            Ok(_) => break,
            Err(e) => {
                log(&format!("first sync failed: {e}; retrying in {backoff:?}"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    // Invites that arrived while the agent was down.
    for room in client.invited_rooms() {
        if let Ok(Some(details)) = room.invite_details().await.map(|d| d.inviter) {
            if agent
                .config
                .allowed_users
                .iter()
                .any(|u| u == details.user_id().as_str())
            {
                join(&room).await;
            }
        }
    }
    let messages = agent.clone();
    client.add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
        let agent = messages.clone();
        async move {
            // The GitLab calls must not hold up the sync loop.
            tokio::spawn(async move { on_message(&agent, event, room).await });
        }
    });
    log(&format!(
        "listening as {} on {}; obeying {}",
        agent.config.user,
        agent.config.homeserver,
        agent.config.allowed_users.join(", ")
    ));
    let mut backoff = Duration::from_millis(500);
    loop {
        match client
            .sync_once(SyncSettings::default().timeout(SYNC_TIMEOUT))
            .await
        {
            Ok(_) => backoff = Duration::from_millis(500),
            Err(e) => {
                log(&format!("sync failed: {e}; retrying in {backoff:?}"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if client.matrix_auth().logged_in() && unknown_token(&e) {
                    log("the access token is no longer valid; logging in again");
                    login(&client, &agent.config).await;
                }
            }
        }
    }
}

fn unknown_token(e: &matrix_sdk::Error) -> bool {
    e.to_string().contains("M_UNKNOWN_TOKEN")
}

/// Logs in, retrying with backoff until the homeserver accepts.
async fn login(client: &Client, config: &Config) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match client
            .matrix_auth()
            .login_username(&config.user, &config.password)
            .initial_device_display_name("rave-agent")
            .send()
            .await
        {
            Ok(r) => {
                log(&format!(
                    "logged in as {} (device {})",
                    r.user_id, r.device_id
                ));
                return;
            }
            Err(e) => {
                log(&format!(
                    "login as {} failed: {e}; retrying in {backoff:?}",
                    config.user
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn on_invite(agent: &Agent, event: StrippedRoomMemberEvent, room: Room, client: Client) {
    if client.user_id().map(|u| u.as_str()) != Some(event.state_key.as_str())
        || event.content.membership != MembershipState::Invite
    {
        return;
    }
    let inviter = event.sender.as_str();
    if !agent.config.allowed_users.iter().any(|u| u == inviter) {
        log(&format!(
            "ignored the invite of {inviter} to {}: not on the allow-list",
            room.room_id()
        ));
        return;
    }
    // Joining inside the handler would wait for the sync that runs it.
    tokio::spawn(async move { join(&room).await });
}

/// Joins `room`, retrying a few times (a fresh invite may not be
/// visible to the join endpoint yet).
async fn join(room: &Room) {
    let mut backoff = Duration::from_millis(200);
    for _ in 0..6 {
        match room.join().await {
            Ok(()) => {
                log(&format!("joined {}", room.room_id()));
                return;
            }
            Err(e) => {
                log(&format!("joining {} failed: {e}; retrying", room.room_id()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn on_message(agent: &Agent, event: OriginalSyncRoomMessageEvent, room: Room) {
    if room.state() != RoomState::Joined || event.sender.as_str() == agent.config.user {
        return;
    }
    let MessageType::Text(text) = &event.content.msgtype else {
        return;
    };
    let Some(command) = command::parse(&text.body) else {
        return;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let sent_ms = u64::from(event.origin_server_ts.0);
    if command::too_old(now_ms, sent_ms, MAX_COMMAND_AGE.as_millis() as u64) {
        log(&format!(
            "ignored {} {} `{}`: sent {} s ago",
            event.sender,
            event.event_id,
            text.body,
            now_ms.saturating_sub(sent_ms) / 1000
        ));
        return;
    }
    let sender = event.sender.as_str();
    let answer = if !agent.config.allowed_users.iter().any(|u| u == sender) {
        log(&format!(
            "refused {sender} {} `{}`: not on the allow-list",
            event.event_id, text.body
        ));
        command::refusal_text(sender)
    } else {
        let answer = obey(agent, &command).await;
        log(&format!(
            "obeyed {sender} {} `{}` -> {answer}",
            event.event_id, text.body
        ));
        answer
    };
    let content = RoomMessageEventContent::notice_plain(answer).make_reply_to(
        &event,
        ForwardThread::No,
        AddMentions::No,
    );
    if let Err(e) = room.send(content).await {
        log(&format!(
            "the reply to {} was not sent: {e}",
            event.event_id
        ));
    }
}

/// Carries out an allow-listed user's command; the reply's text.
async fn obey(agent: &Agent, command: &Command) -> String {
    match command {
        Command::Help => command::help_text(),
        Command::Unknown(words) => command::unknown_text(words),
        Command::BadProjectName(name) => command::bad_name_text(name),
        Command::Status => {
            let synapse = agent
                .gitlab
                .homeserver_status(&agent.config.homeserver)
                .await
                .unwrap_or_else(|e| format!("FAILING: {e}"));
            let gitlab = agent
                .gitlab
                .status()
                .await
                .unwrap_or_else(|e| format!("FAILING: {e}"));
            format!("status: synapse {synapse}; gitlab {gitlab}")
        }
        Command::CreateProject(name) => match agent.gitlab.create_project(name).await {
            Ok(Created::New { id, path }) => format!("created project {name} ({path}, id {id})"),
            Ok(Created::Exists { id }) => match id {
                Some(id) => format!("project {name} exists (id {id}); nothing created"),
                None => format!("project {name} exists; nothing created"),
            },
            Err(e) => format!("error: project {name} was not created: {e}"),
        },
        Command::Commit { name, script } => {
            let script = script.as_deref().unwrap_or(command::DEFAULT_SCRIPT);
            let files = [
                ("README.md", command::readme(name)),
                (".gitlab-ci.yml", command::ci_yaml(script)),
            ];
            match agent
                .gitlab
                .commit(name, command::BRANCH, "Hello, world", &files)
                .await
            {
                Ok(sha) => format!(
                    "committed {sha} to {name} on branch {}: README.md, .gitlab-ci.yml (job hello)",
                    command::BRANCH
                ),
                Err(e) => format!("error: nothing was committed to {name}: {e}"),
            }
        }
        Command::OpenMergeRequest(name) => {
            match agent
                .gitlab
                .open_mr(name, command::BRANCH, "Hello, world")
                .await
            {
                Ok((iid, true)) => format!(
                    "opened merge request !{iid} in {name} ({} -> main)",
                    command::BRANCH
                ),
                Ok((iid, false)) => format!(
                    "merge request !{iid} in {name} is open already ({} -> main); nothing opened",
                    command::BRANCH
                ),
                Err(e) => format!("error: no merge request was opened in {name}: {e}"),
            }
        }
        Command::Pipeline(name) => {
            match agent
                .gitlab
                .latest_pipeline(name, command::BRANCH, PIPELINE_WAIT)
                .await
            {
                Ok(Some((pipeline, jobs))) => pipeline_text(name, &pipeline, &jobs),
                Ok(None) => format!("error: no pipeline for {} in {name}", command::BRANCH),
                Err(e) => format!("error: the pipeline of {name} is unknown: {e}"),
            }
        }
        Command::Merge(name) => match agent.gitlab.merge(name, command::BRANCH).await {
            Ok((iid, sha)) => format!("merged !{iid} into main of {name} (merge commit {sha})"),
            Err(e) => format!("error: nothing was merged in {name}: {e}"),
        },
        Command::DeleteProject(name) => match agent.gitlab.delete_project(name).await {
            Ok(Some(id)) => format!("deleted project {name} (id {id})"),
            Ok(None) => format!("project {name} does not exist; nothing deleted"),
            Err(e) => format!("error: project {name} was not deleted: {e}"),
        },
    }
}

/// How long `!rave pipeline` waits for a running pipeline to finish.
const PIPELINE_WAIT: Duration = Duration::from_secs(15);

/// `pipeline 7 of NAME on hello-world: success (job hello: success)`.
fn pipeline_text(name: &str, pipeline: &serde_json::Value, jobs: &[serde_json::Value]) -> String {
    let status = pipeline["status"].as_str().unwrap_or("unknown");
    let jobs: Vec<String> = jobs
        .iter()
        .map(|j| {
            format!(
                "job {}: {}",
                j["name"].as_str().unwrap_or("?"),
                j["status"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let finished = crate::gitlab::FINAL_STATUSES.contains(&status);
    format!(
        "pipeline {} of {name} on {}: {status}{} ({})",
        pipeline["id"],
        command::BRANCH,
        if finished { "" } else { ", not finished" },
        if jobs.is_empty() {
            "no jobs".to_string()
        } else {
            jobs.join(", ")
        }
    )
}
