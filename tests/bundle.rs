//! Proof bundles through the binary: a real signed run (command and file
//! checks in a temporary directory, no servers), bundled, verified, then
//! tampered with member by member; each tampering fails for its own reason,
//! naming the member.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spinup_smoke::sign::verify::render;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env_remove("SPINUP_SIGNING_KEY")
        .env_remove("VALIDATION_TIMEOUT")
        .env_remove("SAFE_MODE")
        .env_remove("DEBUG")
        .env_remove("SPINUP_SMOKE_CONFIG")
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A signed run whose artifacts directory holds the set and one evidence
/// file its transcript names (as a VM's serial console is named).
struct Run {
    dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
    transcript: PathBuf,
    stem: String,
    stdout: String,
}

impl Run {
    fn artifacts(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }
    fn bundle(&self) -> PathBuf {
        self.dir.path().join("proof.tar.gz")
    }
}

fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    let out = run(&["keygen", "--out", s(&prefix)]);
    assert!(out.status.success(), "{:?}", text(&out));
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

fn signed_run() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "signer");
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let console = artifacts.join("vm-guest-1-console.log");
    // Not named by the transcript: must stay out of the bundle.
    std::fs::write(artifacts.join("unrelated.log"), "not evidence\n").unwrap();
    let profile = dir.path().join("bundle.toml");
    std::fs::write(
        &profile,
        format!(
            r#"[profile]
name = "bundle"
service = "host"

[[check]]
id = "bundle.console"
phase = "config"
description = "A guest console is written into the artifacts"
[check.command]
script = "printf 'guest booted\npassword=hunter2-not-for-the-bundle\n' > {console}; echo console log: {console}"
stdout_contains = ["console log:"]

[[check]]
id = "bundle.os-release"
phase = "config"
description = "The host has an os-release"
[check.file]
path = "/etc/os-release"
kind = "file"
"#,
            console = console.display()
        ),
    )
    .unwrap();
    let out = run(&[
        "run",
        "--profile",
        s(&profile),
        "--out",
        s(&artifacts),
        "--key",
        s(&key),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let transcript = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("boot_transcript_")
                && n.ends_with(".json")
                && !n.ends_with(".intoto.json")
        })
        .expect("a transcript");
    let stem = transcript
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".json")
        .to_string();
    Run {
        dir,
        key,
        public,
        transcript,
        stem,
        stdout,
    }
}

fn bundled() -> Run {
    let r = signed_run();
    let out = run(&[
        "bundle",
        s(&r.transcript),
        "--out",
        s(&r.bundle()),
        "--key",
        s(&r.key),
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    r
}

fn verify(bundle: &Path, public: &Path) -> (Option<i32>, String, String) {
    let out = run(&["verify", s(bundle), "--pubkey", s(public)]);
    let (o, e) = text(&out);
    (out.status.code(), o, e)
}

/// The members of a tar.gz in order.
fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let mut archive = tar::Archive::new(gz);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Writes `members` as a tar.gz with the names exactly as given (a crafted
/// archive may hold names `tar::Builder` would refuse) and of `kind`.
fn repack(path: &Path, members: &[(String, Vec<u8>, tar::EntryType)]) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, bytes, kind) in members {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        builder.append(&header, bytes.as_slice()).unwrap();
    }
    let bytes = builder.into_inner().unwrap().finish().unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn regular(members: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>, tar::EntryType)> {
    members
        .into_iter()
        .map(|(n, b)| (n, b, tar::EntryType::Regular))
        .collect()
}

/// Rewrites the bundle with `change` applied to its members.
fn tamper(r: &Run, change: impl FnOnce(&mut Vec<(String, Vec<u8>, tar::EntryType)>)) {
    let mut list = regular(members(&r.bundle()));
    change(&mut list);
    repack(&r.bundle(), &list);
}

fn fails_with(r: &Run, needles: &[&str]) {
    let (code, stdout, stderr) = verify(&r.bundle(), &r.public);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("INVALID"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "wanted {needle:?} in:\n{stderr}");
    }
}

#[test]
fn run_writes_what_its_console_printed_as_the_console_log() {
    let r = signed_run();
    let log =
        std::fs::read_to_string(r.artifacts().join(format!("{}.console.log", r.stem))).unwrap();
    assert!(log.contains(" PASS    bundle.console"), "{log}");
    assert!(log.contains("WARNING: 2 checks: 2 passed"), "{log}");
    // Every line the console reporter printed, in order, and nothing else.
    assert!(
        r.stdout.starts_with(&log),
        "stdout:\n{}\nlog:\n{log}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!(
        "console log: {}",
        r.artifacts()
            .join(format!("{}.console.log", r.stem))
            .display()
    )));
    assert!(!log.contains('\x1b'));
}

#[test]
fn a_bundle_of_a_real_run_holds_the_set_and_its_evidence_and_verifies() {
    let r = bundled();
    let names: Vec<String> = members(&r.bundle()).into_iter().map(|(n, _)| n).collect();
    let stem = &r.stem;
    assert_eq!(
        names,
        vec![
            "manifest.json".to_string(),
            "manifest.intoto.json".into(),
            format!("{stem}.json"),
            format!("{stem}.intoto.json"),
            format!("{stem}.junit.xml"),
            format!("{stem}.console.log"),
            "vm-guest-1-console.log".into(),
        ]
    );
    let by_name: std::collections::BTreeMap<String, Vec<u8>> =
        members(&r.bundle()).into_iter().collect();
    // The members are the files of the run, byte for byte...
    for name in [
        format!("{stem}.json"),
        format!("{stem}.intoto.json"),
        format!("{stem}.junit.xml"),
        format!("{stem}.console.log"),
    ] {
        assert_eq!(
            by_name[&name],
            std::fs::read(r.artifacts().join(&name)).unwrap(),
            "{name}"
        );
    }
    // ... but evidence passes the redactor.
    let evidence = String::from_utf8(by_name["vm-guest-1-console.log"].clone()).unwrap();
    assert!(evidence.contains("guest booted"), "{evidence}");
    assert!(!evidence.contains("hunter2"), "{evidence}");
    let manifest: serde_json::Value = serde_json::from_slice(&by_name["manifest.json"]).unwrap();
    assert_eq!(manifest["transcript"], format!("{stem}.json"));
    let listed = manifest["members"].as_array().unwrap();
    assert_eq!(listed.len(), 5);
    for entry in listed {
        let name = entry["name"].as_str().unwrap();
        let bytes = &by_name[name];
        assert_eq!(entry["size"], bytes.len() as u64, "{name}");
        let digest = spinup_smoke::digest::sha256_bytes(bytes);
        assert_eq!(
            format!("sha256:{}", entry["sha256"].as_str().unwrap()),
            digest,
            "{name}"
        );
    }

    let (code, stdout, stderr) = verify(&r.bundle(), &r.public);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "valid (bundle: 5 members and the signed manifest; transcript, status WARNING"
        ),
        "{stdout}"
    );

    let out = run(&[
        "verify",
        s(&r.bundle()),
        "--pubkey",
        s(&r.public),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["kind"], "bundle");
    assert_eq!(doc["status"], "WARNING");
    assert_eq!(doc["members"].as_array().unwrap().len(), 5);

    // Told by its content, not its name.
    let renamed = r.dir.path().join("looks-like.json");
    std::fs::copy(r.bundle(), &renamed).unwrap();
    let (code, stdout, stderr) = verify(&renamed, &r.public);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("bundle: 5 members and the signed manifest"),
        "{stdout}"
    );
}

#[test]
fn without_a_pinned_key_the_bundle_is_intact_but_not_verified() {
    let r = bundled();
    let out = run(&["verify", s(&r.bundle())]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("NOT VERIFIED: signer not pinned"),
        "{stderr}"
    );
    let out = run(&["verify", s(&r.bundle()), "--trust-embedded-key"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("key not pinned"), "{stderr}");
}

#[test]
fn a_changed_member_fails_naming_it() {
    let r = bundled();
    let junit = format!("{}.junit.xml", r.stem);
    tamper(&r, |list| {
        let m = list.iter_mut().find(|(n, _, _)| *n == junit).unwrap();
        m.1 = String::from_utf8(m.1.clone())
            .unwrap()
            .replace("bundle.console", "bundle.c0nsole")
            .into_bytes();
    });
    fails_with(&r, &[&format!("member `{junit}`: changed (signed: sha256")]);
}

#[test]
fn a_changed_evidence_file_fails_naming_it() {
    let r = bundled();
    tamper(&r, |list| {
        let m = list
            .iter_mut()
            .find(|(n, _, _)| n == "vm-guest-1-console.log")
            .unwrap();
        m.1.extend_from_slice(b"one more line\n");
    });
    fails_with(&r, &["member `vm-guest-1-console.log`: changed"]);
}

#[test]
fn a_missing_member_fails_naming_it() {
    let r = bundled();
    let log = format!("{}.console.log", r.stem);
    tamper(&r, |list| list.retain(|(n, _, _)| *n != log));
    fails_with(&r, &[&format!("member `{log}`: missing")]);
    let out = run(&[
        "verify",
        s(&r.bundle()),
        "--pubkey",
        s(&r.public),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["kind"], "bundle");
    assert_eq!(doc["members"], serde_json::json!([log]));
    assert!(doc["error"].as_str().unwrap().contains("missing"), "{doc}");
}

#[test]
fn an_extra_member_fails_naming_it() {
    let r = bundled();
    tamper(&r, |list| {
        list.push((
            "notes.txt".into(),
            b"added later\n".to_vec(),
            tar::EntryType::Regular,
        ))
    });
    fails_with(&r, &["member `notes.txt`: extra"]);
}

/// The manifest's statement, re-signed with `key` into a new envelope.
fn resigned_envelope(envelope: &[u8], key: &Path) -> Vec<u8> {
    use base64::Engine;
    let envelope: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let material = spinup_smoke::sign::keys::load_signing_key(key).unwrap();
    render(&spinup_smoke::report::dsse::envelope(&statement, &material)).into_bytes()
}

#[test]
fn a_manifest_signed_by_another_key_fails() {
    let r = bundled();
    let (other_key, _) = keypair(r.dir.path(), "other");
    tamper(&r, |list| {
        let m = list
            .iter_mut()
            .find(|(n, _, _)| n == "manifest.intoto.json")
            .unwrap();
        m.1 = resigned_envelope(&m.1, &other_key);
    });
    fails_with(&r, &["manifest.intoto.json: unknown key: signed by key id"]);
    // Without a pinned key it is not the transcript's signer either.
    let out = run(&["verify", s(&r.bundle()), "--trust-embedded-key"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("manifest.intoto.json: signed by key id")
            && stderr.contains("not by the transcript's signer"),
        "{stderr}"
    );
}

#[test]
fn a_tampered_manifest_fails() {
    // The readable manifest changed to match a changed member.
    let r = bundled();
    let junit = format!("{}.junit.xml", r.stem);
    tamper(&r, |list| {
        let changed = b"<testsuites/>\n".to_vec();
        let digest = spinup_smoke::digest::sha256_bytes(&changed);
        let m = list
            .iter_mut()
            .find(|(n, _, _)| *n == "manifest.json")
            .unwrap();
        let mut manifest: serde_json::Value = serde_json::from_slice(&m.1).unwrap();
        for entry in manifest["members"].as_array_mut().unwrap() {
            if entry["name"] == junit.as_str() {
                entry["sha256"] = digest.trim_start_matches("sha256:").into();
                entry["size"] = (changed.len() as u64).into();
            }
        }
        m.1 = render(&manifest).into_bytes();
        let j = list.iter_mut().find(|(n, _, _)| *n == junit).unwrap();
        j.1 = changed;
    });
    fails_with(
        &r,
        &["manifest.json is not the manifest manifest.intoto.json signs"],
    );

    // The signed statement itself changed: the signature no longer holds.
    let r = bundled();
    tamper(&r, |list| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let m = list
            .iter_mut()
            .find(|(n, _, _)| n == "manifest.intoto.json")
            .unwrap();
        let mut envelope: serde_json::Value = serde_json::from_slice(&m.1).unwrap();
        let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
        let forged = String::from_utf8(payload)
            .unwrap()
            .replacen("\"size\":", "\"size\":1", 1);
        envelope["payload"] = b64.encode(forged).into();
        m.1 = render(&envelope).into_bytes();
    });
    fails_with(&r, &["manifest.intoto.json: bad signature"]);
}

#[test]
fn a_member_path_with_dot_dot_is_refused_naming_it() {
    let r = bundled();
    tamper(&r, |list| {
        list.push((
            "../evil.txt".into(),
            b"outside\n".to_vec(),
            tar::EntryType::Regular,
        ))
    });
    fails_with(&r, &["member `../evil.txt`: unsafe path: a path with `..`"]);
    assert!(!r.dir.path().parent().unwrap().join("evil.txt").exists());
}

#[test]
fn a_symlink_or_absolute_member_is_refused_naming_it() {
    let r = bundled();
    tamper(&r, |list| {
        list.push(("passwd".into(), Vec::new(), tar::EntryType::Symlink))
    });
    fails_with(&r, &["member `passwd`: a symbolic link"]);
    let r = bundled();
    tamper(&r, |list| {
        list.push((
            "/tmp/absolute.txt".into(),
            b"x".to_vec(),
            tar::EntryType::Regular,
        ))
    });
    fails_with(
        &r,
        &["member `/tmp/absolute.txt`: unsafe path: an absolute path"],
    );
}

#[test]
fn a_changed_transcript_fails_naming_it() {
    let r = bundled();
    let name = format!("{}.json", r.stem);
    tamper(&r, |list| {
        let m = list.iter_mut().find(|(n, _, _)| *n == name).unwrap();
        m.1 = String::from_utf8(m.1.clone())
            .unwrap()
            .replacen("\"WARNING\"", "\"SUCCESS\"", 1)
            .into_bytes();
    });
    fails_with(&r, &[&format!("member `{name}`: changed")]);
}

#[test]
fn bundle_refuses_another_key_an_ephemeral_run_and_no_key() {
    let r = signed_run();
    let (other_key, _) = keypair(r.dir.path(), "other");
    let out = run(&["bundle", s(&r.transcript), "--key", s(&other_key)]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did not sign"), "{stderr}");
    assert!(stderr.contains("--key"), "{stderr}");

    let out = run(&["bundle", s(&r.transcript)]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no signing key"), "{stderr}");

    let out = run(&[
        "bundle",
        s(&r.artifacts().join(format!("{}.intoto.json", r.stem))),
        "--key",
        s(&r.key),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a transcript"), "{stderr}");

    // Without --out the bundle lands beside the transcript.
    let out = run(&["bundle", s(&r.transcript), "--key", s(&r.key)]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let default = r.artifacts().join(format!("{}.bundle.tar.gz", r.stem));
    let (code, stdout, stderr) = verify(&default, &r.public);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    // A run signed with an ephemeral key cannot be bundled by its signer.
    let eph = r.dir.path().join("eph");
    let out = run(&[
        "run",
        "--profile",
        "scenarios/selftest.toml",
        "--out",
        s(&eph),
        "--quiet",
    ]);
    assert!(out.status.code().is_some());
    let transcript = std::fs::read_dir(&eph)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".json") && !n.ends_with(".intoto.json")
        })
        .unwrap();
    let out = run(&["bundle", s(&transcript), "--key", s(&r.key)]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("EPHEMERAL"), "{stderr}");
}

#[test]
fn a_missing_set_file_or_a_symlinked_one_is_not_bundled() {
    let r = signed_run();
    let log = r.artifacts().join(format!("{}.console.log", r.stem));
    let outside = r.dir.path().join("outside.log");
    std::fs::write(&outside, "from outside the artifacts\n").unwrap();
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&outside, &log).unwrap();
    let out = run(&[
        "bundle",
        s(&r.transcript),
        "--key",
        s(&r.key),
        "--out",
        s(&r.bundle()),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a regular file"), "{stderr}");
    std::fs::remove_file(&log).unwrap();
    let out = run(&[
        "bundle",
        s(&r.transcript),
        "--key",
        s(&r.key),
        "--out",
        s(&r.bundle()),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(".console.log"), "{stderr}");
    assert!(!r.bundle().exists());
}

#[test]
fn verify_with_an_image_checks_the_digest_of_the_transcript_inside() {
    let r = bundled();
    let image = r.dir.path().join("image.raw");
    std::fs::write(&image, b"an image the run was not bound to").unwrap();
    let out = run(&[
        "verify",
        s(&r.bundle()),
        "--pubkey",
        s(&r.public),
        "--image",
        s(&image),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("member `{}.json`: digest mismatch", r.stem)),
        "{stderr}"
    );
}
