//! `spinup-smoke watch`, the binary for real: a background watch of a TCP
//! service that is stopped and started again reports the flap; `status`,
//! `logs` and `stop` find it; a foreground watch ends at `--for`; a second
//! watch in the same directory is refused. The tests wait on the watch's
//! own summary, never on the clock.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"));
    cmd.env_remove("SPINUP_SIGNING_KEY")
        .env_remove("VALIDATION_TIMEOUT")
        .env("NO_COLOR", "1");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A profile with one TCP check of `port`, failing at once when it is closed.
fn profile(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("svc.toml");
    std::fs::write(
        &path,
        format!(
            "[[check]]\nid = \"svc.port\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.tcp]\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    path
}

/// The history of `svc.port` in the watch's summary ("" before the first run).
fn history(state: &Path) -> String {
    std::fs::read_to_string(state.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|doc| {
            doc["soak"]["checks"]
                .as_array()?
                .iter()
                .find(|c| c["id"] == "svc.port")
                .and_then(|c| c["history"].as_str().map(str::to_string))
        })
        .unwrap_or_default()
}

/// Waits (within a minute) until the history satisfies `done`.
fn wait_for(state: &Path, what: &str, done: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let h = history(state);
        if done(&h) {
            return h;
        }
        assert!(
            Instant::now() < until,
            "the watch never reached {what}: history `{h}`; log:\n{}",
            std::fs::read_to_string(state.join("watch.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_background_watch_reports_the_flap_of_a_service_stopped_and_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let profile = profile(dir.path(), port);
    let state = dir.path().join("watch");
    let state_arg = state.to_str().unwrap();

    let started = bin()
        .args(["watch", "--background", "--every", "200ms", "--for", "5m"])
        .args(["--profile", profile.to_str().unwrap(), "--state", state_arg])
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", text(&started));
    assert!(
        text(&started).contains("watch started in the background"),
        "{}",
        text(&started)
    );
    let status = bin()
        .args(["watch", "status", "--state", state_arg])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(text(&status).contains("running (pid"), "{}", text(&status));

    // A second watch in the same directory is refused while this one runs.
    let again = bin()
        .args([
            "watch",
            "--profile",
            profile.to_str().unwrap(),
            "--state",
            state_arg,
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("already running"), "{}", text(&again));

    wait_for(&state, "two passing runs", |h| h.starts_with("PP"));
    drop(listener);
    wait_for(&state, "a failed run", |h| h.contains('F'));
    let _listener = TcpListener::bind(("127.0.0.1", port)).expect("the port again");
    let h = wait_for(&state, "a pass after the failure", |h| {
        h.find('F').is_some_and(|f| h[f..].contains('P'))
    });
    assert!(h.starts_with("PP"), "{h}");

    let stop = bin()
        .args(["watch", "stop", "--state", state_arg])
        .output()
        .unwrap();
    assert_eq!(stop.status.code(), Some(0), "{}", text(&stop));
    assert!(text(&stop).contains("stopped"), "{}", text(&stop));
    let status = bin()
        .args(["watch", "status", "--state", state_arg])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    let said = text(&status);
    assert!(said.contains("ended"), "{said}");
    assert!(said.contains("svc.port flapped 2 time(s)"), "{said}");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("summary.json")).unwrap())
            .unwrap();
    let check = &doc["soak"]["checks"][0];
    assert_eq!(check["id"], "svc.port");
    assert_eq!(check["flaps"], 2, "{check}");
    assert!(check["failures"].as_u64().unwrap() >= 1, "{check}");
    // Every run kept its signed transcript, and each verifies.
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len() as u64, check["runs"].as_u64().unwrap(), "{doc}");
    for run in runs {
        let transcript = run["transcript"].as_str().expect("a transcript per run");
        let verify = bin()
            .args(["verify", transcript, "--trust-embedded-key"])
            .output()
            .unwrap();
        assert!(verify.status.success(), "{transcript}: {}", text(&verify));
    }
    let logs = bin()
        .args(["watch", "logs", "--state", state_arg])
        .output()
        .unwrap();
    assert!(logs.status.success(), "{}", text(&logs));
    assert!(text(&logs).contains("== watch run 1"), "{}", text(&logs));
    assert!(
        text(&logs).contains("stopping after the run in flight"),
        "{}",
        text(&logs)
    );

    // The ended watch's runs are its proof: a new watch there is refused.
    let again = bin()
        .args([
            "watch",
            "--profile",
            profile.to_str().unwrap(),
            "--state",
            state_arg,
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("holds the runs of an earlier watch"),
        "{}",
        text(&again)
    );
    let stop = bin()
        .args(["watch", "stop", "--state", state_arg])
        .output()
        .unwrap();
    assert_eq!(stop.status.code(), Some(1), "{}", text(&stop));
}

#[test]
fn a_foreground_watch_ends_at_its_duration_and_bad_input_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let profile = profile(dir.path(), listener.local_addr().unwrap().port());
    let state = dir.path().join("watch");
    let out = bin()
        .args(["watch", "--every", "300ms", "--for", "1s"])
        .args(["--profile", profile.to_str().unwrap()])
        .args(["--state", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("flaps: none"), "{said}");
    let h = history(&state);
    assert!(h.len() >= 2 && h.chars().all(|c| c == 'P'), "{h}: {said}");
    assert!(
        !state.join("watch.pid").exists(),
        "the pid file is removed at the end"
    );

    // A broken profile is reported at once, naming the file; nothing starts.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[check]]\nid = \"x\"\nphase = \"nope\"\n").unwrap();
    let state2 = dir.path().join("watch2");
    let out = bin()
        .args([
            "watch",
            "--background",
            "--profile",
            broken.to_str().unwrap(),
        ])
        .args(["--state", state2.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("broken.toml"), "{}", text(&out));
    assert!(!state2.join("watch.pid").exists());
    // A missing image and an unreadable key too, both at once.
    let missing = dir.path().join("no-such.qcow2");
    let out = bin()
        .args([
            "watch",
            "--background",
            "--profile",
            profile.to_str().unwrap(),
        ])
        .arg("--image")
        .arg(&missing)
        .arg("--key")
        .arg(dir.path().join("no-such.key"))
        .args(["--state", state2.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no-such.qcow2 does not exist"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("no-such.key"), "{}", text(&out));
    assert!(!state2.join("watch.pid").exists());
    let out = bin().args(["watch", "--every", "0s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = bin()
        .args(["watch", "status", "--state", state2.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no watch in"), "{}", text(&out));
}
