//! The `[check.agent_command]` table: who sends which command to which
//! agent in which room, and what the reply must say.

use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;
use crate::checks::Password;

/// The table as written in a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    /// The client API base URL, e.g. `http://127.0.0.1:8008`.
    base_url: String,
    /// The user who sends the command: a full user id or a localpart.
    user: String,
    /// That user's password, normally `${secret:...}`.
    password: Password,
    /// The agent's full user id, e.g. `@rave-agent:rave.local`.
    agent: String,
    /// The control room's alias, e.g. `#rave-control:rave.local`.
    room: String,
    /// Users to invite besides the agent (e.g. an outsider a later check
    /// sends as), so the room can stay invite-only.
    #[serde(default)]
    invite: Vec<String>,
    /// The message body sent, e.g. `!rave create project hello-${run.id}`.
    command: String,
    /// Substrings the reply's body must contain.
    #[serde(default)]
    reply_contains: Vec<String>,
    /// Substrings the reply's body must not contain.
    #[serde(default)]
    reply_not_contains: Vec<String>,
    /// A PEM file of CA certificates to trust for an https `base_url`.
    #[serde(default)]
    ca_file: Option<PathBuf>,
    /// `"direct"` or `"host"` (through the host's tunnel); default: the host's.
    #[serde(default)]
    via: Option<Via>,
}

/// A checked `[check.agent_command]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// Without a trailing slash.
    pub base_url: String,
    pub user: String,
    pub password: Password,
    pub agent: String,
    pub room: String,
    pub invite: Vec<String>,
    pub command: String,
    pub reply_contains: Vec<String>,
    pub reply_not_contains: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub via: Option<Via>,
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;

    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let base_url = crate::checks::http_base_url(&raw.base_url, "http://127.0.0.1:8008")?;
        if !is_full_id(&raw.agent, '@') {
            return Err(format!(
                "`agent = \"{}\"` is not a full user id; write e.g. `agent = \"@rave-agent:rave.local\"`",
                raw.agent
            ));
        }
        if let Some(bad) = raw.invite.iter().find(|u| !is_full_id(u, '@')) {
            return Err(format!(
                "`invite` holds \"{bad}\", not a full user id; write e.g. `invite = [\"@outsider:rave.local\"]`"
            ));
        }
        if !is_full_id(&raw.room, '#') {
            return Err(format!(
                "`room = \"{}\"` is not a room alias; write e.g. `room = \"#rave-control:rave.local\"`",
                raw.room
            ));
        }
        if raw.command.trim().is_empty() {
            return Err(
                "`command` is empty; write the message to send, e.g. `command = \"!rave status\"`"
                    .into(),
            );
        }
        if raw.reply_contains.is_empty() && raw.reply_not_contains.is_empty() {
            return Err("set `reply_contains` (or `reply_not_contains`): a reply is judged by its body, e.g. `reply_contains = [\"created project\"]`".into());
        }
        Ok(Spec {
            base_url,
            user: raw.user,
            password: raw.password,
            agent: raw.agent,
            room: raw.room,
            invite: raw.invite,
            command: raw.command,
            reply_contains: raw.reply_contains,
            reply_not_contains: raw.reply_not_contains,
            ca_file: raw.ca_file,
            via: raw.via,
        })
    }
}

impl Spec {
    /// The alias's localpart (`#rave-control:rave.local` -> `rave-control`).
    pub fn room_localpart(&self) -> &str {
        self.room[1..].split(':').next().unwrap_or_default()
    }
}

/// `@local:server` or `#local:server` (`sigil` first).
fn is_full_id(value: &str, sigil: char) -> bool {
    value
        .strip_prefix(sigil)
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "base_url = \"http://hs:8008/\"\nuser = \"operator\"\npassword = \"pw\"\nagent = \"@rave-agent:rave.local\"\nroom = \"#rave-control:rave.local\"\ncommand = \"!rave status\"\n";

    fn parse(extra: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(&format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_table() {
        let s = parse("reply_contains = [\"status:\"]").unwrap();
        assert_eq!(s.base_url, "http://hs:8008");
        assert_eq!(s.room_localpart(), "rave-control");
        assert!(!format!("{s:?}").contains("pw\""));
    }

    #[test]
    fn rejects_wrong_fields_with_the_fix() {
        let cases = [
            ("", "set `reply_contains`"),
            (
                "reply_contains = [\"x\"]\ninvite = [\"outsider\"]",
                "not a full user id",
            ),
            ("reply_contains = [\"x\"]\nreply = \"x\"", "unknown field `reply`"),
        ];
        for (extra, expect) in cases {
            let err = parse(extra).unwrap_err();
            assert!(err.contains(expect), "{extra}: {err}");
        }
        let replaced = [
            ("\"@rave-agent:rave.local\"", "\"rave-agent\"", "`agent = \"rave-agent\"`"),
            ("\"#rave-control:rave.local\"", "\"!abc:x\"", "not a room alias"),
            ("\"!rave status\"", "\" \"", "`command` is empty"),
            ("http://hs:8008/", "hs", "not an http(s) URL"),
        ];
        for (from, to, expect) in replaced {
            let text = format!("{}reply_contains = [\"x\"]", BASE.replace(from, to));
            let err = toml::from_str::<Spec>(&text).unwrap_err().to_string();
            assert!(err.contains(expect), "{to}: {err}");
        }
    }
}
