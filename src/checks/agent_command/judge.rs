//! Judges one command's round trip: the room was usable, the agent was in
//! it, and the agent's reply to the command's event says what the spec
//! asks.

use super::spec::Spec;
use crate::check::Verdict;

/// One `m.room.message` event as seen in the room.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event_id: String,
    pub sender: String,
    pub body: String,
    /// The homeserver's timestamp (ms since the epoch).
    pub origin_server_ts: Option<u64>,
    /// The event this one replies to (`m.relates_to.m.in_reply_to`).
    pub in_reply_to: Option<String>,
}

/// What the probe saw.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// The requests, in order, with their status (no token, no password).
    pub steps: Vec<String>,
    /// Why the probe stopped before the command was answered or the
    /// deadline came (login refused, room not joined, agent absent...).
    pub stopped: Option<String>,
    pub room_id: Option<String>,
    /// The room has `m.room.encryption` state.
    pub encrypted: bool,
    /// The command as sent.
    pub command: Option<Message>,
    /// The agent's message that replies to the command.
    pub reply: Option<Message>,
    /// The agent's other messages after the command (no reply relation to it).
    pub unrelated: Vec<Message>,
    /// From sending the command to the reply, or to giving up (ms, local clock).
    pub waited_ms: f64,
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let expected = format!(
        "{} answers `{}` from {} in {} with a reply{}",
        spec.agent,
        spec.command,
        spec.user,
        spec.room,
        conditions(spec)
    );
    let evidence = evidence(facts);
    if facts.encrypted {
        let room = facts.room_id.as_deref().unwrap_or(&spec.room);
        return Verdict::fail(
            expected,
            format!("the control room {room} is encrypted (m.room.encryption is set); this check reads no encrypted events: use an unencrypted control room"),
        )
        .with_evidence(evidence);
    }
    if let Some(why) = &facts.stopped {
        return Verdict::fail(expected, why.clone()).with_evidence(evidence);
    }
    let Some(command) = &facts.command else {
        return Verdict::fail(expected, "the command was not sent").with_evidence(evidence);
    };
    let Some(reply) = &facts.reply else {
        let mut found = format!(
            "no reply from {} to {} within {:.1} s",
            spec.agent,
            command.event_id,
            facts.waited_ms / 1000.0
        );
        if !facts.unrelated.is_empty() {
            found.push_str(&format!(
                "; {} sent {} message(s) without a reply relation to it, the last: \"{}\"",
                spec.agent,
                facts.unrelated.len(),
                facts.unrelated[facts.unrelated.len() - 1].body
            ));
        }
        return Verdict::fail(expected, found)
            .with_evidence(evidence)
            .with_metric("waited_ms", facts.waited_ms);
    };
    let lacking: Vec<&String> = spec
        .reply_contains
        .iter()
        .filter(|s| !reply.body.contains(s.as_str()))
        .collect();
    let unwanted: Vec<&String> = spec
        .reply_not_contains
        .iter()
        .filter(|s| reply.body.contains(s.as_str()))
        .collect();
    let found = format!("{} replied \"{}\"", reply.sender, reply.body);
    let mut verdict = if let Some(s) = lacking.first() {
        Verdict::fail(expected, format!("{found}: the reply lacks \"{s}\""))
    } else if let Some(s) = unwanted.first() {
        Verdict::fail(expected, format!("{found}: the reply contains \"{s}\""))
    } else {
        Verdict::pass(expected, found)
    };
    verdict = verdict
        .with_evidence(evidence)
        .with_metric("observed_round_trip_ms", facts.waited_ms);
    if let (Some(sent), Some(answered)) = (command.origin_server_ts, reply.origin_server_ts) {
        verdict = verdict.with_metric("round_trip_ms", answered.saturating_sub(sent) as f64);
    }
    verdict
}

fn conditions(spec: &Spec) -> String {
    let mut parts: Vec<String> = spec
        .reply_contains
        .iter()
        .map(|s| format!("containing \"{s}\""))
        .collect();
    parts.extend(
        spec.reply_not_contains
            .iter()
            .map(|s| format!("not containing \"{s}\"")),
    );
    if parts.is_empty() {
        String::new()
    } else {
        format!(" {}", parts.join(" and "))
    }
}

fn describe(m: &Message) -> String {
    let ts = m
        .origin_server_ts
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    let relation = m
        .in_reply_to
        .as_deref()
        .map_or_else(String::new, |r| format!(" (in reply to {r})"));
    format!(
        "{} from {} at {ts} ms{relation}: \"{}\"",
        m.event_id, m.sender, m.body
    )
}

fn evidence(facts: &Facts) -> String {
    let mut lines = facts.steps.clone();
    if let Some(room) = &facts.room_id {
        lines.push(format!("room: {room}"));
    }
    if let Some(c) = &facts.command {
        lines.push(format!("sent: {}", describe(c)));
    }
    if let Some(r) = &facts.reply {
        lines.push(format!("reply: {}", describe(r)));
    }
    for m in facts.unrelated.iter().take(5) {
        lines.push(format!("unrelated: {}", describe(m)));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(contains: &[&str], not: &[&str]) -> Spec {
        let list = |v: &[&str]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        toml::from_str(&format!(
            "base_url = \"http://hs\"\nuser = \"@op:x\"\npassword = \"pw\"\nagent = \"@agent:x\"\nroom = \"#c:x\"\ncommand = \"!rave status\"\nreply_contains = [{}]\nreply_not_contains = [{}]",
            list(contains),
            list(not)
        ))
        .unwrap()
    }

    fn message(id: &str, sender: &str, body: &str, ts: u64, reply_to: Option<&str>) -> Message {
        Message {
            event_id: id.into(),
            sender: sender.into(),
            body: body.into(),
            origin_server_ts: Some(ts),
            in_reply_to: reply_to.map(String::from),
        }
    }

    fn facts(reply: Option<Message>) -> Facts {
        Facts {
            steps: vec!["POST /_matrix/client/v3/login -> 200".into()],
            room_id: Some("!r:x".into()),
            command: Some(message("$c", "@op:x", "!rave status", 1000, None)),
            reply,
            waited_ms: 130.0,
            ..Facts::default()
        }
    }

    fn check(spec: &Spec, facts: &Facts, pass: bool, found: &str) {
        let v = judge(spec, facts);
        assert_eq!(v.pass, pass, "{v:?}");
        assert!(v.found.contains(found), "`{found}` not in {v:?}");
    }

    #[test]
    fn judges_replies() {
        let ok = Some(message("$r", "@agent:x", "status: synapse ok", 1120, Some("$c")));
        let v = judge(&spec(&["status:"], &["FAILING"]), &facts(ok.clone()));
        assert!(v.pass, "{v:?}");
        assert_eq!(v.metrics["round_trip_ms"], 120.0);
        assert!(v.evidence.contains("reply: $r from @agent:x at 1120 ms (in reply to $c)"));
        check(&spec(&["exists"], &[]), &facts(ok.clone()), false, "lacks \"exists\"");
        check(&spec(&[], &["synapse"]), &facts(ok), false, "contains \"synapse\"");
        let mut silent = facts(None);
        silent.waited_ms = 9000.0;
        check(&spec(&["status:"], &[]), &silent, false, "no reply from @agent:x to $c within 9.0 s");
        silent.unrelated = vec![message("$u", "@agent:x", "hello", 1200, None)];
        check(&spec(&["status:"], &[]), &silent, false, "without a reply relation to it, the last: \"hello\"");
    }

    #[test]
    fn setup_failures_and_encryption() {
        let mut f = facts(None);
        f.stopped = Some("@agent:x did not join !r:x (membership: invite)".into());
        check(&spec(&["x"], &[]), &f, false, "did not join");
        f.encrypted = true;
        check(&spec(&["x"], &[]), &f, false, "is encrypted");
    }
}
