//! The agent's side effects and what it reports: GitLab's REST API
//! (`/api/v4`, `PRIVATE-TOKEN`) and the homeserver's public versions
//! endpoint. Every request has a deadline.

use std::time::Duration;

use matrix_sdk::reqwest;
use serde_json::{json, Value};

/// The deadline of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Pipeline statuses after which nothing more happens.
pub const FINAL_STATUSES: [&str; 4] = ["success", "failed", "canceled", "skipped"];

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
                // A README on `main`, so a branch and a merge request can
                // start from it.
                Some(json!({ "name": name, "path": name, "initialize_with_readme": true })),
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

    /// The id of project `name`, or an error saying it does not exist.
    async fn project_id(&self, name: &str) -> Result<u64, String> {
        match self.find_project(name).await? {
            Some(project) => project["id"]
                .as_u64()
                .ok_or_else(|| format!("project {name} has no numeric id in GitLab's answer")),
            None => Err(format!("project {name} does not exist")),
        }
    }

    /// Whether `file` exists on `branch` (false for a missing branch).
    async fn file_exists(&self, id: u64, file: &str, branch: &str) -> Result<bool, String> {
        let path = format!("/api/v4/projects/{id}/repository/files/{file}/raw?ref={branch}");
        let (status, value) = self.call(reqwest::Method::GET, &path, None).await?;
        match status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(format!("GET {path}: status {status}: {}", message(&value))),
        }
    }

    /// Commits `files` (path, content) to `branch` of project `name`,
    /// starting the branch from `main` when it does not exist yet; the new
    /// commit's id.
    pub async fn commit(
        &self,
        name: &str,
        branch: &str,
        message_text: &str,
        files: &[(&str, String)],
    ) -> Result<String, String> {
        let id = self.project_id(name).await?;
        let on_branch =
            self.call(
                reqwest::Method::GET,
                &format!("/api/v4/projects/{id}/repository/branches/{branch}"),
                None,
            )
            .await?
            .0 == 200;
        let from = if on_branch { branch } else { "main" };
        let mut actions = Vec::new();
        for (file, content) in files {
            let action = if self.file_exists(id, file, from).await? {
                "update"
            } else {
                "create"
            };
            actions.push(json!({ "action": action, "file_path": file, "content": content }));
        }
        let mut body =
            json!({ "branch": branch, "commit_message": message_text, "actions": actions });
        if !on_branch {
            body["start_branch"] = json!("main");
        }
        let path = format!("/api/v4/projects/{id}/repository/commits");
        let (status, value) = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        match (status, value["id"].as_str()) {
            (201, Some(commit)) => Ok(commit.to_string()),
            _ => Err(format!("POST {path}: status {status}: {}", message(&value))),
        }
    }

    /// The open merge request from `source` in project `id`, if any.
    async fn open_merge_request(&self, id: u64, source: &str) -> Result<Option<Value>, String> {
        let path =
            format!("/api/v4/projects/{id}/merge_requests?state=opened&source_branch={source}");
        let (status, value) = self.call(reqwest::Method::GET, &path, None).await?;
        if status != 200 {
            return Err(format!("GET {path}: status {status}: {}", message(&value)));
        }
        Ok(value
            .as_array()
            .and_then(|mrs| mrs.iter().find(|m| m["source_branch"] == source).cloned()))
    }

    /// Opens a merge request from `source` to `main` in project `name`
    /// unless one is open: its iid and whether it is new.
    pub async fn open_mr(
        &self,
        name: &str,
        source: &str,
        title: &str,
    ) -> Result<(u64, bool), String> {
        let id = self.project_id(name).await?;
        if let Some(mr) = self.open_merge_request(id, source).await? {
            return Ok((mr["iid"].as_u64().unwrap_or(0), false));
        }
        let path = format!("/api/v4/projects/{id}/merge_requests");
        let body = json!({ "source_branch": source, "target_branch": "main", "title": title });
        let (status, value) = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        match (status, value["iid"].as_u64()) {
            (201, Some(iid)) => Ok((iid, true)),
            _ => Err(format!("POST {path}: status {status}: {}", message(&value))),
        }
    }

    /// The latest pipeline of `branch` in project `name`, waited for until
    /// it finishes or `wait` passes: (pipeline, its jobs).
    pub async fn latest_pipeline(
        &self,
        name: &str,
        branch: &str,
        wait: Duration,
    ) -> Result<Option<(Value, Vec<Value>)>, String> {
        let id = self.project_id(name).await?;
        let until = tokio::time::Instant::now() + wait;
        loop {
            let path = format!("/api/v4/projects/{id}/pipelines?ref={branch}");
            let (status, value) = self.call(reqwest::Method::GET, &path, None).await?;
            if status != 200 {
                return Err(format!("GET {path}: status {status}: {}", message(&value)));
            }
            let newest = value.as_array().and_then(|p| p.first()).cloned();
            let finished = newest
                .as_ref()
                .is_some_and(|p| FINAL_STATUSES.contains(&p["status"].as_str().unwrap_or("")));
            if finished || tokio::time::Instant::now() >= until {
                let Some(pipeline) = newest else {
                    return Ok(None);
                };
                let path = format!("/api/v4/projects/{id}/pipelines/{}/jobs", pipeline["id"]);
                let (status, jobs) = self.call(reqwest::Method::GET, &path, None).await?;
                if status != 200 {
                    return Err(format!("GET {path}: status {status}: {}", message(&jobs)));
                }
                return Ok(Some((
                    pipeline,
                    jobs.as_array().cloned().unwrap_or_default(),
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Merges the open merge request from `source` in project `name`: its
    /// iid and merge commit.
    pub async fn merge(&self, name: &str, source: &str) -> Result<(u64, String), String> {
        let id = self.project_id(name).await?;
        let Some(mr) = self.open_merge_request(id, source).await? else {
            return Err(format!("no open merge request from {source} in {name}"));
        };
        let iid = mr["iid"].as_u64().unwrap_or(0);
        let path = format!("/api/v4/projects/{id}/merge_requests/{iid}/merge");
        let (status, value) = self
            .call(reqwest::Method::PUT, &path, Some(json!({})))
            .await?;
        match (status, value["merge_commit_sha"].as_str()) {
            (200, Some(sha)) => Ok((iid, sha.to_string())),
            _ => Err(format!("PUT {path}: status {status}: {}", message(&value))),
        }
    }

    /// Deletes project `name`: its id, or `None` when there was none.
    pub async fn delete_project(&self, name: &str) -> Result<Option<u64>, String> {
        let Some(project) = self.find_project(name).await? else {
            return Ok(None);
        };
        let id = project["id"].as_u64().unwrap_or(0);
        let path = format!("/api/v4/projects/{id}");
        let (status, value) = self.call(reqwest::Method::DELETE, &path, None).await?;
        match status {
            202 | 204 => Ok(Some(id)),
            _ => Err(format!(
                "DELETE {path}: status {status}: {}",
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
