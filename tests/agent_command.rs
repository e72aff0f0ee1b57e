//! The `agent_command` check against the reference agent (`rave-agent`,
//! built by `cargo build -p rave-agent`), a real Synapse (`common::synapse`)
//! and the GitLab stand-in of the demo (`demo/standins/`, its projects in
//! a database of `common::postgres`): commands from an
//! allow-listed operator are obeyed (the project appears in the GitLab API
//! once, even when asked twice), unknown commands and outsiders get their
//! replies, an encrypted room fails with that reason, and an agent that is stopped, frozen (SIGSTOP) or answers
//! something else makes the check FAIL before its deadline, with what was
//! sent and what came back.
//!
//! Where Synapse or PostgreSQL is not installed the tests are reported ignored, with the
//! reason, unless SPINUP_SMOKE_REQUIRE_ALL=1.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::synapse::synapse;
use common::{free_port, random_hex, ServerProcess};
use spinup_smoke::check::{ProbeContext, Verdict};
use spinup_smoke::checks::agent_command::{run, Spec};

/// The agent binary of this workspace, beside the test's target directory.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("rave-agent");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p rave-agent`",
        path.display()
    );
    path
}

struct Stack {
    /// This test's agent, outsider and room (the Synapse is shared).
    agent: String,
    outsider: String,
    room: String,
    synapse_url: String,
    gitlab_url: String,
    gitlab_token: String,
    operator_password: String,
    outsider_password: String,
    dir: PathBuf,
}

/// Starts the GitLab stand-in on a fresh database of the shared PostgreSQL
/// cluster (its projects are rows there).
async fn gitlab_standin(
    python: &std::path::Path,
    dir: &std::path::Path,
) -> (ServerProcess, String, String) {
    let cluster = common::postgres::cluster();
    let dbname = format!("gitlab_{}", random_hex(4));
    let mut pg = tokio_postgres::Config::new();
    pg.host("127.0.0.1")
        .port(cluster.port)
        .user("rave_admin")
        .password(cluster.admin_password.as_str())
        .dbname("postgres");
    let (client, connection) = pg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {dbname} OWNER gitlab"))
        .await
        .unwrap();
    let port = free_port();
    let token = random_hex(12);
    std::fs::write(dir.join("gitlab_token"), &token).unwrap();
    std::fs::write(dir.join("registration_token"), random_hex(12)).unwrap();
    std::fs::write(dir.join("db_password"), &cluster.role_password).unwrap();
    let db = serde_json::json!({"user": "gitlab", "dbname": dbname, "password_file": dir.join("db_password")});
    let config = serde_json::json!({
        "gitlab_port": port, "grafana_port": free_port(),
        "token_file": dir.join("gitlab_token"), "git_root": dir.join("git"),
        "git_base_url": format!("http://127.0.0.1:{port}"),
        "idp_issuer": "http://127.0.0.1:9", "external_url": format!("http://127.0.0.1:{port}"),
        "runner_registration_token_file": dir.join("registration_token"),
        "postgres": {"host": "127.0.0.1", "port": cluster.port}, "gitlab_db": db, "grafana_db": db,
    });
    std::fs::write(dir.join("standin.json"), config.to_string()).unwrap();
    let log = dir.join("standin.log");
    let mut process = ServerProcess::spawn(
        "the GitLab stand-in",
        Command::new(python)
            .arg(common::repo().join("demo/standins/gitlab_grafana_standin.py"))
            .arg(dir.join("standin.json"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit()),
        Some(&log),
    );
    process.wait_ready(Duration::from_secs(20), Duration::from_millis(100), || {
        common::http_ok(port, "/-/health")
    });
    (process, format!("http://127.0.0.1:{port}"), token)
}

/// Starts the agent, obeying `allowed` (user ids) and acting on `gitlab_url`.
fn start_agent_with(stack: &Stack, allowed: &[&str], gitlab_url: &str) -> ServerProcess {
    start_agent_full(stack, allowed, gitlab_url, &stack.dir.join("gitlab_token"))
}

/// Starts the agent for the operator on another GitLab.
fn start_agent_with_token(
    stack: &Stack,
    gitlab_url: &str,
    token: &std::path::Path,
) -> ServerProcess {
    start_agent_full(stack, &["@operator:rave.local"], gitlab_url, token)
}

fn start_agent_full(
    stack: &Stack,
    allowed: &[&str],
    gitlab_url: &str,
    token: &std::path::Path,
) -> ServerProcess {
    let allowed = allowed
        .iter()
        .map(|u| format!("{u:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "homeserver = \"{}\"\nuser = \"{}\"\npassword_file = \"{}\"\nallowed_users = [{allowed}]\ngitlab_url = \"{gitlab_url}\"\ngitlab_token_file = \"{}\"\n",
        stack.synapse_url,
        stack.agent,
        stack.dir.join("agent_password").display(),
        token.display()
    );
    let path = stack.dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let log = stack.dir.join("agent.log");
    let _ = std::fs::remove_file(&log);
    let mut agent = ServerProcess::spawn(
        "rave-agent",
        Command::new(agent_binary())
            .arg("--config")
            .arg(&path)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit()),
        Some(&log),
    );
    agent.wait_ready(Duration::from_secs(60), Duration::from_millis(100), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening as"))
    });
    agent
}

fn start_agent(stack: &Stack) -> ServerProcess {
    start_agent_with(stack, &["@operator:rave.local"], &stack.gitlab_url)
}

/// Registers this test's agent and outsider and starts the GitLab stand-in.
async fn stack(synapse: &common::synapse::Synapse, dir: PathBuf) -> (Stack, ServerProcess) {
    let tag = random_hex(3);
    let agent_password = random_hex(12);
    let outsider_password = random_hex(12);
    synapse.register(&format!("rave-agent-{tag}"), &agent_password);
    synapse.register(&format!("outsider-{tag}"), &outsider_password);
    std::fs::write(dir.join("agent_password"), &agent_password).unwrap();
    std::fs::write(dir.join("outsider_password"), &outsider_password).unwrap();
    let (gitlab, gitlab_url, gitlab_token) = gitlab_standin(&synapse.python, &dir).await;
    let stack = Stack {
        agent: format!("@rave-agent-{tag}:rave.local"),
        outsider: format!("outsider-{tag}"),
        room: format!("#rave-control-{tag}:rave.local"),
        synapse_url: synapse.url.clone(),
        gitlab_url,
        gitlab_token,
        operator_password: synapse.operator_password.clone(),
        outsider_password,
        dir,
    };
    (stack, gitlab)
}

fn spec(stack: &Stack, user: &str, command: &str, contains: &[&str], extra: &str) -> Spec {
    let password = if user == "operator" {
        &stack.operator_password
    } else {
        &stack.outsider_password
    };
    let list = contains
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "base_url = \"{}\"\nuser = \"{user}\"\npassword = \"{password}\"\nagent = \"{}\"\nroom = \"{}\"\ncommand = {command:?}\nreply_contains = [{list}]\n{extra}",
        stack.synapse_url, stack.agent, stack.room
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

async fn check(spec: &Spec, secs: u64) -> Verdict {
    run(spec, &ProbeContext::for_tests(secs)).await
}

/// How many projects the stand-in's search for `text` finds.
async fn projects_like(stack: &Stack, text: &str) -> usize {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v4/projects?search={text}",
            stack.gitlab_url
        ))
        .header("PRIVATE-TOKEN", &stack.gitlab_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body.as_array().unwrap().len()
}

/// The projects named `name` in the stand-in's API.
async fn projects_named(stack: &Stack, name: &str) -> usize {
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v4/projects?search={name}",
            stack.gitlab_url
        ))
        .header("PRIVATE-TOKEN", &stack.gitlab_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body.as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"] == name)
        .count()
}

/// A room with `m.room.encryption`, created by the operator; its alias.
async fn encrypted_room(stack: &Stack) -> String {
    let client = reqwest::Client::new();
    let token = &common::synapse::password_login(
        &client,
        &stack.synapse_url,
        "operator",
        &stack.operator_password,
        "encrypted room fixture",
    )
    .await;
    let localpart = format!("encrypted-{}", random_hex(3));
    let created = client
        .post(format!(
            "{}/_matrix/client/v3/createRoom",
            stack.synapse_url
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "room_alias_name": localpart,
            "preset": "private_chat",
            "initial_state": [{"type": "m.room.encryption", "state_key": "",
                               "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text().await);
    format!("#{localpart}:rave.local")
}

/// Creates project `name` directly through the stand-in's API.
async fn create_project(stack: &Stack, name: &str) {
    let status = reqwest::Client::new()
        .post(format!("{}/api/v4/projects", stack.gitlab_url))
        .header("PRIVATE-TOKEN", &stack.gitlab_token)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 201);
}

fn assert_pass(v: &Verdict) {
    assert!(v.pass, "expected a pass: {v:#?}");
}

fn assert_fail_with(v: &Verdict, text: &str) {
    assert!(!v.pass, "expected a failure: {v:#?}");
    assert!(v.found.contains(text), "expected `{text}` in found: {v:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(missing = "synapse", missing = "postgres"),
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv) and PostgreSQL: ./scripts/setup.sh installs them"
)]
async fn the_reference_agent_keeps_its_contract_and_faults_fail_at_the_deadline() {
    let s = synapse();
    let scratch = tempfile::tempdir().unwrap();
    let (stack, _gitlab) = stack(s, scratch.path().to_path_buf()).await;
    let mut agent = start_agent(&stack);
    let name = format!("hello-world-{}", random_hex(4));

    // The operator creates the room (inviting the agent and the outsider).
    let create = spec(
        &stack,
        "operator",
        &format!("!rave create project {name}"),
        &[&format!("created project {name}")],
        &format!("invite = [\"@{}:rave.local\"]", stack.outsider),
    );
    let v = check(&create, 30).await;
    assert_pass(&v);
    assert!(v.metrics.contains_key("round_trip_ms"), "{v:?}");
    assert!(v.evidence.contains("sent: $"), "{}", v.evidence);
    assert!(!v.evidence.contains(&stack.operator_password));
    assert_eq!(projects_named(&stack, &name).await, 1);
    // Asked again: "exists", still one project.
    let again = spec(&stack, "operator", &create.command, &["exists"], "");
    assert_pass(&check(&again, 20).await);
    assert_eq!(projects_named(&stack, &name).await, 1);

    let unknown = spec(
        &stack,
        "operator",
        "!rave dance",
        &["error: unknown command"],
        "",
    );
    assert_pass(&check(&unknown, 20).await);
    let status = spec(
        &stack,
        "operator",
        "!rave status",
        &["synapse ok", "gitlab ok"],
        "",
    );
    assert_pass(&check(&status, 20).await);
    let help = spec(
        &stack,
        "operator",
        "!rave help",
        &["!rave create project NAME"],
        "",
    );
    assert_pass(&check(&help, 20).await);

    // Through the host's tunnel (via = "host"): the homeserver under a name
    // only the host resolves; a refusing tunnel fails with its reason.
    let tunnel = std::sync::Arc::new(
        spinup_smoke::checks::testutil::RelayTunnel::new()
            .map_name("matrix.host-only.invalid", "127.0.0.1"),
    );
    let mut ctx = ProbeContext::for_tests(20);
    ctx.tunnel = Some(tunnel.clone());
    let mut via_host = spec(
        &stack,
        "operator",
        "!rave status",
        &["synapse ok"],
        "via = \"host\"",
    );
    via_host.base_url = stack
        .synapse_url
        .replace("127.0.0.1", "matrix.host-only.invalid");
    let v = run(&via_host, &ctx).await;
    assert_pass(&v);
    assert!(tunnel.connections() >= 1, "{v:?}");
    tunnel.refuse();
    assert_fail_with(
        &run(&via_host, &ctx).await,
        "no SOCKS proxy through ssh relay@test-host:22",
    );

    // The outsider is refused and nothing is created.
    let evil = format!("evil-{}", random_hex(4));
    let outsider = spec(
        &stack,
        &stack.outsider,
        &format!("!rave create project {evil}"),
        &["refused"],
        "",
    );
    assert_pass(&check(&outsider, 20).await);
    assert_eq!(projects_named(&stack, &evil).await, 0);

    // An encrypted control room fails with that reason, not a timeout.
    let encrypted = encrypted_room(&stack).await;
    let mut in_encrypted = spec(&stack, "operator", "!rave status", &["status:"], "");
    in_encrypted.room = encrypted;
    assert_fail_with(
        &check(&in_encrypted, 20).await,
        "is encrypted (m.room.encryption is set)",
    );

    // A reply that says something else fails, naming what it lacks.
    let wrong = spec(
        &stack,
        "operator",
        "!rave status",
        &["all systems nominal"],
        "",
    );
    assert_fail_with(&check(&wrong, 20).await, "lacks \"all systems nominal\"");

    // Frozen: no reply, the check fails before its deadline with what it sent.
    let pid = agent.id() as i32;
    // SAFETY: signals to the agent this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let started = Instant::now();
    let v = check(&status, 5).await;
    let took = started.elapsed();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_fail_with(&v, &format!("no reply from {} to $", stack.agent));
    assert!(v.evidence.contains("sent: $"), "{}", v.evidence);
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // Stopped: the same.
    drop(agent);
    let v = check(&status, 4).await;
    assert_fail_with(&v, &format!("no reply from {}", stack.agent));

    // Started again, it answers the next run (the room stays usable).
    agent = start_agent(&stack);
    assert_pass(&check(&status, 20).await);
    drop(agent);
}

/// Runs scenarios/agent.toml through the binary against `stack`; each
/// check id with its outcome, and the transcript.
fn run_scenario(
    stack: &Stack,
    out: &std::path::Path,
) -> (BTreeMap<String, String>, serde_json::Value) {
    run_scenario_with(stack, out, "rave", "")
}

/// The same with the target's `agent.gitlab_namespace` and more `[vars]` lines.
fn run_scenario_with(
    stack: &Stack,
    out: &std::path::Path,
    namespace: &str,
    more_vars: &str,
) -> (BTreeMap<String, String>, serde_json::Value) {
    let target = out.join("target.toml");
    std::fs::write(
        &target,
        format!(
            "[vars]\nsynapse.url = \"{}\"\nsynapse.server_name = \"rave.local\"\nsynapse.operator_user = \"operator\"\nagent.user = \"{}\"\nagent.room = \"{}\"\nagent.outsider_user = \"{}\"\nagent.gitlab_namespace = \"{namespace}\"\ngitlab.url = \"{}\"\n{more_vars}\n[secrets]\nsynapse_operator_password = {{ file = \"{}\" }}\nsynapse_outsider_password = {{ file = \"{}\" }}\ngitlab_token = {{ file = \"{}\" }}\n",
            stack.synapse_url,
            stack.agent,
            stack.room,
            stack.outsider,
            stack.gitlab_url,
            write_secret(out, "operator", &stack.operator_password).display(),
            stack.dir.join("outsider_password").display(),
            stack.dir.join("gitlab_token").display(),
        ),
    )
    .unwrap();
    let artifacts = out.join("artifacts");
    let output = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"))
        .current_dir(common::repo())
        .env("NO_COLOR", "1")
        .env_remove("VALIDATION_TIMEOUT")
        .args(["run", "--profile", "scenarios/agent.toml", "--target"])
        .arg(&target)
        .arg("--out")
        .arg(&artifacts)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let transcript = std::fs::read_dir(&artifacts)
        .unwrap_or_else(|e| {
            panic!(
                "no artifacts ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".json") && !n.ends_with(".intoto.json")
        })
        .unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(transcript).unwrap()).unwrap();
    let outcomes = doc["validation_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    std::fs::remove_dir_all(&artifacts).unwrap();
    (outcomes, doc)
}

fn write_secret(dir: &std::path::Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(format!("{name}.secret"));
    std::fs::write(&path, value).unwrap();
    path
}

fn assert_outcomes(outcomes: &BTreeMap<String, String>, expect: &[(&str, &str)]) {
    for (id, status) in expect {
        assert_eq!(
            outcomes.get(*id).map(String::as_str),
            Some(*status),
            "{id}: {outcomes:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(missing = "synapse", missing = "postgres"),
    ignore = "needs Synapse (a Python with synapse, authlib and psycopg2: SYNAPSE_PYTHON or .venv) and PostgreSQL: ./scripts/setup.sh installs them"
)]
async fn the_agent_scenario_passes_and_each_fault_fails_its_checks() {
    let s = synapse();
    let scratch = tempfile::tempdir().unwrap();
    let (stack, _gitlab) = stack(s, scratch.path().to_path_buf()).await;
    let out = scratch.path();

    // The reference agent: every check passes, the project is removed.
    let agent = start_agent(&stack);
    let (outcomes, doc) = run_scenario(&stack, out);
    assert!(outcomes.values().all(|s| s == "PASS"), "{outcomes:#?}");
    assert_eq!(outcomes.len(), 8, "{outcomes:#?}");
    assert_eq!(
        doc["agent_control_tests"]["status"], "SUCCESS",
        "{}",
        doc["agent_control_tests"]
    );
    let metrics = &doc["performance_metrics"]["check_metrics"]["agent.create-project"];
    assert!(metrics["round_trip_ms"].as_f64().is_some(), "{metrics}");
    assert_eq!(
        projects_like(&stack, "hello-world-").await,
        0,
        "cleanup removed it"
    );

    // The outsider's project exists (made by someone else before the run),
    // and the cleanup looks in the wrong namespace.
    let fixed = random_hex(4);
    create_project(&stack, &format!("outsider-{fixed}")).await;
    let (outcomes, _) =
        run_scenario_with(&stack, out, "elsewhere", &format!("run.id = \"{fixed}\"\n"));
    assert_outcomes(
        &outcomes,
        &[
            ("agent.outsider-refused", "PASS"),
            ("agent.outsider-project-absent", "FAIL"),
            ("agent.cleanup", "FAIL"),
        ],
    );

    // An agent that obeys the outsider too.
    drop(agent);
    let outsider = format!("@{}:rave.local", stack.outsider);
    let agent = start_agent_with(
        &stack,
        &["@operator:rave.local", &outsider],
        &stack.gitlab_url,
    );
    let (outcomes, _) = run_scenario(&stack, out);
    assert_outcomes(
        &outcomes,
        &[
            ("agent.create-project", "PASS"),
            ("agent.outsider-refused", "FAIL"),
            ("agent.cleanup", "PASS"),
        ],
    );
    drop(agent);

    // An agent acting on another GitLab: it says "created", this GitLab
    // has no such project, and there is nothing here to delete.
    let (_other, other_url, other_token) = {
        let other_dir = out.join("other");
        std::fs::create_dir_all(&other_dir).unwrap();
        gitlab_standin(&s.python, &other_dir).await
    };
    std::fs::write(stack.dir.join("gitlab_token.other"), &other_token).unwrap();
    let agent = start_agent_with_token(&stack, &other_url, &stack.dir.join("gitlab_token.other"));
    let (outcomes, _) = run_scenario(&stack, out);
    assert_outcomes(
        &outcomes,
        &[
            ("agent.create-project", "PASS"),
            ("agent.project-exists", "FAIL"),
        ],
    );
    drop(agent);

    // The agent stopped: the commands fail at their deadline, none hangs.
    let started = Instant::now();
    let (outcomes, doc) = run_scenario(&stack, out);
    assert_outcomes(
        &outcomes,
        &[
            ("agent.create-project", "FAIL"),
            ("agent.unknown-command", "FAIL"),
            ("agent.status", "FAIL"),
            ("agent.project-exists", "SKIP"),
        ],
    );
    assert_eq!(doc["agent_control_tests"]["status"], "FAILURE");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
