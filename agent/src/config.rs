//! The agent's configuration: a small TOML file, checked when it is read.
//! Secrets (the Matrix password, the GitLab token) come from files or
//! environment variables, never from the command line or the file itself.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable that may hold the Matrix password.
pub const PASSWORD_ENV: &str = "RAVE_AGENT_PASSWORD";
/// The environment variable that may hold the GitLab token.
pub const GITLAB_TOKEN_ENV: &str = "RAVE_AGENT_GITLAB_TOKEN";

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// The homeserver's client API, e.g. `http://127.0.0.1:8008`.
    homeserver: String,
    /// The agent's own user id, e.g. `@rave-agent:rave.local`.
    user: String,
    /// A file holding the agent's password (else `RAVE_AGENT_PASSWORD`).
    #[serde(default)]
    password_file: Option<PathBuf>,
    /// The users whose commands the agent obeys and whose invites it accepts.
    allowed_users: Vec<String>,
    /// The GitLab instance the agent acts on, e.g. `http://127.0.0.1:8929`.
    gitlab_url: String,
    /// A file holding a GitLab token with the `api` scope (else `RAVE_AGENT_GITLAB_TOKEN`).
    #[serde(default)]
    gitlab_token_file: Option<PathBuf>,
}

/// A checked configuration, secrets read.
#[derive(Clone)]
pub struct Config {
    pub homeserver: String,
    pub user: String,
    pub password: String,
    pub allowed_users: Vec<String>,
    pub gitlab_url: String,
    pub gitlab_token: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("homeserver", &self.homeserver)
            .field("user", &self.user)
            .field("allowed_users", &self.allowed_users)
            .field("gitlab_url", &self.gitlab_url)
            .finish_non_exhaustive()
    }
}

/// Reads and checks the file at `path`; `env` looks up an environment
/// variable (the process environment, or a table in tests).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the configuration: {e}", path.display()))?;
    parse(&text, env).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks the text of a configuration file.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    let homeserver = http_url("homeserver", &raw.homeserver, "http://127.0.0.1:8008")?;
    let gitlab_url = http_url("gitlab_url", &raw.gitlab_url, "http://127.0.0.1:8929")?;
    user_id("user", &raw.user)?;
    if raw.allowed_users.is_empty() {
        return Err("field `allowed_users` is empty: list the user ids whose commands the agent obeys, e.g. `allowed_users = [\"@operator:rave.local\"]`".into());
    }
    for u in &raw.allowed_users {
        user_id("allowed_users", u)?;
    }
    let password = secret(
        "password_file",
        raw.password_file.as_deref(),
        PASSWORD_ENV,
        env,
    )?;
    let gitlab_token = secret(
        "gitlab_token_file",
        raw.gitlab_token_file.as_deref(),
        GITLAB_TOKEN_ENV,
        env,
    )?;
    Ok(Config {
        homeserver,
        user: raw.user,
        password,
        allowed_users: raw.allowed_users,
        gitlab_url,
        gitlab_token,
    })
}

fn http_url(field: &str, value: &str, example: &str) -> Result<String, String> {
    let v = value.trim().trim_end_matches('/');
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_string())
    } else {
        Err(format!(
            "field `{field}` = \"{value}\" is not an http(s) URL; write e.g. `{field} = \"{example}\"`"
        ))
    }
}

fn user_id(field: &str, value: &str) -> Result<(), String> {
    let ok = value
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "field `{field}`: \"{value}\" is not a full Matrix user id; write e.g. \"@operator:rave.local\""
        ))
    }
}

fn secret(
    field: &str,
    file: Option<&Path>,
    env_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let value = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            format!(
                "field `{field}`: cannot read {}: {e}; point it at a readable file",
                path.display()
            )
        })?,
        None => env(env_name).ok_or_else(|| {
            format!("neither field `{field}` nor the environment variable {env_name} is set; set one of them")
        })?,
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(format!("the secret of `{field}` (or {env_name}) is empty"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "homeserver = \"http://127.0.0.1:8008/\"\nuser = \"@rave-agent:rave.local\"\nallowed_users = [\"@operator:rave.local\"]\ngitlab_url = \"http://127.0.0.1:8929\"\n";

    fn env(name: &str) -> Option<String> {
        match name {
            PASSWORD_ENV => Some("pw\n".into()),
            GITLAB_TOKEN_ENV => Some("glpat".into()),
            _ => None,
        }
    }

    #[test]
    fn reads_a_config_with_secrets_from_the_environment() {
        let c = parse(BASE, &env).unwrap();
        assert_eq!(c.homeserver, "http://127.0.0.1:8008");
        assert_eq!(c.password, "pw");
        assert!(!format!("{c:?}").contains("glpat"));
    }

    #[test]
    fn errors_name_the_field_and_the_fix() {
        let none = |_: &str| None;
        type Env<'a> = &'a dyn Fn(&str) -> Option<String>;
        let cases: [(String, Env, &str); 5] = [
            (BASE.to_string(), &none, "RAVE_AGENT_PASSWORD"),
            (
                BASE.replace("http://127.0.0.1:8008/", "hs"),
                &env,
                "field `homeserver`",
            ),
            (
                BASE.replace("[\"@operator:rave.local\"]", "[]"),
                &env,
                "`allowed_users` is empty",
            ),
            (
                BASE.replace("\"@operator:rave.local\"", "\"operator\""),
                &env,
                "not a full Matrix user id",
            ),
            (
                format!("{BASE}room = \"x\"\n"),
                &env,
                "unknown field `room`",
            ),
        ];
        for (text, env, expect) in cases {
            let err = parse(&text, env).unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
    }
}
