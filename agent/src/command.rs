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
    /// `!rave commit NAME [SCRIPT]`: the hello-world files on branch
    /// [`BRANCH`]; SCRIPT (the words after the name) replaces the job's
    /// check.
    Commit {
        name: String,
        script: Option<String>,
    },
    /// `!rave open mr NAME`: a merge request from [`BRANCH`] to `main`.
    OpenMergeRequest(String),
    /// `!rave pipeline NAME`: the latest pipeline of [`BRANCH`].
    Pipeline(String),
    /// `!rave merge NAME`: merges the open merge request from [`BRANCH`].
    Merge(String),
    /// `!rave delete project NAME`.
    DeleteProject(String),
    /// A command naming a project GitLab would refuse.
    BadProjectName(String),
    /// Starts with `!rave` but is no known command (the words after it).
    Unknown(String),
}

/// The branch the hello-world flow commits to and merges from.
pub const BRANCH: &str = "hello-world";

/// The job's script when `!rave commit` names none: the job proves it ran
/// on the commit (the README says hello).
pub const DEFAULT_SCRIPT: &str = "grep 'Hello, world' README.md";

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
        ["create", "project", name] => named(name, Command::CreateProject),
        ["commit", name, script @ ..] => named(name, |name| Command::Commit {
            name,
            script: (!script.is_empty()).then(|| script.join(" ")),
        }),
        ["open", "mr", name] => named(name, Command::OpenMergeRequest),
        ["pipeline", name] => named(name, Command::Pipeline),
        ["merge", name] => named(name, Command::Merge),
        ["delete", "project", name] => named(name, Command::DeleteProject),
        _ => Command::Unknown(words.join(" ")),
    })
}

/// `make(name)` for a valid project name, else [`Command::BadProjectName`].
fn named(name: &str, make: impl FnOnce(String) -> Command) -> Command {
    if valid_project_name(name) {
        make(name.to_string())
    } else {
        Command::BadProjectName(name.to_string())
    }
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
    format!(
        "rave-agent commands: `!rave help` (this text), `!rave status` (the stack as the agent sees it), \
         `!rave create project NAME` (a GitLab project; an existing name is answered \"exists\"), \
         `!rave commit NAME [SCRIPT]` (README.md and a .gitlab-ci.yml with job `hello` on branch {BRANCH}), \
         `!rave open mr NAME` ({BRANCH} -> main), `!rave pipeline NAME` (the latest pipeline of {BRANCH}), \
         `!rave merge NAME`, `!rave delete project NAME`"
    )
}

/// The README.md `!rave commit` writes.
pub fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nHello, world! rave-agent made this project; its pipeline runs job `hello` in a sandbox.\n"
    )
}

/// The `.gitlab-ci.yml` `!rave commit` writes: one stage, one job `hello`
/// running `script` and then saying so. Lines are JSON strings, which YAML
/// reads as double-quoted scalars whatever they hold.
pub fn ci_yaml(script: &str) -> String {
    let quote = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "stages:\n  - test\n\nhello:\n  stage: test\n  script:\n    - {}\n    - {}\n",
        quote(script),
        quote("echo \"hello-world: job hello passed on $CI_COMMIT_SHA\""),
    )
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
                "!rave commit p1",
                Some(Command::Commit {
                    name: "p1".into(),
                    script: None,
                }),
            ),
            (
                "!rave commit p1 exit  3",
                Some(Command::Commit {
                    name: "p1".into(),
                    script: Some("exit 3".into()),
                }),
            ),
            (
                "!rave open mr p1",
                Some(Command::OpenMergeRequest("p1".into())),
            ),
            ("!rave pipeline p1", Some(Command::Pipeline("p1".into()))),
            ("!rave merge p1", Some(Command::Merge("p1".into()))),
            (
                "!rave delete project p1",
                Some(Command::DeleteProject("p1".into())),
            ),
            (
                "!rave merge ../p",
                Some(Command::BadProjectName("../p".into())),
            ),
            ("!rave merge", Some(Command::Unknown("merge".into()))),
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
    fn ci_file_quotes_the_script() {
        let yaml = ci_yaml("grep 'a \"b\"' README.md");
        assert!(yaml.contains("hello:\n  stage: test\n"), "{yaml}");
        assert!(
            yaml.contains(r#"    - "grep 'a \"b\"' README.md""#),
            "{yaml}"
        );
        assert!(readme("p1").starts_with("# p1\n"));
        assert!(readme("p1").contains("Hello, world"));
        assert!(DEFAULT_SCRIPT.contains("Hello, world"));
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
