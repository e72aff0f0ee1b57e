//! The demo stack, for real: `demo up` starts PostgreSQL, Synapse, the IdP,
//! Prometheus, nginx and the stand-ins; the service profiles pass against
//! it; faults (a stopped database, a frozen service, an unregistered
//! runner) fail the right checks and skip their dependents while the rest
//! still run; `demo down` leaves nothing behind, also after a killed `demo
//! up`.
//!
//! `spinup-smoke-demo` runs as a program (with `--assets`, the repository
//! root); the validations run through the validator's library
//! (`spinup_smoke::cli::run`), as the demo's own full run does.
//!
//! Needs `./scripts/setup.sh`. Without the components these tests are
//! reported ignored with the reason, unless SPINUP_SMOKE_REQUIRE_ALL=1 (set
//! by scripts/test.sh), where they fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use spinup_smoke::cli::{EnvSettings, Format, RunArgs, Selection};

/// The demo's service profiles (the sign-in flows are added separately;
/// the config and performance phases are not services; the guest host's
/// security is tests/guest_host.rs's).
fn service_profiles() -> Vec<PathBuf> {
    const NOT_SERVICES: [&str; 5] = [
        "/containers.toml",
        "/config.toml",
        "/performance.toml",
        "/performance-host.toml",
        "/security.toml",
    ];
    spinup_smoke_demo::PROFILES
        .iter()
        .filter(|p| p.starts_with("health-checks/") && !NOT_SERVICES.iter().any(|n| p.ends_with(n)))
        .map(|p| repo().join(p))
        .collect()
}

/// The repository root: the demo's assets and the profiles.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("demo/ sits in the repository")
        .to_path_buf()
}

/// `spinup-smoke-demo --assets <repo>`.
fn demo() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spinup-smoke-demo"));
    c.current_dir(repo())
        .arg("--assets")
        .arg(repo())
        .env("NO_COLOR", "1")
        .env_remove("SPINUP_SIGNING_KEY");
    c
}

/// Fails with what is missing where the stack is not installed (the tests
/// run there only under SPINUP_SMOKE_REQUIRE_ALL=1).
fn require_stack() {
    // `up` also prepares the guest image (scripts/build-guest-image.sh).
    let missing: Vec<String> = [
        repo().join(".venv/bin/python"),
        repo().join("demo/idp/node_modules/oidc-provider"),
        PathBuf::from("/usr/sbin/nginx"),
        PathBuf::from("/usr/bin/prometheus"),
        PathBuf::from("/usr/sbin/debootstrap"),
    ]
    .into_iter()
    .filter(|p| !p.exists())
    .map(|p| p.display().to_string())
    .collect();
    assert!(
        missing.is_empty(),
        "these tests need the demo stack installed (missing: {}): run ./scripts/setup.sh",
        missing.join(", ")
    );
}

/// A state directory the postgres user can reach.
fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("spinup-demo-test")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    (dir, state)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn recorded_pids(state: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(state.join("run"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(pm) = std::fs::read_to_string(state.join("postgres/data/postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
    {
        pids.push(pm);
    }
    pids
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn target_ports(state: &Path) -> Vec<u16> {
    let text = std::fs::read_to_string(state.join("target.toml")).unwrap_or_default();
    text.split("127.0.0.1:")
        .skip(1)
        .filter_map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse()
                .ok()
        })
        .collect()
}

/// One validation of the running stack: the exit code and the transcript.
fn run_profiles(state: &Path, out: &Path, profiles: &[PathBuf]) -> (i32, serde_json::Value) {
    run_selection(state, out, profiles, false)
}

/// `run_profiles`, or with `smoke` only the checks marked `smoke = true`.
fn run_selection(
    state: &Path,
    out: &Path,
    profiles: &[PathBuf],
    smoke: bool,
) -> (i32, serde_json::Value) {
    let args = RunArgs {
        selection: Selection {
            profiles: profiles.to_vec(),
            target: Some(state.join("target.toml")),
            phases: Vec::new(),
            smoke,
        },
        image: None,
        key: None,
        out: out.to_path_buf(),
        jobs: 16,
        format: Format::Json,
        require_phases: Vec::new(),
        quiet: false,
    };
    let settings = EnvSettings::from_lookup(|_| None).unwrap();
    let runtime = spinup_smoke::cli::runtime().unwrap();
    let (code, written) = runtime.block_on(spinup_smoke::cli::run(args, settings));
    let doc = written
        .and_then(|w| std::fs::read_to_string(w.transcript).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    (code, doc)
}

/// The results, for assertion messages.
fn results(doc: &serde_json::Value) -> String {
    doc["validation_results"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|c| format!("{} {} {}", c["status"], c["id"], c["found"]))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|| doc.to_string())
}

fn result_of<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["validation_results"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["id"] == id))
        .unwrap_or(&serde_json::Value::Null)
}

fn status_of<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["validation_results"]
        .as_array()
        .and_then(|r| r.iter().find(|c| c["id"] == id))
        .map(|c| &c["status"])
        .unwrap_or(&serde_json::Value::Null)
}

#[test]
#[cfg_attr(
    missing = "demo",
    ignore = "needs the demo stack (PostgreSQL, Synapse, the IdP, Prometheus, nginx, podman, QEMU): ./scripts/setup.sh installs it"
)]
fn stack_passes_faults_fail_the_right_checks_and_down_cleans_up() {
    require_stack();
    let (dir, state) = state_dir();
    let out = dir.path().join("out");
    let up = demo().args(["up", "--state"]).arg(&state).output().unwrap();
    assert!(up.status.success(), "demo up failed:\n{}", text(&up));
    let mut profiles = service_profiles();
    // The sign-in flows: the IdP's own form, Synapse SSO through it.
    profiles.push(repo().join("scenarios/oidc.toml"));

    // Healthy: every service check passes against the real components.
    let (code, doc) = run_profiles(&state, &out, &profiles);
    assert_eq!(code, 0, "{}", results(&doc));
    // Only the services and oidc phases are examined here: WARNING, exit 0.
    assert_eq!(doc["overall_status"], "WARNING");
    assert_eq!(doc["test_summary"]["passed"], 44);
    assert_eq!(doc["test_summary"]["total_tests"], 44);
    let ran: Vec<&str> = doc["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "RAN")
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["services", "oidc"]);
    // A smoke run: only the marked liveness checks (one per service), all
    // passing, and a verdict that cannot claim more than it examined.
    let all: Vec<PathBuf> = spinup_smoke_demo::PROFILES
        .iter()
        .map(|p| repo().join(p))
        .collect();
    let (code, smoke) = run_selection(&state, &out, &all, true);
    assert_eq!(code, 0, "{}", results(&smoke));
    let mut ids: Vec<&str> = smoke["validation_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "containers.api",
            "gitlab.health",
            "grafana.health",
            "network.postgres_port",
            "network.tls_front_port",
            "oidc.discovery",
            "postgres.reachable",
            "prometheus.ready",
            "synapse.client_versions",
            "synapse.health",
        ],
        "{}",
        results(&smoke)
    );
    assert_eq!(smoke["overall_status"], "WARNING", "{}", results(&smoke));
    // The target declares the GitLab and Grafana stand-ins; the transcript says so.
    let stand_ins = doc["stand_ins"]
        .as_object()
        .expect("stand_ins in the transcript");
    assert!(
        stand_ins.contains_key("gitlab") && stand_ins.contains_key("grafana"),
        "{stand_ins:?}"
    );
    assert_eq!(
        doc["authentication_tests"]["status"], "SUCCESS",
        "{}",
        doc["authentication_tests"]
    );

    // The IdP's login form really checks the password, and a right one ends
    // in an authorization code at the client's redirect URI (PKCE).
    idp_login(&state, dir.path());

    // SSO into Synapse with a wrong IdP password fails at the IdP's form,
    // and says so.
    let wrong = dir.path().join("sso-wrong.toml");
    std::fs::write(
        &wrong,
        r#"[profile]
name = "sso-wrong"
[[check]]
id = "sso.wrong_password"
phase = "oidc"
description = "SSO with a wrong password"
retry = { attempts = 1 }
[check.matrix]
base_url = "${synapse.url}"
assert = "sso_login"
identity_provider = "oidc-rave"
user = "${idp.test_user}"
idp_username = "${idp.test_user}"
idp_password = "not-the-password"
"#,
    )
    .unwrap();
    let (code, doc) = run_profiles(&state, &out, &[wrong]);
    assert_eq!(code, 1, "{}", results(&doc));
    let found = doc["validation_results"][0]["found"].as_str().unwrap_or("");
    assert!(
        found.contains("refused the sign-in of alice (status 401)"),
        "{found}"
    );

    // A frozen service hits its deadline and fails; it does not hang the run.
    let standins: u32 = std::fs::read_to_string(state.join("run/standins.pid"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let slow = dir.path().join("slow.toml");
    std::fs::write(&slow, "[[check]]\nid = \"gitlab.frozen\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.http]\nurl = \"${gitlab.url}/-/health\"\n").unwrap();
    // SAFETY: freezing and thawing the stand-in process group we started.
    unsafe { libc::killpg(standins as i32, libc::SIGSTOP) };
    let started = Instant::now();
    let (code, doc) = run_profiles(&state, &out, &[slow]);
    unsafe { libc::killpg(standins as i32, libc::SIGCONT) };
    assert_eq!(code, 1, "{}", results(&doc));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the deadline bounds the run"
    );
    let found = doc["validation_results"][0]["found"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        found.contains("deadline") || found.contains("timed out") || found.contains("timeout"),
        "{found}"
    );

    // A watch of PostgreSQL runs meanwhile (the real binary, its own
    // process: the SIGTERM that stops it reaches no other test's run): it
    // sees the stop and the start.
    let watch_state = dir.path().join("watch");
    let watching = Watching(
        validator()
            .args(["watch", "--every", "300ms", "--for", "5m", "--profile"])
            .arg(repo().join("health-checks/postgres.toml"))
            .arg("--target")
            .arg(state.join("target.toml"))
            .arg("--state")
            .arg(&watch_state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    watch_history(&watch_state, "a passing run", |h| h.contains('P'));

    // PostgreSQL stopped: its checks fail with the connection error, the ones
    // that need them are skipped with the reason, the rest still pass.
    let pg_bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin/pg_ctl"))
        .find(|p| p.exists())
        .unwrap();
    let stop = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(&pg_bin)
        .arg("-D")
        .arg(state.join("postgres/data"))
        .args(["-m", "fast", "-w", "stop"])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", text(&stop));
    let (code, doc) = run_profiles(&state, &out, &profiles);
    assert_eq!(code, 1, "{}", results(&doc));
    assert_eq!(doc["overall_status"], "FAILURE");
    assert_eq!(*status_of(&doc, "postgres.reachable"), "FAIL");
    let reachable = doc["validation_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "postgres.reachable")
        .unwrap();
    assert!(
        reachable["found"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{reachable}"
    );
    assert_eq!(*status_of(&doc, "postgres.databases"), "SKIP");
    assert_eq!(*status_of(&doc, "network.postgres_port"), "FAIL");
    assert_eq!(*status_of(&doc, "gitlab.health"), "PASS");
    assert_eq!(*status_of(&doc, "prometheus.ready"), "PASS");
    // The stand-ins connect to PostgreSQL as GitLab's and Grafana's roles:
    // GitLab's readiness names the failing db_check with libpq's error,
    // Grafana's health says its database is failing.
    let readiness = result_of(&doc, "gitlab.readiness");
    assert_eq!(readiness["status"], "FAIL", "{readiness}");
    assert!(
        readiness["found"].as_str().unwrap().contains("status 503")
            && readiness["found"].as_str().unwrap().contains("db_check")
            && readiness["evidence"]
                .as_str()
                .unwrap()
                .contains("Connection refused"),
        "{readiness}"
    );
    let grafana = result_of(&doc, "grafana.health");
    assert_eq!(grafana["status"], "FAIL", "{grafana}");
    assert!(
        grafana["found"].as_str().unwrap().contains("status 503")
            && grafana["found"]
                .as_str()
                .unwrap()
                .contains(r#"/database = "failing""#),
        "{grafana}"
    );
    assert_eq!(*status_of(&doc, "grafana.oauth"), "SKIP");
    // The runners are rows in GitLab's database: none can be listed.
    let runners = result_of(&doc, "gitlab.runner_online");
    assert!(
        runners["status"] == "FAIL" && runners["found"].as_str().unwrap().contains("status 500"),
        "{runners}"
    );
    let transcript = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.to_string_lossy().ends_with(".json") && !p.to_string_lossy().ends_with(".intoto.json")
        })
        .max()
        .unwrap();
    spinup_smoke::sign::verify::verify_file(
        &transcript,
        spinup_smoke::sign::verify::Signer::TrustEmbedded,
        None,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", transcript.display()));

    // PostgreSQL back (pg_ctl restart takes the options from postmaster.opts):
    // the same checks pass again, without restarting the stand-ins.
    let start = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(&pg_bin)
        .arg("-D")
        .arg(state.join("postgres/data"))
        .arg("-l")
        .arg(state.join("logs/postgresql.log"))
        .args(["-w", "restart"])
        .output()
        .unwrap();
    assert!(start.status.success(), "{}", text(&start));
    // The watch saw PostgreSQL fail and pass again; SIGTERM (what `watch
    // stop` sends) ends it after its run in flight, with the flap reported.
    watch_history(&watch_state, "a pass after the failure", |h| {
        h.find('F').is_some_and(|f| h[f..].contains('P'))
    });
    let stop = validator()
        .args(["watch", "stop", "--state"])
        .arg(&watch_state)
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", text(&stop));
    assert_eq!(
        watching.wait().code(),
        Some(1),
        "a run of the watch failed, so it exits 1"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(watch_state.join("summary.json")).unwrap())
            .unwrap();
    let reachable = summary["soak"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "postgres.reachable")
        .unwrap();
    assert!(reachable["flaps"].as_u64().unwrap() >= 2, "{summary}");
    assert!(
        std::fs::read_to_string(watch_state.join("summary.txt"))
            .unwrap()
            .contains("postgres.reachable flapped"),
        "{summary}"
    );
    let gitlab_grafana = [
        repo().join("health-checks/gitlab.toml"),
        repo().join("health-checks/grafana.toml"),
    ];
    let (code, doc) = run_profiles(&state, &out, &gitlab_grafana);
    assert_eq!(code, 0, "{}", results(&doc));

    // The runner unregistered (`DELETE /api/v4/runners`, as `gitlab-runner
    // unregister` does): none is listed, the runner check fails.
    let token = std::fs::read_to_string(state.join(spinup_smoke_demo::RUNNER_TOKEN)).unwrap();
    let target = std::fs::read_to_string(state.join("target.toml")).unwrap();
    let gitlab_url = target
        .lines()
        .find(|l| l.starts_with("gitlab.url"))
        .and_then(|l| l.split('"').nth(1))
        .unwrap()
        .to_string();
    let unregister = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ])
        .arg(format!("{gitlab_url}/api/v4/runners"))
        .arg("--data-urlencode")
        .arg(format!("token={token}"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&unregister.stdout), "204");
    let (code, doc) = run_profiles(&state, &out, &gitlab_grafana);
    assert_eq!(code, 1, "{}", results(&doc));
    let runners = result_of(&doc, "gitlab.runner_online");
    assert!(
        runners["status"] == "FAIL" && runners["found"] == "/0/id is absent",
        "{runners}"
    );
    assert_eq!(*status_of(&doc, "gitlab.readiness"), "PASS");

    // Down: no process, port or file left.
    let pids = recorded_pids(&state);
    let ports = target_ports(&state);
    assert!(pids.len() >= 5, "{pids:?}");
    let down = demo()
        .args(["down", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(!state.exists(), "state directory removed");
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
    // Down again is harmless.
    let again = demo()
        .args(["down", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
}

/// `spinup-smoke`, the validator's binary, beside the demo's (`cargo build`
/// builds both).
fn validator() -> Command {
    let program = Path::new(env!("CARGO_BIN_EXE_spinup-smoke-demo")).with_file_name("spinup-smoke");
    assert!(
        program.is_file(),
        "{} does not exist: build it with `cargo build -p spinup-smoke`",
        program.display()
    );
    let mut c = Command::new(program);
    c.current_dir(repo())
        .env("NO_COLOR", "1")
        .env_remove("SPINUP_SIGNING_KEY");
    c
}

/// A watch running as a child; killed if the test ends before it does.
struct Watching(std::process::Child);

impl Watching {
    fn wait(mut self) -> std::process::ExitStatus {
        self.0.wait().unwrap()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The history of `postgres.reachable` in a watch's summary, once it
/// satisfies `done` (within two minutes).
fn watch_history(state: &Path, what: &str, done: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let history = std::fs::read_to_string(state.join("summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|doc| {
                doc["soak"]["checks"]
                    .as_array()?
                    .iter()
                    .find(|c| c["id"] == "postgres.reachable")
                    .and_then(|c| c["history"].as_str().map(str::to_string))
            })
            .unwrap_or_default();
        if done(&history) {
            return history;
        }
        assert!(
            Instant::now() < until,
            "the watch never saw {what}: `{history}`"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether Synapse's `/health` on 127.0.0.1:`port` answers 200.
fn synapse_healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    std::net::TcpStream::connect(("127.0.0.1", port))
        .and_then(|mut s| {
            s.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"))
        })
        .unwrap_or(false)
}

/// Runs `demo down` for a state directory when dropped.
struct StackDown(PathBuf);

impl Drop for StackDown {
    fn drop(&mut self) {
        let _ = demo().args(["down", "--state"]).arg(&self.0).output();
    }
}

/// A running stack in a fresh state directory: (its temporary directory,
/// the state, an output directory, the guard that takes it down even when
/// an assertion fails: no stack outlives its test).
fn stack_up() -> (tempfile::TempDir, PathBuf, PathBuf, StackDown) {
    require_stack();
    let (dir, state) = state_dir();
    let out = dir.path().join("out");
    let up = demo().args(["up", "--state"]).arg(&state).output().unwrap();
    let down = StackDown(state.clone());
    assert!(up.status.success(), "demo up failed:\n{}", text(&up));
    (dir, state, out, down)
}

/// The pid `up` recorded for `name` (`run/<name>.pid`).
fn recorded_pid(state: &Path, name: &str) -> u32 {
    std::fs::read_to_string(state.join(format!("run/{name}.pid")))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The agent phase against the demo's rave-agent: it passes; frozen
/// (SIGSTOP) or stopped, the agent's command checks FAIL at their deadline
/// with the command they sent, and no run hangs; thawed, it answers the
/// next run in the same room; after a Synapse restart it syncs again by
/// itself. (`rave-agent` must be built beside the demo program: `cargo
/// build`.)
#[test]
#[cfg_attr(
    missing = "demo",
    ignore = "needs the demo stack (PostgreSQL, Synapse, the IdP, Prometheus, nginx, podman, QEMU): ./scripts/setup.sh installs it"
)]
fn agent_phase_passes_survives_a_synapse_restart_and_a_frozen_or_stopped_agent_fails_at_the_deadline(
) {
    let (_dir, state, out, _down) = stack_up();
    let agent_profile = [repo().join("scenarios/agent.toml")];

    let (code, doc) = run_profiles(&state, &out, &agent_profile);
    assert_eq!(code, 0, "{}", results(&doc));
    assert_eq!(
        doc["agent_control_tests"]["status"],
        "SUCCESS",
        "{}",
        results(&doc)
    );
    assert_eq!(doc["agent_control_tests"]["passed"], 8, "{}", results(&doc));
    assert!(
        doc["performance_metrics"]["check_metrics"]["agent.create-project"]["round_trip_ms"]
            .is_number(),
        "{}",
        doc["performance_metrics"]
    );

    let agent = recorded_pid(&state, "rave-agent");
    // SAFETY: freezing and thawing the agent's process group that `up` started.
    unsafe { libc::killpg(agent as i32, libc::SIGSTOP) };
    let started = Instant::now();
    let (code, doc) = run_profiles(&state, &out, &agent_profile);
    let took = started.elapsed();
    unsafe { libc::killpg(agent as i32, libc::SIGCONT) };
    assert_eq!(code, 1, "{}", results(&doc));
    for id in [
        "agent.create-project",
        "agent.unknown-command",
        "agent.status",
    ] {
        assert_eq!(status_of(&doc, id), "FAIL", "{id}: {}", results(&doc));
        let found = result_of(&doc, id)["found"].as_str().unwrap_or("");
        assert!(
            found.contains("no reply from @rave-agent:rave.local to $"),
            "{id}: {found}"
        );
        let evidence = result_of(&doc, id)["evidence"].as_str().unwrap_or("");
        assert!(evidence.contains("sent: $"), "{id}: {evidence}");
    }
    assert_eq!(status_of(&doc, "agent.project-exists"), "SKIP");
    assert!(
        took < Duration::from_secs(40),
        "the deadline (20 s) bounds the run: {took:?}"
    );

    // Thawed: the room is still usable, the next run passes.
    let (code, doc) = run_profiles(&state, &out, &agent_profile);
    assert_eq!(code, 0, "{}", results(&doc));

    // Synapse restarted (the same command line, the same state): the agent
    // syncs again by itself and the next run passes.
    let synapse = recorded_pid(&state, "synapse");
    let argv: Vec<String> = std::fs::read(format!("/proc/{synapse}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let cwd = std::fs::read_link(format!("/proc/{synapse}/cwd")).unwrap();
    // SAFETY: stopping the Synapse process group that `up` started.
    unsafe { libc::killpg(synapse as i32, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(30);
    while alive(synapse) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(synapse), "Synapse did not stop");
    spinup_smoke_demo::process::spawn(
        &state,
        &spinup_smoke_demo::process::Launch {
            name: "synapse",
            program: PathBuf::from(&argv[0]),
            args: argv[1..].to_vec(),
            env: vec![],
            cwd: Some(cwd),
        },
    )
    .unwrap();
    let target: toml::Table =
        toml::from_str(&std::fs::read_to_string(state.join("target.toml")).unwrap()).unwrap();
    let url = target["vars"]["synapse"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let until = Instant::now() + Duration::from_secs(180);
    while !synapse_healthy(port) {
        assert!(Instant::now() < until, "Synapse did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, doc) = run_profiles(&state, &out, &agent_profile);
    assert_eq!(code, 0, "after the restart: {}", results(&doc));
    let log = std::fs::read_to_string(state.join("logs/rave-agent.log")).unwrap();
    assert!(
        log.contains("sync failed"),
        "the agent saw the restart: {log}"
    );

    // Stopped: the same failures.
    unsafe { libc::killpg(agent as i32, libc::SIGTERM) };
    let (code, doc) = run_profiles(&state, &out, &agent_profile);
    assert_eq!(code, 1, "{}", results(&doc));
    assert_eq!(status_of(&doc, "agent.status"), "FAIL", "{}", results(&doc));

    let down = demo()
        .args(["down", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
}

#[test]
#[cfg_attr(
    missing = "demo",
    ignore = "needs the demo stack (PostgreSQL, Synapse, the IdP, Prometheus, nginx, podman, QEMU): ./scripts/setup.sh installs it"
)]
fn down_after_a_killed_up_cleans_up() {
    require_stack();
    let (_dir, state) = state_dir();
    let mut up = demo()
        .args(["up", "--state"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once PostgreSQL and the first children run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(state.join("postgres/data/postmaster.pid").exists()
        && state.join("run/idp.pid").exists())
    {
        assert!(Instant::now() < deadline, "demo up never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pids = recorded_pids(&state);
    assert!(!pids.is_empty());
    let down = demo()
        .args(["down", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(!state.exists());
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "processes left after a crashed up: {left:?}"
    );
    // Nor any process `up` had started without recording it (the KVM boot
    // probe's QEMU runs on STATE's guest kernel): they die with `up`.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let strays = processes_naming(&state);
        if strays.is_empty() {
            break;
        }
        assert!(
            Instant::now() < until,
            "processes left after a crashed up, naming {}: {strays:?}",
            state.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The processes whose command line names `path` (pid and command line).
fn processes_naming(path: &Path) -> Vec<(u32, String)> {
    let needle = path.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(&needle) && alive(pid) {
            found.push((pid, line));
        }
    }
    found
}

/// Drives the IdP's authorization-code + PKCE login with curl (a cookie jar
/// carries the interaction): wrong password 401, right password a code.
fn idp_login(state: &Path, work: &Path) {
    let target = std::fs::read_to_string(state.join("target.toml")).unwrap();
    let issuer = target
        .lines()
        .find(|l| l.starts_with("idp.issuer"))
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_string();
    let password = std::fs::read_to_string(state.join("secrets/idp_test_password")).unwrap();
    let jar = work.join("cookies");
    let curl = |args: &[&str]| -> (String, String) {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                "-c",
            ])
            .arg(&jar)
            .arg("-b")
            .arg(&jar)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (code, location) = text.split_once(' ').unwrap_or((&text, ""));
        (code.to_string(), location.to_string())
    };
    // RFC 7636 appendix B's verifier and challenge.
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect = "http://127.0.0.1/spinup-smoke/callback";
    let auth = format!(
        "{issuer}/auth?client_id=spinup-smoke&response_type=code&scope=openid%20profile&redirect_uri={redirect}&code_challenge={challenge}&code_challenge_method=S256&state=st&nonce=nn"
    );
    let (code, interaction) = curl(&[&auth]);
    assert!(
        code.starts_with('3') && interaction.contains("/interaction/"),
        "{code} {interaction}"
    );
    let (code, _) = curl(&[&interaction]);
    assert_eq!(code, "200", "the login form");
    let login = format!("{interaction}/login");
    let (code, _) = curl(&[
        "--data-urlencode",
        "username=alice",
        "--data-urlencode",
        "password=not-the-password",
        &login,
    ]);
    assert_eq!(code, "401", "a wrong password is refused");
    let (code, _) = curl(&[
        "--data-urlencode",
        "username=mallory",
        "--data-urlencode",
        &format!("password={password}"),
        &login,
    ]);
    assert_eq!(code, "401", "an unknown user is refused");
    let (code, mut next) = curl(&[
        "--data-urlencode",
        "username=alice",
        "--data-urlencode",
        &format!("password={password}"),
        &login,
    ]);
    assert!(
        code.starts_with('3'),
        "the right password is accepted: {code}"
    );
    // Follow the provider's redirects (consent is granted for first-party clients).
    for _ in 0..6 {
        if next.starts_with(redirect) {
            break;
        }
        let (_, location) = curl(&[&next]);
        next = location;
    }
    assert!(
        next.starts_with(redirect) && next.contains("code=") && next.contains("state=st"),
        "ends at the client with a code: {next}"
    );
}

/// `scenarios/hello_world.toml` with `edits` (from, to) applied, written
/// into `dir`.
fn hello_world_variant(dir: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo().join("scenarios/hello_world.toml")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "hello_world.toml has no `{from}`");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The e2e flow against the demo: it passes, every step with its own
/// result (the GitLab ones marked stand-in); a job that fails makes
/// `e2e.pipeline` FAIL with the job log's tail while the cleanup still runs;
/// a stopped runner makes it FAIL at its deadline naming the pending job;
/// a frozen agent fails the command checks, the cleanup's too; a run
/// killed halfway is followed by a run that passes.
#[test]
#[cfg_attr(
    missing = "demo",
    ignore = "needs the demo stack (PostgreSQL, Synapse, the IdP, Prometheus, nginx, podman, QEMU): ./scripts/setup.sh installs it"
)]
fn e2e_flow_passes_a_failing_job_or_stopped_runner_fails_the_pipeline_and_a_killed_run_does_not_matter(
) {
    let (dir, state, out, _down) = stack_up();
    let flow = repo().join("scenarios/hello_world.toml");
    let steps = [
        "e2e.create-project",
        "e2e.project-exists",
        "e2e.commit",
        "e2e.commit-cloned",
        "e2e.merge-request",
        "e2e.merge-request-open",
        "e2e.pipeline",
        "e2e.pipeline-reported",
        "e2e.merge",
        "e2e.merged",
        "e2e.cleanup",
        "e2e.project-gone",
    ];

    let (code, doc) = run_profiles(&state, &out, std::slice::from_ref(&flow));
    assert_eq!(code, 0, "{}", results(&doc));
    for id in steps {
        assert_eq!(status_of(&doc, id), "PASS", "{id}: {}", results(&doc));
    }
    assert_eq!(doc["e2e_tests"]["status"], "SUCCESS", "{}", results(&doc));
    assert_eq!(doc["e2e_tests"]["passed"], steps.len(), "{}", results(&doc));
    assert_eq!(result_of(&doc, "e2e.pipeline")["stand_in"], true);
    assert_eq!(result_of(&doc, "e2e.commit-cloned")["stand_in"], true);
    let pipeline = result_of(&doc, "e2e.pipeline")["evidence"]
        .as_str()
        .unwrap_or("");
    assert!(
        pipeline.contains("hello-world: job hello passed"),
        "{pipeline}"
    );

    // A failing job: the pipeline FAILS with the log's tail, later steps
    // are skipped, the cleanup runs and the project is gone.
    let failing = hello_world_variant(
        dir.path(),
        "failing-job",
        &[(
            "command = \"!rave commit hello-world-${run.id}\"",
            "command = \"!rave commit hello-world-${run.id} echo the-job-breaks-here; exit 3\"",
        )],
    );
    let (code, doc) = run_profiles(&state, &out, &[failing]);
    assert_eq!(code, 1, "{}", results(&doc));
    assert_eq!(status_of(&doc, "e2e.pipeline"), "FAIL", "{}", results(&doc));
    let failed = result_of(&doc, "e2e.pipeline");
    let said = format!("{} {}", failed["found"], failed["evidence"]);
    assert!(said.contains("failed"), "{said}");
    assert!(
        said.contains("the-job-breaks-here"),
        "the job log's tail: {said}"
    );
    for id in ["e2e.pipeline-reported", "e2e.merge", "e2e.merged"] {
        assert_eq!(status_of(&doc, id), "SKIP", "{id}: {}", results(&doc));
    }
    for id in ["e2e.cleanup", "e2e.project-gone"] {
        assert_eq!(status_of(&doc, id), "PASS", "{id}: {}", results(&doc));
    }

    // A stopped runner: the job stays pending and the pipeline check FAILS
    // at its deadline, saying so; the cleanup still runs.
    let runner = recorded_pid(&state, "runner");
    let short = hello_world_variant(
        dir.path(),
        "stopped-runner",
        &[("timeout = \"90s\"", "timeout = \"12s\"")],
    );
    // SAFETY: freezing and thawing the runner's process group that `up` started.
    unsafe { libc::killpg(runner as i32, libc::SIGSTOP) };
    let (code, doc) = run_profiles(&state, &out, &[short]);
    unsafe { libc::killpg(runner as i32, libc::SIGCONT) };
    assert_eq!(code, 1, "{}", results(&doc));
    assert_eq!(status_of(&doc, "e2e.pipeline"), "FAIL", "{}", results(&doc));
    let stuck = result_of(&doc, "e2e.pipeline");
    let said = format!("{} {}", stuck["found"], stuck["evidence"]);
    assert!(said.contains("pending"), "{said}");
    assert!(said.contains("no runner"), "{said}");
    for id in ["e2e.cleanup", "e2e.project-gone"] {
        assert_eq!(status_of(&doc, id), "PASS", "{id}: {}", results(&doc));
    }

    // A frozen agent: its command checks FAIL at their deadline, the
    // cleanup included (nobody answered it), and nothing was created.
    let agent = recorded_pid(&state, "rave-agent");
    // SAFETY: freezing and thawing the agent's process group that `up` started.
    unsafe { libc::killpg(agent as i32, libc::SIGSTOP) };
    let (code, doc) = run_profiles(&state, &out, std::slice::from_ref(&flow));
    unsafe { libc::killpg(agent as i32, libc::SIGCONT) };
    assert_eq!(code, 1, "{}", results(&doc));
    for id in ["e2e.create-project", "e2e.cleanup"] {
        assert_eq!(status_of(&doc, id), "FAIL", "{id}: {}", results(&doc));
        let found = result_of(&doc, id)["found"].as_str().unwrap_or("");
        assert!(found.contains("no reply from"), "{id}: {found}");
    }
    assert_eq!(status_of(&doc, "e2e.project-exists"), "SKIP");
    assert_eq!(
        status_of(&doc, "e2e.project-gone"),
        "PASS",
        "{}",
        results(&doc)
    );

    // A run killed halfway (after its commit), then a new run: it passes.
    let killed_out = dir.path().join("killed");
    let mut killed = validator()
        .arg("run")
        .arg("--profile")
        .arg(&flow)
        .arg("--target")
        .arg(state.join("target.toml"))
        .arg("--out")
        .arg(&killed_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut console = std::io::BufReader::new(killed.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut console, &mut line).unwrap();
        assert!(n > 0, "the run ended before its commit step: {seen}");
        seen.push_str(&line);
        if line.contains("e2e.commit ") {
            break;
        }
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let (code, doc) = run_profiles(&state, &out, std::slice::from_ref(&flow));
    assert_eq!(code, 0, "{}", results(&doc));
    for id in steps {
        assert_eq!(
            status_of(&doc, id),
            "PASS",
            "after a killed run, {id}: {}",
            results(&doc)
        );
    }

    let down = demo()
        .args(["down", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
}
