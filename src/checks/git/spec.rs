//! The `[check.git]` table: a remote repository, the ref to look at and
//! what its tree and head commit must hold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::checks::via::Via;
use crate::checks::Password;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    url: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Password>,
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    commit_from: Option<RawCommitFrom>,
    #[serde(default)]
    message_contains: Option<String>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    via: Option<Via>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawCommitFrom {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    pointer: Option<String>,
}

/// Where the repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// An `http://` or `https://` URL (git's smart HTTP).
    Http(String),
    /// A repository on this machine, as a `file://` URL (so `--depth` applies).
    File(String),
}

impl Remote {
    /// The URL git is given.
    pub fn url(&self) -> &str {
        match self {
            Remote::Http(u) | Remote::File(u) => u,
        }
    }
}

/// An API answer that names the commit the ref must point to.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitFrom {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// JSON pointer to the commit id in the answer (default `/commit/id`,
    /// as in GitLab's `/repository/branches/:branch`).
    pub pointer: String,
}

/// A git check: the remote, the credentials, the ref and the assertions.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    pub remote: Remote,
    /// The user name sent with `password` (default `oauth2`).
    pub username: Option<String>,
    pub password: Option<Password>,
    /// Branch or tag; `None`: the remote's HEAD.
    pub git_ref: Option<String>,
    /// Path -> substrings it must contain (`[]`: it must exist).
    pub files: BTreeMap<String, Vec<String>>,
    /// Paths that must not exist.
    pub absent: Vec<String>,
    pub commit_from: Option<CommitFrom>,
    /// A substring of the head commit's subject.
    pub message_contains: Option<String>,
    /// PEM file of the CA that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    pub via: Option<Via>,
}

/// A path inside the repository: relative, no `.` or `..` parts.
fn repo_path(field: &str, path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty()
        || path.starts_with('/')
        || trimmed
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "`{field}` names `{path}`: write a path inside the repository, relative to its root, e.g. \"README.md\" or \"src/main.rs\""
        ));
    }
    Ok(trimmed.to_string())
}

/// The `url` field as a remote: http(s) without credentials in it, or a
/// local path (absolute, or `file://`).
fn remote(url: &str) -> Result<Remote, String> {
    let url = url.trim();
    if let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return Err(
                "`url` carries credentials (`user:password@`): remove them from the URL and set `username` and `password = \"${secret:...}\"` instead, so they never appear on a command line".into(),
            );
        }
        if authority.is_empty() {
            return Err(format!("`url = \"{url}\"` has no host"));
        }
        return Ok(Remote::Http(url.to_string()));
    }
    if let Some(path) = url.strip_prefix("file://") {
        if path.starts_with('/') {
            return Ok(Remote::File(url.to_string()));
        }
    } else if url.starts_with('/') {
        return Ok(Remote::File(format!("file://{url}")));
    }
    Err(format!(
        "`url = \"{url}\"` is neither an http(s) URL nor an absolute path: write e.g. `url = \"${{gitlab.url}}/rave/hello-world.git\"` or `url = \"/srv/git/hello.git\"`"
    ))
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;
    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let remote = remote(&raw.url)?;
        if let Remote::File(_) = remote {
            for (field, set) in [
                ("password", raw.password.is_some()),
                ("username", raw.username.is_some()),
                ("ca_file", raw.ca_file.is_some()),
                ("via", raw.via.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "`{field}` does not apply to a repository on this machine (`url` is a path); remove it"
                    ));
                }
            }
        }
        if raw.username.is_some() && raw.password.is_none() {
            return Err(
                "`username` is set without `password`: add `password = \"${secret:gitlab_token}\"` or remove `username`".into(),
            );
        }
        let git_ref = match raw.git_ref.as_deref().map(str::trim) {
            None => None,
            Some(r) => {
                let name = r
                    .strip_prefix("refs/heads/")
                    .or_else(|| r.strip_prefix("refs/tags/"))
                    .unwrap_or(r);
                if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace)
                {
                    return Err(format!(
                        "`ref = \"{r}\"` is not a branch or tag name: write e.g. `ref = \"main\"`"
                    ));
                }
                Some(name.to_string())
            }
        };
        let mut files = BTreeMap::new();
        for (path, needles) in raw.files {
            files.insert(repo_path("files", &path)?, needles);
        }
        let absent = raw
            .absent
            .iter()
            .map(|p| repo_path("absent", p))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(p) = absent.iter().find(|p| files.contains_key(*p)) {
            return Err(format!(
                "`{p}` is in both `files` (must exist) and `absent` (must not): keep one"
            ));
        }
        let commit_from = match raw.commit_from {
            None => None,
            Some(c) => {
                let url = c.url.trim().to_string();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "`commit_from.url = \"{url}\"` is not an http(s) URL: write e.g. `url = \"${{gitlab.url}}/api/v4/projects/rave%2Fhello/repository/branches/main\"`"
                    ));
                }
                let pointer = c.pointer.unwrap_or_else(|| "/commit/id".into());
                if !pointer.starts_with('/') {
                    return Err(format!(
                        "`commit_from.pointer = \"{pointer}\"` is not a JSON pointer: write e.g. \"/commit/id\""
                    ));
                }
                Some(CommitFrom {
                    url,
                    headers: c.headers,
                    pointer,
                })
            }
        };
        Ok(Spec {
            remote,
            username: raw.username,
            password: raw.password,
            git_ref,
            files,
            absent,
            commit_from,
            message_contains: raw.message_contains,
            ca_file: raw.ca_file,
            via: raw.via,
        })
    }
}

impl Spec {
    /// The user name sent with the password, when there is one.
    pub fn user(&self) -> Option<&str> {
        self.password
            .as_ref()
            .map(|_| self.username.as_deref().unwrap_or("oauth2"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<Spec, String> {
        toml::from_str::<Spec>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn urls_paths_and_credentials() {
        let s = spec("url = \"https://git.rave.local/rave/x.git\"\npassword = \"t\"").unwrap();
        assert_eq!(s.user(), Some("oauth2"));
        assert_eq!(
            spec("url = \"/srv/x.git\"").unwrap().remote,
            Remote::File("file:///srv/x.git".into())
        );
        assert!(spec("url = \"https://u:p@h/x.git\"")
            .unwrap_err()
            .contains("carries credentials"));
        assert!(spec("url = \"x.git\"")
            .unwrap_err()
            .contains("neither an http(s) URL"));
        assert!(spec("url = \"/srv/x.git\"\npassword = \"t\"")
            .unwrap_err()
            .contains("`password` does not apply"));
        assert!(spec("url = \"http://h/x\"\nusername = \"u\"")
            .unwrap_err()
            .contains("without `password`"));
        assert!(spec("url = \"http://h/x\"\nbogus = 1")
            .unwrap_err()
            .contains("unknown field"));
    }

    #[test]
    fn refs_and_paths_are_checked() {
        assert_eq!(
            spec("url = \"/r\"\nref = \"refs/heads/main\"")
                .unwrap()
                .git_ref
                .as_deref(),
            Some("main")
        );
        assert!(spec("url = \"/r\"\nref = \"--upload-pack=x\"")
            .unwrap_err()
            .contains("not a branch or tag"));
        assert!(spec("url = \"/r\"\nfiles = { \"../etc/passwd\" = [] }")
            .unwrap_err()
            .contains("inside the repository"));
        assert!(spec("url = \"/r\"\nabsent = [\"/x\"]")
            .unwrap_err()
            .contains("inside the repository"));
        assert!(spec("url = \"/r\"\nfiles = { \"a\" = [] }\nabsent = [\"a\"]")
            .unwrap_err()
            .contains("keep one"));
        let s = spec("url = \"/r\"\ncommit_from = { url = \"http://h/b\" }").unwrap();
        assert_eq!(s.commit_from.unwrap().pointer, "/commit/id");
        assert!(
            spec("url = \"/r\"\ncommit_from = { url = \"http://h/b\", pointer = \"commit\" }")
                .unwrap_err()
                .contains("not a JSON pointer")
        );
    }
}
