//! The `[check.command]` table: a program (argv) or a shell script, how to
//! run it, and what its exit code and output should be.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::os::CommandSpec;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    run: Option<Vec<String>>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<PathBuf>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    stdout_contains: Vec<String>,
    #[serde(default)]
    stdout_not_contains: Vec<String>,
    #[serde(default)]
    stderr_contains: Vec<String>,
    #[serde(default)]
    stdout_equals: Option<String>,
}

/// A command check. Exactly one of `run` (argv, no shell) and `script`
/// (run by `sh -c`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<String>,
    /// Expected exit code (default 0).
    pub exit_code: i32,
    pub stdout_contains: Vec<String>,
    pub stdout_not_contains: Vec<String>,
    pub stderr_contains: Vec<String>,
    pub stdout_equals: Option<String>,
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;
    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let argv = match (raw.run, raw.script) {
            (Some(run), None) if !run.is_empty() => run,
            (Some(_), None) => {
                return Err("`run` must name a program: run = [\"prog\", \"arg\"]".into())
            }
            (None, Some(script)) => vec!["sh".into(), "-c".into(), script],
            (Some(_), Some(_)) => return Err("give either `run` or `script`, not both".into()),
            (None, None) => {
                return Err("give `run = [\"prog\", \"arg\"]` or `script = \"...\"`".into())
            }
        };
        Ok(Spec {
            argv,
            env: raw.env,
            cwd: raw.cwd,
            stdin: raw.stdin,
            exit_code: raw.exit_code.unwrap_or(0),
            stdout_contains: raw.stdout_contains,
            stdout_not_contains: raw.stdout_not_contains,
            stderr_contains: raw.stderr_contains,
            stdout_equals: raw.stdout_equals,
        })
    }
}

impl Spec {
    pub fn command(&self) -> CommandSpec {
        CommandSpec {
            program: self.argv[0].clone(),
            args: self.argv[1..].to_vec(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            stdin: self.stdin.as_ref().map(|s| s.as_bytes().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn run_or_script_exactly_once() {
        assert_eq!(spec("run = [\"true\"]").unwrap().argv, ["true"]);
        assert_eq!(
            spec("script = \"echo hi\"").unwrap().argv,
            ["sh", "-c", "echo hi"]
        );
        assert!(spec("").unwrap_err().contains("give `run"));
        assert!(spec("run = [\"a\"]\nscript = \"b\"")
            .unwrap_err()
            .contains("not both"));
        assert!(spec("run = []")
            .unwrap_err()
            .contains("must name a program"));
        assert!(spec("run = [\"a\"]\nexit = 1")
            .unwrap_err()
            .contains("unknown field `exit`"));
    }
}
