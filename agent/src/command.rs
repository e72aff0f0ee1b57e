//! The `!rave` command language: parsing a message body (pure) and the
//! fixed texts of the replies. The contract a checker holds an agent to is
//! in README.md ("Agent contract").

/// The prefix of every command.
pub const PREFIX: &str = "!rave";

/// One parsed message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Status,
    CreateProject(String),
    /// `!rave create project` with a name GitLab would refuse.
    BadProjectName(String),
    /// Starts with `!rave` but is no known command (the words after it).
    Unknown(String),
}

/// The command in `body`, or `None` when the message is not for the agent.
pub fn parse(body: &str) -> Option<Command> {
    let body = body.trim();
    let rest = body.strip_prefix(PREFIX)?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    Some(match words.as_slice() {
        ["help"] | [] => Command::Help,
        ["status"] => Command::Status,
        ["create", "project", name] => {
            if valid_project_name(name) {
                Command::CreateProject((*name).to_string())
            } else {
                Command::BadProjectName((*name).to_string())
            }
        }
        _ => Command::Unknown(words.join(" ")),
    })
}

/// A GitLab project path: letters, digits, `_`, `-`, `.`; starting with a
/// letter or digit; not ending in `.git` or `.atom`; at most 100 bytes.
pub fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !name.ends_with(".git")
        && !name.ends_with(".atom")
}

/// Whether a command sent at `sent_ms` is too old to obey at `now_ms`
/// (both ms since the epoch; a clock behind the server's is no age).
pub fn too_old(now_ms: u64, sent_ms: u64, max_age_ms: u64) -> bool {
    now_ms.saturating_sub(sent_ms) > max_age_ms
}

/// The answer to `!rave help`.
pub fn help_text() -> String {
    "rave-agent commands: `!rave help` (this text), `!rave status` (the stack as the agent sees it), \
     `!rave create project NAME` (a GitLab project; an existing name is answered \"exists\")"
        .to_string()
}

/// The answer to an unknown command.
pub fn unknown_text(words: &str) -> String {
    format!("error: unknown command `{PREFIX} {words}`; try `{PREFIX} help`")
}

/// The answer to a user outside the allow-list.
pub fn refusal_text(sender: &str) -> String {
    format!("refused: {sender} is not allowed to command this agent; nothing was done")
}

/// The answer to a project name GitLab would refuse.
pub fn bad_name_text(name: &str) -> String {
    format!(
        "error: `{name}` is not a valid project name (letters, digits, `_`, `-`, `.`; starting with a letter or digit)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bodies() {
        let cases = [
            ("!rave help", Some(Command::Help)),
            ("  !rave   status ", Some(Command::Status)),
            (
                "!rave create project hello-world-1",
                Some(Command::CreateProject("hello-world-1".into())),
            ),
            (
                "!rave create project ../x",
                Some(Command::BadProjectName("../x".into())),
            ),
            ("!rave dance", Some(Command::Unknown("dance".into()))),
            (
                "!rave create project a b",
                Some(Command::Unknown("create project a b".into())),
            ),
            ("!raven status", None),
            ("hello", None),
        ];
        for (body, expect) in cases {
            assert_eq!(parse(body), expect, "{body}");
        }
    }

    #[test]
    fn old_commands() {
        assert!(!too_old(100_000, 50_000, 60_000));
        assert!(too_old(200_000, 50_000, 60_000));
        assert!(!too_old(50_000, 100_000, 60_000));
    }

    #[test]
    fn project_names() {
        assert!(valid_project_name("hello-world_1.x"));
        assert!(!valid_project_name("-x"));
        assert!(!valid_project_name("x.git"));
        assert!(!valid_project_name("a/b"));
        assert!(!valid_project_name(&"a".repeat(101)));
    }
}
