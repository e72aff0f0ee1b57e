//! The binary, end to end: exit codes, files written, error text, abort.
//! Each test works in its own temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env_remove("SPINUP_SIGNING_KEY")
        .env_remove("VALIDATION_TIMEOUT")
        .env_remove("SAFE_MODE")
        .env_remove("DEBUG")
        .env("NO_COLOR", "1");
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn spinup-smoke")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The artifact with this suffix: `.json` is the transcript itself, not
/// the `.intoto.json` envelope beside it.
fn written(dir: &Path, suffix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.to_string_lossy();
            name.ends_with(suffix) && (suffix != ".json" || !name.ends_with(".intoto.json"))
        })
        .unwrap_or_else(|| panic!("no *{suffix} in {}", dir.display()))
}

fn transcript(dir: &Path) -> serde_json::Value {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("boot_transcript_")
                && name.ends_with(".json")
                && !name.ends_with(".intoto.json")
        })
        .expect("a transcript");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn keypair(dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("signer");
    let out = run(&["keygen", "--out", prefix.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    (dir.join("signer.key"), dir.join("signer.pub"))
}

#[test]
fn selftest_passes_and_its_transcript_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let out_dir = dir.path().join("artifacts");
    let image = dir.path().join("image.raw");
    std::fs::write(&image, b"not really an image, but bytes to hash").unwrap();
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--out",
        out_dir.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Every check passes, but the self-test examines four phases of ten:
    // WARNING (exit 0), naming the others.
    assert!(
        stdout.contains("\nWARNING: 10 checks: 10 passed, 0 warned, 0 failed, 0 skipped in "),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nWARNING: phases not examined: build, boot, oidc, agent, sandbox, e2e\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("transcript: "),
        "prints the files it wrote: {stdout}"
    );
    let doc = transcript(&out_dir);
    assert_eq!(doc["overall_status"], "WARNING");
    assert_eq!(doc["test_summary"]["failed"], 0);
    assert_eq!(doc["test_summary"]["warned"], 0);
    let phases: Vec<(&str, &str)> = doc["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["phase"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        phases,
        [
            ("config", "RAN"),
            ("build", "NO_CHECKS"),
            ("boot", "NO_CHECKS"),
            ("services", "RAN"),
            ("oidc", "NO_CHECKS"),
            ("agent", "NO_CHECKS"),
            ("sandbox", "NO_CHECKS"),
            ("e2e", "NO_CHECKS"),
            ("performance", "RAN"),
            ("security", "RAN"),
        ]
    );
    assert_eq!(doc["stand_ins"], serde_json::json!({}));
    let total = doc["test_summary"]["total_tests"].as_u64().unwrap();
    assert_eq!(
        total as usize,
        doc["validation_results"].as_array().unwrap().len()
    );
    assert!(doc["image_digest"].as_str().unwrap().starts_with("sha256:"));
    let junit = std::fs::read_to_string(written(&out_dir, ".junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count() as u64, total);
    for file in [
        written(&out_dir, ".json"),
        written(&out_dir, ".intoto.json"),
    ] {
        let out = run(&[
            "verify",
            file.to_str().unwrap(),
            "--pubkey",
            public.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    }
    // Without --pubkey, an intact file is not valid: the signer is not pinned.
    for file in [
        written(&out_dir, ".json"),
        written(&out_dir, ".intoto.json"),
    ] {
        let out = run(&["verify", file.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("NOT VERIFIED: signer not pinned") && !stdout.contains("valid"),
            "{stdout}\n{stderr}"
        );
        // Unless the user trusts the embedded key, and is warned what that proves.
        let out = run(&["verify", file.to_str().unwrap(), "--trust-embedded-key"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(stdout.contains(": valid ("), "{stdout}");
        assert!(
            stderr.contains("warning: key not pinned") && stderr.contains("not who signed it"),
            "{stderr}"
        );
    }
    // --pubkey and --trust-embedded-key together are a usage error.
    let out = run(&[
        "verify",
        written(&out_dir, ".json").to_str().unwrap(),
        "--pubkey",
        public.to_str().unwrap(),
        "--trust-embedded-key",
    ]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    // The same transcript against a different image fails verification.
    std::fs::write(&image, b"another image").unwrap();
    let out = run(&[
        "verify",
        written(&out_dir, ".json").to_str().unwrap(),
        "--pubkey",
        public.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("INVALID: digest mismatch"),
        "{:?}",
        text(&out)
    );
}

/// A required phase that ran no check fails the run (exit 1) and says so,
/// whether `--require-phase` or the target's `require_phases` requires it;
/// the transcript records it.
#[test]
fn a_required_phase_without_checks_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("flag");
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--require-phase",
        "agent",
        "--require-phase",
        "config",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("\nFAILURE: 10 checks: 10 passed, 0 warned, 0 failed, 0 skipped in "),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "\nFAILURE: required phase `agent` ran no check (no loaded check is in it)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nWARNING: phases not examined: build, boot, oidc, sandbox, e2e\n"),
        "{stdout}"
    );
    let doc = transcript(&out_dir);
    assert_eq!(doc["overall_status"], "FAILURE");
    assert_eq!(doc["phases"][5]["phase"], "agent");
    assert_eq!(doc["phases"][5]["status"], "NO_CHECKS");
    assert_eq!(doc["phases"][5]["required"], true);
    assert_eq!(doc["phases"][0]["required"], true);
    assert_eq!(doc["phases"][1]["required"], false);
    let verified = run(&[
        "verify",
        written(&out_dir, ".json").to_str().unwrap(),
        "--trust-embedded-key",
    ]);
    assert_eq!(verified.status.code(), Some(0), "{:?}", text(&verified));

    // From the target, with the phase left out by --phase.
    let target = dir.path().join("target.toml");
    std::fs::write(
        &target,
        "name = \"t\"\nrequire_phases = [\"services\", \"security\"]\n",
    )
    .unwrap();
    let out_dir = dir.path().join("target");
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--target",
        target.to_str().unwrap(),
        "--phase",
        "services",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout
            .contains("\nFAILURE: required phase `security` ran no check (left out by --phase)\n"),
        "{stdout}"
    );
    let doc = transcript(&out_dir);
    assert_eq!(doc["overall_status"], "FAILURE");
    assert_eq!(doc["phases"][9]["status"], "NOT_SELECTED");
    assert_eq!(doc["phases"][3]["status"], "RAN");

    // An unknown phase in the target is a usage error naming file and line.
    std::fs::write(&target, "name = \"t\"\nrequire_phases = [\"agnet\"]\n").unwrap();
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--target",
        target.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown phase `agnet`") && stderr.contains("target.toml:2:"),
        "{stderr}"
    );
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--require-phase",
        "agnet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("unknown phase `agnet`"));
}

/// A target's stand-ins are named everywhere: on each line, in the summary,
/// in the transcript and the attestation.
#[test]
fn stand_ins_declared_by_the_target_are_never_silent() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.toml");
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        "[[check]]\nid = \"gitlab.health\"\nphase = \"services\"\nservice = \"gitlab\"\n[check.command]\nrun = [\"true\"]\n\n\
         [[check]]\nid = \"db.up\"\nphase = \"services\"\n[check.command]\nrun = [\"true\"]\n",
    )
    .unwrap();
    std::fs::write(
        &target,
        "name = \"t\"\n[stand_ins]\ngitlab = \"a stand-in GitLab for this test\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "run",
        "--profile",
        profile.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let line = |id: &str| {
        stdout
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no line for {id}: {stdout}"))
            .to_string()
    };
    assert!(line("gitlab.health").ends_with(" (stand-in)"), "{stdout}");
    assert!(!line("db.up").contains("stand-in"), "{stdout}");
    assert!(
        stdout.contains("\nWARNING, GitLab checked against a stand-in: 2 checks: 2 passed"),
        "{stdout}"
    );
    let doc = transcript(&out_dir);
    assert_eq!(
        doc["stand_ins"],
        serde_json::json!({ "gitlab": "a stand-in GitLab for this test" })
    );
    assert_eq!(doc["validation_results"][0]["stand_in"], true);
    assert!(doc["validation_results"][1].get("stand_in").is_none());
    assert_eq!(doc["service_health"]["gitlab"]["stand_in"], true);
    let verified = run(&[
        "verify",
        written(&out_dir, ".intoto.json").to_str().unwrap(),
        "--trust-embedded-key",
    ]);
    assert_eq!(verified.status.code(), Some(0), "{:?}", text(&verified));
    let envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(written(&out_dir, ".intoto.json")).unwrap())
            .unwrap();
    use base64::Engine;
    let statement: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let configuration = statement["predicate"]["configuration"].as_array().unwrap();
    let target_entry = configuration.last().unwrap();
    assert_eq!(target_entry["name"], "target:t");
    assert_eq!(
        target_entry["annotations"]["stand_ins"]["gitlab"],
        "a stand-in GitLab for this test"
    );
    let sha = String::from_utf8(
        Command::new("sha256sum")
            .arg(&target)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        target_entry["digest"]["sha256"],
        sha.split_whitespace().next().unwrap()
    );
}

#[test]
fn selftest_fail_exits_1_with_skip_reason_and_failure_block() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest-fail.toml",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("EPHEMERAL"),
        "loud ephemeral-key warning: {stderr}"
    );
    assert!(
        stdout.contains("FAIL    selftest-fail.missing-file (config)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("needs `selftest-fail.missing-file`, which failed"),
        "{stdout}"
    );
    assert!(stdout.contains("hint:"), "{stdout}");
    let doc = transcript(dir.path());
    assert_eq!(doc["overall_status"], "FAILURE");
    let results = doc["validation_results"].as_array().unwrap();
    let by_id = |id: &str| results.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id("selftest-fail.needs-missing-file")["status"], "SKIP");
    assert_eq!(by_id("selftest-fail.optional-warning")["status"], "WARN");
    assert_eq!(by_id("selftest-fail.unrelated-pass")["status"], "PASS");
    // An ephemeral key cannot be pinned: trusted explicitly, the transcript
    // verifies, with warnings; otherwise the signer is not pinned.
    let transcript_path = written(dir.path(), ".json");
    let out = run(&["verify", transcript_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("signer not pinned"),
        "{:?}",
        text(&out)
    );
    let out = run(&[
        "verify",
        transcript_path.to_str().unwrap(),
        "--trust-embedded-key",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.to_lowercase().contains("ephemeral"), "{stderr}");
    assert!(stderr.contains("key not pinned"), "{stderr}");
}

#[test]
fn bad_profile_exits_2_naming_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("bad.toml");
    std::fs::write(
        &profile,
        "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:1\"\nneeds = []\n",
    )
    .unwrap();
    std::fs::write(
        &profile,
        "[[check]]\nid = \"a\"\nphase = \"config\"\nneeds = [\"b\"]\n[check.tcp]\naddress = \"x:1\"\n",
    )
    .unwrap();
    let out = run(&[
        "run",
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs unknown check `b`"), "{stderr}");
    assert!(
        stderr.contains("bad.toml:4:10"),
        "points at the `needs` entry: {stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_empty_profile_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("empty.toml");
    std::fs::write(&profile, "").unwrap();
    let out = run(&["list", "--profile", profile.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("profile holds no [[check]]")
            && stderr.contains(&profile.display().to_string()),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing to run"), "{stderr}");
}

#[test]
fn a_signing_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keypair(dir.path());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600, "keygen writes the key 0600");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--key",
        key.to_str().unwrap(),
        "--out",
        dir.path().join("artifacts").to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "signing key {} is readable by group or others (mode 0640)",
            key.display()
        )) && stderr.contains(&format!("hint: chmod 600 {}", key.display())),
        "{stderr}"
    );
    assert!(
        !dir.path().join("artifacts").exists()
            || std::fs::read_dir(dir.path().join("artifacts"))
                .unwrap()
                .next()
                .is_none(),
        "nothing was run or written"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // Unknown phase.
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--phase",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("unknown phase `nope`"));
    // Missing target file.
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--target",
        "/nonexistent/target.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("/nonexistent/target.toml"));
    // Missing key file.
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--key",
        "/nonexistent/k.key",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    // Unwritable artifacts directory (a path below a regular file).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--out",
        file.join("sub").to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not writable") && stderr.contains("--out"),
        "{stderr}"
    );
    // Bad environment.
    let out = bin()
        .args(["list", "--profile", "scenarios/selftest.toml"])
        .env("VALIDATION_TIMEOUT", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn phase_selection_runs_those_phases_and_what_they_need() {
    let out = run(&[
        "list",
        "--profile",
        "scenarios/selftest.toml",
        "--phase",
        "services",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"selftest.localhost-resolves"));
    assert!(
        !ids.contains(&"selftest.shadow-protected"),
        "security phase not selected: {ids:?}"
    );
    assert!(
        !ids.contains(&"selftest.os-release"),
        "config check not needed: {ids:?}"
    );
}

#[test]
fn list_prints_the_plan_as_a_tree() {
    let out = run(&["list", "--profile", "scenarios/selftest-fail.toml"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(stdout.contains("phase 1/10 config"), "{stdout}");
    assert!(
        stdout.contains("needs: selftest-fail.missing-file"),
        "{stdout}"
    );
}

#[test]
fn json_format_prints_the_transcript_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest-fail.toml",
        "--format",
        "json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the transcript JSON");
    assert_eq!(doc["overall_status"], "FAILURE");
    assert!(doc["signature"]["value"].is_string());
}

/// A check that would run for a minute; SIGINT must cut it short, kill its
/// process, and still leave a verifying transcript marked ABORTED (exit 3).
#[test]
fn sigint_aborts_with_a_signed_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("slow.toml");
    let marker = dir.path().join("slow.pid");
    std::fs::write(
        &profile,
        format!(
            "[[check]]\nid = \"quick.pass\"\nphase = \"config\"\n[check.command]\nrun = [\"true\"]\n\n\
             [[check]]\nid = \"slow.sleep\"\nphase = \"services\"\ntimeout = \"60s\"\n[check.command]\nscript = \"echo $$ > {}; exec sleep 60\"\n",
            marker.display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let child = bin()
        .args([
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sleeper: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: plain signal delivery to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    let doc = transcript(&out_dir);
    assert_eq!(doc["overall_status"], "ABORTED");
    let results = doc["validation_results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "PASS");
    assert_eq!(results[1]["status"], "ABORTED");
    let verified = run(&[
        "verify",
        written(&out_dir, ".json").to_str().unwrap(),
        "--trust-embedded-key",
    ]);
    assert_eq!(verified.status.code(), Some(0), "{:?}", text(&verified));
    // The check's process was killed with the run.
    let gone = (0..100).any(|_| {
        let alive = std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false);
        if alive {
            std::thread::sleep(Duration::from_millis(20));
        }
        !alive
    });
    assert!(gone, "sleep {sleeper} outlived the aborted run");
}

#[test]
fn validation_timeout_aborts_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("slow.toml");
    std::fs::write(
        &profile,
        "[[check]]\nid = \"slow.sleep\"\nphase = \"services\"\ntimeout = \"60s\"\n[check.command]\nrun = [\"sleep\", \"60\"]\n",
    )
    .unwrap();
    let out = bin()
        .args([
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .env("VALIDATION_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    let doc = transcript(dir.path());
    assert_eq!(doc["overall_status"], "ABORTED");
}

#[test]
fn digest_matches_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    std::fs::write(&file, vec![7u8; 3 * 1024 * 1024 + 17]).unwrap();
    let ours = run(&["digest", file.to_str().unwrap()]);
    let theirs = Command::new("sha256sum").arg(&file).output().unwrap();
    let theirs = String::from_utf8_lossy(&theirs.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout).trim(),
        format!("sha256:{theirs}")
    );
}

/// Checks judged, artifacts not written: the `--out` directory, writable
/// when the run started, is replaced by a plain file by one of the checks.
/// Exit 4 (not 2: something was judged), the write error printed, even
/// though a check also failed (4 outranks 1).
#[test]
fn artifacts_not_written_after_judging_exit_4_with_the_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let profile = dir.path().join("clobber.toml");
    std::fs::write(
        &profile,
        format!(
            "[[check]]\nid = \"clobber.out\"\nphase = \"config\"\n[check.command]\nscript = \"rm -r {out} && echo not a directory > {out}\"\n\n\
             [[check]]\nid = \"clobber.fails\"\nphase = \"services\"\n[check.command]\nrun = [\"false\"]\n",
            out = out_dir.display()
        ),
    )
    .unwrap();
    let out = run(&[
        "run",
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("PASS    clobber.out") && stdout.contains("FAIL    clobber.fails"),
        "both checks were judged: {stdout}"
    );
    assert!(
        stderr.contains(&format!("cannot write artifacts to {}", out_dir.display())),
        "the write error: {stderr}"
    );
    assert!(
        stderr.contains("the checks were judged (FAILURE), but the signed transcript"),
        "{stderr}"
    );
    assert!(out_dir.is_file(), "nothing replaced the file");
}

/// This binary alone in a directory of its own (hard-linked, else copied:
/// the demo program is looked for beside the real executable).
fn lone_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let lone = bin.join("spinup-smoke");
    let original = Path::new(env!("CARGO_BIN_EXE_spinup-smoke"));
    if std::fs::hard_link(original, &lone).is_err() {
        std::fs::copy(original, &lone).unwrap();
    }
    lone
}

#[test]
fn demo_without_the_demo_program_exits_2_naming_where_it_looked() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lone = lone_binary(dir.path());
    let out = Command::new(&lone)
        .args(["demo", "up", "--state", "x"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let wanted = lone.with_file_name("spinup-smoke-demo");
    assert!(
        stderr.contains(&format!("{} does not exist", wanted.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("cargo build --workspace") && stderr.contains("./scripts/demo.sh"),
        "{stderr}"
    );
}

/// `spinup-smoke demo ARGS` becomes `spinup-smoke-demo ARGS` in the same
/// process (exec): same pid, arguments untouched, its exit code.
#[test]
fn demo_execs_the_demo_program_with_the_arguments() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lone = lone_binary(dir.path());
    let fake = lone.with_file_name("spinup-smoke-demo");
    let record = dir.path().join("record");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho $$ > {record}\nfor a in \"$@\"; do echo \"[$a]\" >> {record}; done\nexit 7\n",
            record = record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let child = Command::new(&lone)
        .args(["demo", "--state", "/tmp/a b", "up", "--help", "-x"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "the demo program's exit code");
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        recorded,
        format!("{pid}\n[--state]\n[/tmp/a b]\n[up]\n[--help]\n[-x]\n"),
        "same process, arguments untouched"
    );
}

/// A network namespace of the test's own whose resolver (127.0.0.1:53)
/// receives queries and never answers; removed on drop.
struct DeadResolver {
    name: String,
    listener: std::process::Child,
}

impl DeadResolver {
    fn start() -> DeadResolver {
        let name = format!("ss-dns-{}", std::process::id());
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip runs");
            assert!(out.status.success(), "ip {args:?}: {:?}", text(&out));
        };
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        // `ip netns exec` mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf.
        let etc = PathBuf::from("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:5 attempts:3\n",
        )
        .unwrap();
        let listener = Command::new("ip")
            .args(["netns", "exec", &name, "python3", "-c"])
            .arg("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('127.0.0.1', 53))\nprint('ready', flush=True)\nwhile True: s.recvfrom(4096)\n")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the black-hole resolver starts");
        let mut listener = listener;
        // Queries must reach a bound socket (else the kernel refuses them
        // at once and the resolver gives up quickly).
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(listener.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the black-hole resolver did not bind");
        DeadResolver { name, listener }
    }
}

impl Drop for DeadResolver {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.name));
    }
}

/// A resolver that never answers: `resolves = false` does not pass on
/// silence, `resolves = true` fails at the check's deadline, and the process
/// exits right after writing the transcript instead of waiting for the
/// resolver to give up (here 5 s x 3 attempts per query).
#[test]
#[cfg_attr(
    missing = "netns",
    ignore = "needs root and ip (iproute2) for a network namespace: ./scripts/setup.sh installs iproute2"
)]
fn a_dead_resolver_fails_dns_checks_at_their_deadline_and_the_process_exits() {
    let resolver = DeadResolver::start();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("dns.toml");
    std::fs::write(
        &profile,
        "[[check]]\nid = \"dns.absent\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.dns]\nname = \"db.rave.example\"\nresolves = false\n\n[[check]]\nid = \"dns.present\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.dns]\nname = \"gitlab.rave.example\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &resolver.name])
        .arg(env!("CARGO_BIN_EXE_spinup-smoke"))
        .args(["run", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(&out_dir)
        .env("NO_COLOR", "1")
        .env_remove("SPINUP_SIGNING_KEY")
        .output()
        .unwrap();
    let took = started.elapsed();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let doc = transcript(&out_dir);
    let result = |id: &str| {
        doc["validation_results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {doc}"))
            .clone()
    };
    let absent = result("dns.absent");
    assert_eq!(absent["status"], "FAIL", "{absent}");
    assert!(
        absent["found"]
            .as_str()
            .unwrap()
            .contains("no answer from the resolver"),
        "{absent}"
    );
    let present = result("dns.present");
    assert_eq!(present["status"], "FAIL", "{present}");
    assert!(
        present["found"]
            .as_str()
            .unwrap()
            .contains("no answer before the deadline"),
        "{present}"
    );
    // Both checks end at their 2 s deadline (they run at once); the process
    // must not then wait the resolver's 15 s out. A wide bound: this is about
    // not hanging, not about speed.
    assert!(
        took < Duration::from_secs(12),
        "the run took {took:?}: the process waited for the resolver"
    );
}

/// Without `--profile` and without ./health-checks, `list` and `run` use
/// the profiles installed beside the program (<prefix>/share/spinup-smoke),
/// as the Nix package lays them out; `run --help` says so.
#[test]
fn without_profile_the_installed_health_checks_are_used() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lone = lone_binary(dir.path());
    let installed = dir.path().join("share/spinup-smoke/health-checks");
    std::fs::create_dir_all(&installed).unwrap();
    std::fs::write(
        installed.join("one.toml"),
        "[profile]\nname = \"installed\"\nservice = \"s\"\n\n[[check]]\nid = \"installed.file\"\nphase = \"config\"\n[check.file]\npath = \"/\"\nkind = \"directory\"\n",
    )
    .unwrap();
    let cwd = dir.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = Command::new(&lone)
        .arg("list")
        .current_dir(&cwd)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("installed.file"), "{stdout}");

    // A health-checks/ in the working directory wins.
    std::fs::create_dir_all(cwd.join("health-checks")).unwrap();
    let out = Command::new(&lone)
        .arg("list")
        .current_dir(&cwd)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!stdout.contains("installed.file"), "{stdout}{stderr}");

    let help = Command::new(&lone)
        .args(["run", "--help"])
        .output()
        .unwrap();
    let (stdout, _) = text(&help);
    assert!(
        stdout.contains("share/spinup-smoke/health-checks"),
        "{stdout}"
    );
}

/// The documented P6 example target loads with every profile the CI smoke
/// jobs run (its secrets from the environment, as in GitLab CI).
#[test]
fn the_p6_example_target_loads_with_the_health_checks() {
    let mut cmd = bin();
    cmd.args([
        "list",
        "--profile",
        "health-checks/",
        "--target",
        "targets/rave-p6.example.toml",
    ]);
    for var in [
        "RAVE_SSH_KEY",
        "RAVE_POSTGRES_ADMIN_PASSWORD",
        "RAVE_GITLAB_DB_PASSWORD",
        "RAVE_GRAFANA_DB_PASSWORD",
        "RAVE_SYNAPSE_DB_PASSWORD",
        "RAVE_SYNAPSE_OPERATOR_PASSWORD",
        "RAVE_GITLAB_TOKEN",
        "RAVE_OIDC_CLIENT_SECRET",
        "RAVE_SMOKE_USER_PASSWORD",
    ] {
        cmd.env(var, "placeholder-from-ci");
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("security.sshd.effective_config"),
        "{stdout}"
    );
}

/// `compare OLD NEW`: both verified against the pinned key, then every kind
/// of difference reported; the criteria decide the exit code; a tampered,
/// unpinned or wrongly asked comparison is refused.
#[test]
fn compare_reports_differences_and_its_criteria_decide_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let run_into = |name: &str, checks: &[(&str, &str)]| -> PathBuf {
        let profile = dir.path().join(format!("{name}.toml"));
        let body: String = checks
            .iter()
            .map(|(id, program)| {
                format!("[[check]]\nid = \"{id}\"\nphase = \"services\"\n[check.command]\nrun = [\"{program}\"]\n\n")
            })
            .collect();
        std::fs::write(&profile, body).unwrap();
        let out_dir = dir.path().join(name);
        let out = run(&[
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}", text(&out));
        written(&out_dir, ".json")
    };
    let old = run_into(
        "old",
        &[
            ("a.keeps", "true"),
            ("b.breaks", "true"),
            ("c.goes", "true"),
        ],
    );
    let new = run_into(
        "new",
        &[
            ("a.keeps", "true"),
            ("b.breaks", "false"),
            ("d.comes", "true"),
        ],
    );
    let pubkey = public.to_str().unwrap();
    let compare = |criteria: &str, format: &str| {
        run(&[
            "compare",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "--pubkey",
            pubkey,
            "--criteria",
            criteria,
            "--format",
            format,
        ])
    };

    let out = compare("improvement", "human");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for line in [
        "newly failing (1):",
        "  FAIL     b.breaks (was PASS)",
        "appeared (1):",
        "  PASS     d.comes",
        "vanished (1):",
        "  PASS     c.goes",
        "1 unchanged",
        "NOT MET: improvement: 1 newly failing, 1 passing check(s) vanished",
    ] {
        assert!(stdout.contains(line), "`{line}` in:\n{stdout}");
    }

    let out = compare("threshold=0.6", "json");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["criteria_met"], true, "{doc}");
    assert_eq!(
        doc["comparison"]["newly_failing"][0]["id"], "b.breaks",
        "{doc}"
    );
    assert_eq!(doc["comparison"]["vanished"][0]["id"], "c.goes", "{doc}");

    let out = compare("all-pass", "human");
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(text(&out)
        .0
        .contains("all-pass: 1 of 3 checks did not pass"));

    // A changed byte in NEW: nothing is compared.
    let tampered = dir.path().join("tampered.json");
    let body = std::fs::read_to_string(&new)
        .unwrap()
        .replacen("\"FAIL\"", "\"PASS\"", 1);
    std::fs::write(&tampered, body).unwrap();
    let out = run(&[
        "compare",
        old.to_str().unwrap(),
        tampered.to_str().unwrap(),
        "--pubkey",
        pubkey,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("NOT VERIFIED") && stderr.contains("nothing compared"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");

    // No pinned key: refused, as verify refuses.
    let out = run(&["compare", old.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(text(&out).1.contains("not pinned"), "{:?}", text(&out));

    // Bad criteria: a usage error naming the fix.
    let out = compare("threshold=95", "human");
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("between 0 and 1"), "{:?}", text(&out));
}

/// Completions and the man page come from the CLI's own definition: bash
/// parses the completions, and both name every subcommand.
#[test]
fn completions_and_man_page_name_every_subcommand() {
    let bash = run(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0), "{:?}", text(&bash));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spinup-smoke.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let parsed = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{:?}", text(&parsed));
    let man = run(&["man"]);
    assert_eq!(man.status.code(), Some(0), "{:?}", text(&man));
    let (completions, page) = (text(&bash).0, text(&man).0);
    assert!(
        page.starts_with(".ie") && page.contains(".TH spinup-smoke 1"),
        "{page}"
    );
    for sub in [
        "run", "list", "verify", "compare", "keygen", "digest", "demo",
    ] {
        assert!(completions.contains(sub), "completions lack {sub}");
        assert!(page.contains(sub), "the man page lacks {sub}");
    }
    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
}

/// `run --quiet`: no progress lines, only the failures and the summary;
/// `verify --format json`: one object, valid or not, with the reason.
#[test]
fn quiet_runs_and_json_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        "[[check]]\nid = \"q.pass\"\nphase = \"services\"\n[check.command]\nrun = [\"true\"]\n\n[[check]]\nid = \"q.fail\"\nphase = \"services\"\n[check.command]\nrun = [\"false\"]\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "run",
        "--quiet",
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("PASS    q.pass") && !stdout.contains("== phase"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL    q.fail (services)"), "{stdout}");
    assert!(stdout.contains("FAILURE: 2 checks"), "{stdout}");

    let transcript = written(&out_dir, ".json");
    let verify = |file: &Path, pinned: bool| -> (Option<i32>, serde_json::Value) {
        let mut args = vec!["verify", file.to_str().unwrap(), "--format", "json"];
        if pinned {
            args.extend(["--pubkey", public.to_str().unwrap()]);
        }
        let out = run(&args);
        let doc =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(&out)));
        (out.status.code(), doc)
    };
    let (code, doc) = verify(&transcript, true);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["valid"], true, "{doc}");
    assert_eq!(doc["kind"], "transcript", "{doc}");
    assert_eq!(doc["status"], "FAILURE", "{doc}");
    let (code, doc) = verify(&transcript, false);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(
        (doc["valid"].clone(), doc["pinned"].clone()),
        (false.into(), false.into()),
        "{doc}"
    );
    assert!(
        doc["error"].as_str().unwrap().contains("not pinned"),
        "{doc}"
    );
    let tampered = dir.path().join("tampered.json");
    std::fs::write(
        &tampered,
        std::fs::read_to_string(&transcript)
            .unwrap()
            .replacen("\"FAIL\"", "\"PASS\"", 1),
    )
    .unwrap();
    let (code, doc) = verify(&tampered, true);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["valid"], false, "{doc}");
    assert!(!doc["error"].as_str().unwrap().is_empty(), "{doc}");
}
