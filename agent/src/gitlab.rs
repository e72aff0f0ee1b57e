//! The agent's side effects and what it reports: GitLab's REST API
//! (`/api/v4`, `PRIVATE-TOKEN`) and the homeserver's public versions
//! endpoint. Every request has a deadline.

use std::time::Duration;

use matrix_sdk::reqwest;
use serde_json::{json, Value};

/// The deadline of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What creating a project came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new project: its id and path with namespace.
    New { id: u64, path: String },
    /// A project of that name was there already: its id.
    Exists { id: Option<u64> },
}

/// A GitLab instance, reached with one token.
pub struct GitLab {
    client: reqwest::Client,
    base_url: String,
    token: String,
}

impl GitLab {
    pub fn new(base_url: &str, token: &str) -> Result<GitLab, String> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(GitLab {
            client,
            base_url: base_url.to_string(),
            token: token.to_string(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header("PRIVATE-TOKEN", &self.token);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("{method} {path}: status {status}, body unreadable: {e}"))?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// The project whose `path` (or name) is `name`, if any.
    pub async fn find_project(&self, name: &str) -> Result<Option<Value>, String> {
        let (status, value) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v4/projects?search={name}&simple=true"),
                None,
            )
            .await?;
        if status != 200 {
            return Err(format!(
                "GET /api/v4/projects?search={name}: status {status}: {}",
                message(&value)
            ));
        }
        Ok(value.as_array().and_then(|projects| {
            projects
                .iter()
                .find(|p| p["path"] == name || p["name"] == name)
                .cloned()
        }))
    }

    /// Creates project `name` unless it exists.
    pub async fn create_project(&self, name: &str) -> Result<Created, String> {
        if let Some(project) = self.find_project(name).await? {
            return Ok(Created::Exists {
                id: project["id"].as_u64(),
            });
        }
        let (status, value) = self
            .call(
                reqwest::Method::POST,
                "/api/v4/projects",
                Some(json!({ "name": name, "path": name })),
            )
            .await?;
        match status {
            201 => Ok(Created::New {
                id: value["id"].as_u64().unwrap_or(0),
                path: value["path_with_namespace"]
                    .as_str()
                    .unwrap_or(name)
                    .to_string(),
            }),
            // GitLab's answer to a name taken meanwhile.
            400 if value.to_string().contains("has already been taken") => {
                Ok(Created::Exists { id: None })
            }
            _ => Err(format!(
                "POST /api/v4/projects: status {status}: {}",
                message(&value)
            )),
        }
    }

    /// The instance's version and how many projects the token sees.
    pub async fn status(&self) -> Result<String, String> {
        let (status, version) = self
            .call(reqwest::Method::GET, "/api/v4/version", None)
            .await?;
        if status != 200 {
            return Err(format!(
                "GET /api/v4/version: status {status}: {}",
                message(&version)
            ));
        }
        let (status, projects) = self
            .call(reqwest::Method::GET, "/api/v4/projects?simple=true", None)
            .await?;
        if status != 200 {
            return Err(format!(
                "GET /api/v4/projects: status {status}: {}",
                message(&projects)
            ));
        }
        Ok(format!(
            "ok (version {}, {} projects)",
            version["version"].as_str().unwrap_or("?"),
            projects.as_array().map_or(0, Vec::len)
        ))
    }

    /// The homeserver's spec versions (`/_matrix/client/versions`).
    pub async fn homeserver_status(&self, homeserver: &str) -> Result<String, String> {
        let path = "/_matrix/client/versions";
        let response = self
            .client
            .get(format!("{homeserver}{path}"))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status != 200 {
            return Err(format!("GET {path}: status {status}"));
        }
        let versions = value["versions"].as_array().map_or(0, Vec::len);
        let latest = value["versions"]
            .as_array()
            .and_then(|v| v.last())
            .and_then(Value::as_str)
            .unwrap_or("?");
        Ok(format!("ok ({versions} spec versions, up to {latest})"))
    }
}

/// GitLab's `message` (or `error`) field, else the body.
fn message(value: &Value) -> String {
    match value.get("message").or_else(|| value.get("error")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => value.to_string(),
    }
}
