//! The `container` probe against a real engine: Debian's podman serving the
//! Docker API, started the way the demo starts it (its own storage under a
//! temporary state directory, a busybox image imported from
//! busybox-static). Without podman, runc or a static busybox the test is
//! reported ignored with the reason, unless SPINUP_SMOKE_REQUIRE_ALL=1 (set
//! by scripts/test.sh), where it fails.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use spinup_smoke::check::ProbeContext;
use spinup_smoke::check::Verdict;
use spinup_smoke::checks::container::probe::LABEL;
use spinup_smoke::checks::container::{run, Spec};
use spinup_smoke_demo::containers::{self, IMAGE};

/// Fails with what is missing where podman is not installed (the test runs
/// there only under SPINUP_SMOKE_REQUIRE_ALL=1).
fn require_podman() {
    let missing = ["podman", "runc"]
        .into_iter()
        .filter(|program| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .chain((!Path::new("/bin/busybox").exists()).then_some("/bin/busybox"))
        .collect::<Vec<_>>();
    assert!(
        missing.is_empty(),
        "this test needs podman, runc and busybox-static (missing: {}): ./scripts/setup.sh installs them",
        missing.join(", ")
    );
}

fn spec(socket: &Path, body: &str) -> Spec {
    toml::from_str(&format!("socket = \"unix://{}\"\n{body}", socket.display()))
        .unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn run_spec(socket: &Path, command: &str, extra: &str) -> Spec {
    spec(
        socket,
        &format!("assert = \"run\"\nimage = \"{IMAGE}\"\ncommand = [\"/bin/sh\", \"-c\", {command:?}]\n{extra}"),
    )
}

async fn check(spec: &Spec, secs: u64) -> Verdict {
    run(spec, &ProbeContext::for_tests(secs)).await
}

/// Containers of this probe that the engine still knows.
fn leftovers(state: &Path) -> String {
    let d = containers::dir(state);
    let out = Command::new("podman")
        .args(["--root", &d.join("storage").display().to_string()])
        .args(["--runroot", &d.join("run").display().to_string()])
        .args(["--tmpdir", &d.join("tmp").display().to_string()])
        .args(["--storage-driver", "vfs", "--runtime", "runc"])
        .args(["ps", "--all", "--format", "{{.Names}} {{.Status}}"])
        .args(["--filter", &format!("label={LABEL}")])
        .output()
        .expect("podman ps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn wait_for_no_leftovers(state: &Path, within: Duration) -> String {
    let until = Instant::now() + within;
    loop {
        let left = leftovers(state);
        if left.is_empty() || Instant::now() > until {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing = "podman",
    ignore = "needs podman, runc and busybox-static: ./scripts/setup.sh installs them"
)]
async fn the_probe_against_real_podman() {
    require_podman();
    let dir = tempfile::Builder::new()
        .prefix("ss-podman-")
        .tempdir_in("/tmp")
        .unwrap();
    let state = dir.path().to_path_buf();
    for sub in ["logs", "run"] {
        std::fs::create_dir_all(state.join(sub)).unwrap();
    }
    let started = containers::start(&state).await;
    let outcome = match started {
        Ok(_) => tokio::spawn(scenarios(state.clone())).await,
        Err(e) => {
            let log = std::fs::read_to_string(state.join("logs/podman.log")).unwrap_or_default();
            let _ = spinup_smoke_demo::down(&state).await;
            panic!("the demo engine did not start: {e}\n{log}");
        }
    };
    let down = spinup_smoke_demo::down(&state).await;
    if let Err(failed) = outcome {
        std::panic::resume_unwind(failed.into_panic());
    }
    down.unwrap();
    assert!(!state.exists(), "down leaves nothing behind");
}

async fn scenarios(state: std::path::PathBuf) {
    let state = state.as_path();
    let socket = containers::socket(state);

    // On the check's host (`via = "host"`): the socket exists only there
    // (the relay maps the host's path to the demo engine's socket), so the
    // engine answers through the tunnel, a direct attempt finds no socket,
    // and a dropped tunnel fails with its reason.
    {
        use spinup_smoke::checks::testutil::RelayTunnel;
        let host_path = "/run/host-only/podman.sock";
        let tunnel = std::sync::Arc::new(RelayTunnel::new().map_socket(host_path, &socket));
        let mut ctx = ProbeContext::for_tests(20);
        ctx.tunnel = Some(tunnel.clone());
        let on_host: Spec = toml::from_str(&format!(
            "socket = \"{host_path}\"\nassert = \"version\"\nvia = \"host\""
        ))
        .unwrap();
        let v = run(&on_host, &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.starts_with("via "), "{v:?}");
        assert!(tunnel.connections() > 0, "nothing went through the tunnel");
        let direct: Spec = toml::from_str(&format!(
            "socket = \"{host_path}\"\nassert = \"version\"\nvia = \"direct\""
        ))
        .unwrap();
        let v = run(&direct, &ctx).await;
        assert!(
            !v.pass && v.found.contains(&format!("no socket at {host_path}")),
            "{v:?}"
        );
        tunnel.refuse();
        let v = run(&on_host, &ctx).await;
        assert!(!v.pass && v.found.contains("cannot forward"), "{v:?}");
    }

    // The API version: passes at 1.40, fails against an impossible minimum.
    let v = check(
        &spec(&socket, "assert = \"version\"\nmin_api_version = \"1.40\""),
        20,
    )
    .await;
    assert!(v.pass, "{v:?}");
    assert!(v.found.contains("Podman Engine"), "{v:?}");
    let v = check(
        &spec(&socket, "assert = \"version\"\nmin_api_version = \"9.99\""),
        20,
    )
    .await;
    assert!(!v.pass && v.found.contains("is older than 9.99"), "{v:?}");

    // A job: output, exit code, removal proven.
    let v = check(
        &run_spec(&socket, "echo job-ok; id -u", "expect_output = \"job-ok\""),
        60,
    )
    .await;
    assert!(v.pass, "{v:?}");
    assert!(
        v.evidence.contains("exit code: 0") && v.evidence.contains("job-ok\n0"),
        "{v:?}"
    );
    assert!(v.metrics.contains_key("container_run_ms"), "{v:?}");
    assert_eq!(leftovers(state), "", "the probe removed its container");

    // A failing command's exit code comes through; expecting 0 fails.
    let v = check(
        &run_spec(
            &socket,
            "echo failing >&2; exit 7",
            "expect_exit = 7\nexpect_output = \"failing\"",
        ),
        60,
    )
    .await;
    assert!(v.pass, "stderr and the exit code reach the probe: {v:?}");
    let v = check(&run_spec(&socket, "exit 7", ""), 60).await;
    assert!(!v.pass && v.found.contains("exit code 7"), "{v:?}");

    // Output that is not there fails, quoting what was printed.
    let v = check(
        &run_spec(&socket, "echo something-else", "expect_output = \"job-ok\""),
        60,
    )
    .await;
    assert!(!v.pass && v.found.contains("something-else"), "{v:?}");

    // The memory limit is the one the container sees; no network means loopback only.
    let v = check(
        &run_spec(
            &socket,
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            "memory = \"64MiB\"\nexpect_output = \"67108864\"",
        ),
        60,
    )
    .await;
    assert!(v.pass, "{v:?}");
    let v = check(
        &run_spec(
            &socket,
            "[ \"$(grep -c : /proc/net/dev)\" = 1 ] && echo only-loopback",
            "expect_output = \"only-loopback\"",
        ),
        60,
    )
    .await;
    assert!(v.pass, "{v:?}");

    // Another limit than the one expected, or the host's network instead of
    // none: the memory_limit and no_network checks' runs fail, quoting what
    // the container saw.
    let v = check(
        &run_spec(
            &socket,
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
            "memory = \"32MiB\"\nexpect_output = \"67108864\"",
        ),
        60,
    )
    .await;
    assert!(!v.pass && v.found.contains("33554432"), "{v:?}");
    let v = check(
        &run_spec(
            &socket,
            "cat /proc/net/dev; [ \"$(grep -c : /proc/net/dev)\" = 1 ] && echo only-loopback",
            "network = \"host\"\nexpect_output = \"only-loopback\"",
        ),
        60,
    )
    .await;
    assert!(
        !v.pass && v.found.contains("exit code 1") && v.found.contains("output was"),
        "{v:?}"
    );
    assert_eq!(leftovers(state), "", "the probe removed its containers");

    // An image that is not in the store: the failure says how to bring it in.
    let missing = spec(
        &socket,
        "assert = \"run\"\nimage = \"localhost/not-imported:1\"\ncommand = [\"/bin/true\"]",
    );
    let v = check(&missing, 20).await;
    assert!(!v.pass && v.found.contains("podman import"), "{v:?}");

    // A job that outlives the deadline fails at it, and is still removed.
    let started = Instant::now();
    let v = check(&run_spec(&socket, "sleep 300", ""), 8).await;
    assert!(!v.pass && v.found.contains("did not exit within"), "{v:?}");
    assert!(
        v.evidence.contains("removal: removed"),
        "removal is reported: {v:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(leftovers(state), "");

    // A check dropped mid-run (the runner's deadline, Ctrl-C) still removes its container.
    let sleeper = run_spec(&socket, "sleep 300", "");
    let dropped = tokio::time::timeout(Duration::from_secs(3), check(&sleeper, 60)).await;
    assert!(dropped.is_err(), "the sleeper was still running");
    let left = wait_for_no_leftovers(state, Duration::from_secs(30)).await;
    assert_eq!(left, "", "the dropped check's container was removed");

    // The engine gone: the probe fails fast and says so.
    spinup_smoke_demo::process::stop_recorded(state, Duration::from_secs(10));
    let v = check(&spec(&socket, "assert = \"version\""), 10).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("refused") || v.found.contains("no socket"),
        "{v:?}"
    );
}
