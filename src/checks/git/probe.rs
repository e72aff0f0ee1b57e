//! Asks git itself what the remote holds: `git ls-remote`, then a shallow
//! clone of the ref (no checkout: files are read from git's objects, so a
//! link in the tree is never followed) into a private directory under the
//! system's temp dir, removed afterwards; `rev-parse`, `log`, `ls-tree`
//! and `cat-file` in it. Git runs on this machine through `LocalExecutor`,
//! each step bounded by the check's deadline, with its configuration
//! isolated (`HOME` the private directory, no system config, no prompts).
//! Credentials never reach argv: a credential helper given with `-c`
//! prints them from environment variables only this git process sees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::judge::{Facts, FileText, StepFailure};
use super::spec::{CommitFrom, Remote, Spec};
use crate::check::{excerpt, ProbeContext};
use crate::checks::via::{self, Route};
use crate::error::error_chain;
use crate::os::{CommandExecutor, CommandSpec, ExecError, LocalExecutor};
use crate::text::marked_tail as tail;

/// Each file is read up to this size.
pub const MAX_FILE: usize = 64 * 1024;
/// How much of git's stderr a failure keeps (its end).
const STDERR_TAIL: usize = 2000;
/// Paths of the tree kept (enough to judge, bounded for huge trees).
const MAX_TREE: usize = 100_000;

const USER_VAR: &str = "SPINUP_SMOKE_GIT_USERNAME";
const PASSWORD_VAR: &str = "SPINUP_SMOKE_GIT_PASSWORD";
/// Variables of the validator's environment that would change what git
/// reads or trusts (another repository, configuration given by the
/// environment, no certificate check); `env -u` removes them.
const UNSET: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_SSL_NO_VERIFY",
    "GIT_PROXY_COMMAND",
];

/// Answers git's `get` with the user name and password from the environment.
const HELPER: &str = "!f() { test \"$1\" = get || exit 0; echo \"username=${SPINUP_SMOKE_GIT_USERNAME}\"; echo \"password=${SPINUP_SMOKE_GIT_PASSWORD}\"; }; f";

/// A private directory under the system's temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!(
            "spinup-smoke-git-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes `user:password@` (or `user@`) from every URL in `text`.
pub fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '\'' || c == '"' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => rest = &tail[at + 1..],
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// What `git ls-remote --symref` printed: the branch HEAD names and each
/// ref with its object.
pub fn parse_ls_remote(out: &str) -> (Option<String>, Vec<(String, String)>) {
    let mut head = None;
    let mut refs = Vec::new();
    for line in out.lines() {
        let Some((left, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(target) = left.strip_prefix("ref: ") {
            if name == "HEAD" {
                head = Some(target.strip_prefix("refs/heads/").unwrap_or(target).to_string());
            }
        } else {
            refs.push((name.to_string(), left.to_string()));
        }
    }
    (head, refs)
}

/// The commit `name` (a branch, else a tag, peeled) points to.
pub fn resolve(refs: &[(String, String)], name: &str) -> Option<String> {
    let find = |full: String| refs.iter().find(|(r, _)| *r == full).map(|(_, id)| id.clone());
    find(format!("refs/heads/{name}"))
        .or_else(|| find(format!("refs/tags/{name}^{{}}")))
        .or_else(|| find(format!("refs/tags/{name}")))
}

/// Runs git steps with the check's isolation, credentials and deadline.
struct Git<'a> {
    ctx: &'a ProbeContext,
    config: Vec<String>,
    env: BTreeMap<String, String>,
    steps: Vec<String>,
}

impl Git<'_> {
    /// Runs `git ARGS` (in `cwd`), its stdout on success.
    async fn run(&mut self, args: &[&str], cwd: Option<&Path>) -> Result<Vec<u8>, StepFailure> {
        let step = args.first().copied().unwrap_or("").to_string();
        let mut all: Vec<String> = Vec::new();
        for name in UNSET {
            all.push("-u".into());
            all.push(name.to_string());
        }
        all.push("git".into());
        for c in &self.config {
            all.push("-c".into());
            all.push(c.clone());
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let command = CommandSpec {
            program: "env".into(),
            args: all,
            env: self.env.clone(),
            cwd: cwd.map(Path::to_path_buf),
            stdin: None,
        };
        let shown = strip_userinfo(&CommandSpec::new("git", args).display());
        let started = Instant::now();
        let result = LocalExecutor.run(&command, self.ctx.deadline).await;
        let ms = started.elapsed().as_millis();
        let fail = |reason: String, stderr: &[u8]| StepFailure {
            step: step.clone(),
            reason,
            stderr: tail(&strip_userinfo(&String::from_utf8_lossy(stderr)), STDERR_TAIL),
        };
        match result {
            Ok(out) if out.exit_code == Some(0) => {
                self.steps.push(format!("$ {shown}: exit 0 in {ms} ms"));
                Ok(out.stdout)
            }
            Ok(out) => {
                let reason = match out.exit_code {
                    Some(c) => format!("exit code {c}"),
                    None => "killed by a signal".into(),
                };
                self.steps.push(format!("$ {shown}: {reason} in {ms} ms"));
                Err(fail(reason, &out.stderr))
            }
            Err(ExecError::TimedOut { partial, .. }) => {
                let reason = format!("no exit before the check's deadline ({ms} ms); git was killed");
                self.steps.push(format!("$ {shown}: {reason}"));
                Err(fail(reason, &partial.stderr))
            }
            Err(e) => {
                let reason = format!("{e} (are env and git installed?)");
                self.steps.push(format!("$ {shown}: {reason}"));
                Err(fail(reason, b""))
            }
        }
    }
}


/// The facts, or as many as were gathered before a step failed.
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let started = Instant::now();
    let mut facts = Facts {
        remote: strip_userinfo(spec.remote.url()),
        username: spec.user().map(str::to_string),
        ..Facts::default()
    };
    if let Err(failure) = gather(spec, ctx, route, &mut facts).await {
        facts.failure = Some(failure);
    }
    facts.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    facts
}

fn setup_failure(step: &str, reason: String) -> StepFailure {
    StepFailure {
        step: step.into(),
        reason,
        stderr: String::new(),
    }
}

async fn gather(
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
    facts: &mut Facts,
) -> Result<(), StepFailure> {
    let scratch = Scratch::new().map_err(|e| setup_failure("setup", e))?;
    let home = scratch.0.display().to_string();
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("HOME", home.as_str()),
        ("XDG_CONFIG_HOME", home.as_str()),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_ASKPASS", ""),
        ("SSH_ASKPASS", ""),
        ("LC_ALL", "C"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    // An empty helper first: only ours answers.
    let mut config = vec!["credential.helper=".to_string()];
    if let (Some(user), Some(password)) = (spec.user(), &spec.password) {
        config.push(format!("credential.helper={HELPER}"));
        env.insert(USER_VAR.into(), user.to_string());
        env.insert(PASSWORD_VAR.into(), password.0.clone());
    }
    let mut git_env_ca = None;
    if let Remote::Http(_) = spec.remote {
        if let Some(ca) = &spec.ca_file {
            if !ca.is_file() {
                return Err(setup_failure(
                    "setup",
                    format!(
                        "ca_file {} is not a readable file; point it at the PEM file of the CA that signed the server's certificate",
                        ca.display()
                    ),
                ));
            }
            config.push(format!("http.sslCAInfo={}", ca.display()));
            // The variable overrides the setting: ours must win.
            git_env_ca = Some(ca.display().to_string());
        }
        if let Some(proxy) = via::socks_proxy(route, ctx.deadline)
            .await
            .map_err(|e| setup_failure("setup", e))?
        {
            config.push(format!("http.proxy=socks5h://{proxy}"));
        }
    }
    if let Some(ca) = git_env_ca {
        env.insert("GIT_SSL_CAINFO".into(), ca);
    }
    let mut git = Git {
        ctx,
        config,
        env,
        steps: Vec::new(),
    };
    let result = steps(spec, &mut git, &scratch.0, facts).await;
    facts.steps = std::mem::take(&mut git.steps);
    result?;
    if let Some(from) = &spec.commit_from {
        facts.expected_commit = Some(commit_from(from, spec, ctx, route).await);
    }
    Ok(())
}

async fn steps(
    spec: &Spec,
    git: &mut Git<'_>,
    scratch: &Path,
    facts: &mut Facts,
) -> Result<(), StepFailure> {
    let url = spec.remote.url();
    let listed = git.run(&["ls-remote", "--symref", url], None).await?;
    let (head, refs) = parse_ls_remote(&String::from_utf8_lossy(&listed));
    facts.remote_head = head.clone();
    for (name, _) in &refs {
        if let Some(b) = name.strip_prefix("refs/heads/") {
            facts.branches.push(b.to_string());
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            if !t.ends_with("^{}") {
                facts.tags.push(t.to_string());
            }
        }
    }
    let (name, branch_arg) = match (&spec.git_ref, &head) {
        (Some(r), _) => (r.clone(), Some(r.clone())),
        (None, Some(h)) => (h.clone(), Some(h.clone())),
        (None, None) => match refs.iter().find(|(r, _)| r == "HEAD") {
            // A remote that does not say which branch HEAD is.
            Some((_, id)) => {
                facts.ref_name = Some("HEAD".into());
                facts.advertised = Some(id.clone());
                (String::from("HEAD"), None)
            }
            None => return Ok(()),
        },
    };
    if branch_arg.is_some() {
        facts.ref_name = Some(name.clone());
        facts.advertised = resolve(&refs, &name);
        if facts.advertised.is_none() {
            return Ok(());
        }
    }
    let dir = scratch.join("repo");
    let dir_text = dir.display().to_string();
    let mut args = vec!["clone", "--quiet", "--depth", "1", "--single-branch", "--no-checkout"];
    if let Some(b) = &branch_arg {
        args.push("--branch");
        args.push(b);
    }
    args.extend(["--", url, dir_text.as_str()]);
    git.run(&args, None).await?;
    let commit = git.run(&["rev-parse", "HEAD"], Some(&dir)).await?;
    facts.commit = Some(String::from_utf8_lossy(&commit).trim().to_string());
    let subject = git.run(&["log", "-1", "--format=%s", "HEAD"], Some(&dir)).await?;
    facts.subject = Some(String::from_utf8_lossy(&subject).trim_end().to_string());
    if spec.files.is_empty() && spec.absent.is_empty() {
        return Ok(());
    }
    let tree = git
        .run(&["ls-tree", "-r", "-z", "--name-only", "HEAD"], Some(&dir))
        .await?;
    facts.tree = tree
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .take(MAX_TREE)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    facts.tree.sort();
    for path in spec.files.keys() {
        if facts.tree.binary_search(path).is_err() {
            continue;
        }
        let object = format!("HEAD:{path}");
        let bytes = git.run(&["cat-file", "blob", &object], Some(&dir)).await?;
        let truncated = bytes.len() > MAX_FILE;
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_FILE)]).into_owned();
        facts
            .contents
            .insert(path.clone(), FileText { text, truncated });
    }
    Ok(())
}

/// The string at `from.pointer` of the API's JSON answer.
async fn commit_from(
    from: &CommitFrom,
    spec: &Spec,
    ctx: &ProbeContext,
    route: &Route,
) -> Result<String, String> {
    let client = via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline)
        .await?
        .timeout(ctx.remaining())
        .connect_timeout(ctx.remaining())
        .user_agent(crate::web::USER_AGENT)
        .build()
        .map_err(|e| error_chain(&e))?;
    let mut request = client.get(&from.url);
    for (k, v) in &from.headers {
        request = request.header(k, v);
    }
    let work = async {
        let response = request.send().await.map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| error_chain(&e))?;
        Ok::<_, String>((status, body))
    };
    let (status, body) = match tokio::time::timeout(ctx.remaining(), work).await {
        Ok(r) => r?,
        Err(_) => return Err("no answer before the check's deadline".into()),
    };
    if status != 200 {
        return Err(format!("status {status}: {}", excerpt(body.trim(), 200)));
    }
    let doc: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("status 200 but not JSON ({e}): {}", excerpt(body.trim(), 200)))?;
    match doc.pointer(&from.pointer) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "{} is {}, not a commit id string",
            from.pointer,
            excerpt(&other.to_string(), 100)
        )),
        None => Err(format!(
            "{} is absent in the answer: {}",
            from.pointer,
            excerpt(body.trim(), 200)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_stripped_from_every_url() {
        assert_eq!(
            strip_userinfo("fatal: unable to access 'https://oauth2:glpat-x@git.local/r.git/': 401"),
            "fatal: unable to access 'https://git.local/r.git/': 401"
        );
        assert_eq!(
            strip_userinfo("a http://u@h/x and file:///srv/r b"),
            "a http://h/x and file:///srv/r b"
        );
        assert_eq!(strip_userinfo("no url"), "no url");
    }

    #[test]
    fn ls_remote_output_resolves_branches_and_peeled_tags() {
        let out = "ref: refs/heads/main\tHEAD\naaaa\tHEAD\naaaa\trefs/heads/main\nbbbb\trefs/tags/v1\ncccc\trefs/tags/v1^{}\n";
        let (head, refs) = parse_ls_remote(out);
        assert_eq!(head.as_deref(), Some("main"));
        assert_eq!(resolve(&refs, "main").as_deref(), Some("aaaa"));
        assert_eq!(resolve(&refs, "v1").as_deref(), Some("cccc"));
        assert_eq!(resolve(&refs, "nope"), None);
    }
}
