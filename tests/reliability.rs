//! The reliability suite: the binary under faults, each scenario held to the
//! same three promises. The run ends within its deadline plus a small grace
//! (never a hang); a transcript is written and verifies against the pinned
//! key (or, when the artifacts cannot be written, none of the set is
//! published and the error says so); the checks have the statuses the fault
//! calls for and the exit code follows (docs/exit-codes in README).
//!
//! Scenarios here: a service down, a port black-holed in a network
//! namespace of the test's own, slow HTTP headers and a slow body, a name
//! that does not resolve, an expired TLS certificate, a corrupt image,
//! SIGINT and SIGTERM mid-run, the global deadline, the artifacts directory
//! full, read-only and not a directory, and malformed profiles and targets.
//! Elsewhere, with the fixture they need: a dead resolver
//! (tests/cli.rs), a VM crashing mid-boot and a guest that never answers
//! (tests/vm.rs), an ssh target dropping mid-run (tests/ssh_host.rs).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Added to a scenario's deadline: process start, signing, writing. Wide on
/// purpose: the promise is "no hang", not a speed figure.
const GRACE: Duration = Duration::from_secs(6);

struct Workdir {
    dir: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
}

impl Workdir {
    fn new() -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("signer");
        let out = bin()
            .args(["keygen", "--out"])
            .arg(&prefix)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        Workdir {
            key: dir.path().join("signer.key"),
            public: dir.path().join("signer.pub"),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `profile` as `name`, runs it into `out/` and holds the run
    /// to the promises; returns the transcript.
    fn held(&self, name: &str, profile: &str, expect: &Expect) -> serde_json::Value {
        let profile = self.write(name, profile);
        let out = self.path("out");
        held_to(self, self.run_command(&profile, &out, &[]), &out, expect)
    }

    /// `spinup-smoke run` of `profile` into `out`, signed with the pinned
    /// key (`wrap` puts a command in front, such as `ip netns exec NS`).
    fn run_command(&self, profile: &Path, out: &Path, wrap: &[&str]) -> Command {
        let mut cmd = match wrap.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_spinup-smoke"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_spinup-smoke")),
        };
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env_remove("VALIDATION_TIMEOUT")
            .env_remove("SAFE_MODE")
            .env_remove("SPINUP_SIGNING_KEY")
            .args(["run", "--profile"])
            .arg(profile)
            .arg("--out")
            .arg(out)
            .arg("--key")
            .arg(&self.key);
        cmd
    }
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("SPINUP_SIGNING_KEY");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a scenario expects.
struct Expect<'a> {
    exit: i32,
    /// The run's own deadline: it must end within this plus [`GRACE`].
    within: Duration,
    overall: &'a str,
    /// (check id, status, words its `found` holds).
    checks: &'a [(&'a str, &'a str, &'a str)],
}

/// Runs `cmd` and holds the run to the three promises; returns the
/// transcript.
fn held_to(work: &Workdir, mut cmd: Command, out: &Path, expect: &Expect) -> serde_json::Value {
    let started = Instant::now();
    let output = cmd.output().unwrap();
    let took = started.elapsed();
    settle(work, output, took, out, expect)
}

fn settle(
    work: &Workdir,
    output: Output,
    took: Duration,
    out: &Path,
    expect: &Expect,
) -> serde_json::Value {
    let said = text(&output);
    assert!(
        took <= expect.within + GRACE,
        "the run took {took:?}, past its deadline {:?} plus {GRACE:?}:\n{said}",
        expect.within
    );
    assert_eq!(output.status.code(), Some(expect.exit), "{said}");
    let transcript =
        transcript_in(out).unwrap_or_else(|| panic!("no transcript in {}:\n{said}", out.display()));
    let verified = bin()
        .arg("verify")
        .arg(&transcript)
        .arg("--pubkey")
        .arg(&work.public)
        .output()
        .unwrap();
    assert_eq!(
        verified.status.code(),
        Some(0),
        "verify: {}",
        text(&verified)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&transcript).unwrap()).unwrap();
    assert_eq!(doc["overall_status"], expect.overall, "{said}");
    for (id, status, words) in expect.checks {
        let result = doc["validation_results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == *id)
            .unwrap_or_else(|| panic!("no {id} in the transcript:\n{said}"));
        assert_eq!(result["status"], *status, "{id}: {result}");
        let found = format!(
            "{} {} {}",
            result["expected"], result["found"], result["evidence"]
        )
        .to_lowercase();
        assert!(
            found.contains(&words.to_lowercase()),
            "{id} does not say `{words}`: {result}"
        );
    }
    doc
}

fn transcript_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("boot_transcript_")
                && name.ends_with(".json")
                && !name.ends_with(".intoto.json")
        })
}

fn check(id: &str, timeout: &str, body: &str) -> String {
    format!("[[check]]\nid = \"{id}\"\nphase = \"services\"\ntimeout = \"{timeout}\"\n{body}\n\n")
}

#[test]
fn a_service_that_is_down_fails_at_once() {
    let work = Workdir::new();
    let port = common::free_port();
    work.held(
        "down.toml",
        &check(
            "down.tcp",
            "3s",
            &format!("[check.tcp]\naddress = \"127.0.0.1:{port}\""),
        ),
        &Expect {
            exit: 1,
            within: Duration::from_secs(3),
            overall: "FAILURE",
            checks: &[("down.tcp", "FAIL", "refused")],
        },
    );
}

/// The validator in a network namespace whose loopback drops every SYN to
/// one port: tcp and http checks end at their deadline, not the kernel's
/// connect timeout.
#[test]
#[cfg_attr(
    missing = "netns",
    ignore = "needs root and ip (iproute2) for a network namespace: ./scripts/setup.sh installs iproute2"
)]
fn a_black_holed_port_fails_tcp_and_http_at_their_deadline() {
    let repo = common::repo();
    if common::detect::Server::Netns.missing(&repo).is_some() {
        common::missing(common::detect::Server::Netns)
    }
    let ns = format!("ss-rel-{}", std::process::id());
    let sh = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", text(&out));
    };
    sh(&["netns", "add", &ns]);
    let _gone = common::OnDrop::new(|| {
        let _ = Command::new("ip").args(["netns", "delete", &ns]).output();
    });
    sh(&["-n", &ns, "link", "set", "lo", "up"]);
    sh(&[
        "netns",
        "exec",
        &ns,
        "nft",
        "add table inet hole; add chain inet hole input { type filter hook input priority 0; policy accept; }; add rule inet hole input tcp dport 9 drop",
    ]);
    let work = Workdir::new();
    let profile = work.write(
        "hole.toml",
        &format!(
            "{}{}",
            check("hole.tcp", "2s", "[check.tcp]\naddress = \"127.0.0.1:9\""),
            check(
                "hole.http",
                "2s",
                "[check.http]\nurl = \"http://127.0.0.1:9/health\""
            )
        ),
    );
    let out = work.path("out");
    held_to(
        &work,
        work.run_command(&profile, &out, &["ip", "netns", "exec", &ns]),
        &out,
        &Expect {
            exit: 1,
            within: Duration::from_secs(2),
            overall: "FAILURE",
            checks: &[
                ("hole.tcp", "FAIL", "deadline"),
                ("hole.http", "FAIL", "deadline"),
            ],
        },
    );
}

/// A server that accepts and then answers nothing for a minute (slow
/// headers), and one that sends its headers and then a byte at a time
/// (slow body): both fail at the check's deadline.
#[test]
fn slow_http_headers_and_a_slow_body_fail_at_the_deadline() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let headers = runtime.block_on(spinup_smoke::checks::testutil::serve(
        spinup_smoke::checks::testutil::http_response("200 OK", "text/plain", "late"),
        Duration::from_secs(60),
        None,
    ));
    let body = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n")
                        .await;
                    for _ in 0..1000 {
                        if s.write_all(b"x").await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                });
            }
        });
        addr
    });
    let work = Workdir::new();
    work.held(
        "slow.toml",
        &format!(
            "{}{}",
            check(
                "slow.headers",
                "2s",
                &format!("[check.http]\nurl = \"http://{headers}/\"\nbody_contains = [\"late\"]")
            ),
            check(
                "slow.body",
                "2s",
                &format!("[check.http]\nurl = \"http://{body}/\"\nbody_contains = [\"xxxx\"]")
            )
        ),
        &Expect {
            exit: 1,
            within: Duration::from_secs(2),
            overall: "FAILURE",
            checks: &[
                ("slow.headers", "FAIL", "before the deadline"),
                ("slow.body", "FAIL", "before the deadline"),
            ],
        },
    );
    runtime.shutdown_background();
}

/// A name under `.invalid` (RFC 6761) never resolves: a check that wants it
/// to fails within its deadline, whatever the resolver does.
#[test]
fn a_name_that_does_not_resolve_fails_within_the_deadline() {
    let work = Workdir::new();
    work.held(
        "dns.toml",
        &check(
            "dns.missing",
            "3s",
            "[check.dns]\nname = \"gitlab.rave-p6.invalid\"",
        ),
        &Expect {
            exit: 1,
            within: Duration::from_secs(3),
            overall: "FAILURE",
            checks: &[("dns.missing", "FAIL", "gitlab.rave-p6.invalid")],
        },
    );
}

/// A TLS server whose certificate ended ten days ago, signed by a CA the
/// check trusts: FAIL, saying how long ago it expired.
#[test]
fn an_expired_certificate_fails_saying_when_it_expired() {
    use chrono::Datelike;
    let ca = spinup_smoke::checks::testutil::ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = chrono::Utc::now();
    let (start, end) = (
        now - chrono::Duration::days(40),
        now - chrono::Duration::days(10),
    );
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(spinup_smoke::checks::testutil::serve(
        spinup_smoke::checks::testutil::http_response("200 OK", "text/plain", "ok"),
        Duration::ZERO,
        Some((cert.der().to_vec(), key.serialize_der())),
    ));
    let work = Workdir::new();
    let ca_file = work.write("ca.pem", &ca.pem);
    work.held(
        "tls.toml",
        &check(
            "tls.expired",
            "5s",
            &format!(
                "[check.tls]\naddress = \"{addr}\"\nserver_name = \"localhost\"\nca_file = \"{}\"\nmin_days_valid = 14",
                ca_file.display()
            ),
        ),
        &Expect {
            exit: 1,
            within: Duration::from_secs(5),
            overall: "FAILURE",
            checks: &[("tls.expired", "FAIL", "expired 10 days ago")],
        },
    );
    runtime.shutdown_background();
}

/// A qcow2 image cut short: the image check fails naming qemu-img's
/// complaint.
#[test]
#[cfg_attr(
    missing = "qemu",
    ignore = "needs qemu-img: ./scripts/setup.sh installs QEMU"
)]
fn a_corrupt_image_fails_the_image_check() {
    let work = Workdir::new();
    let image = work.path("rave.qcow2");
    let made = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg("64M")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    // Keep the header's magic, lose its tables.
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..512]).unwrap();
    work.held(
        "image.toml",
        &check(
            "image.corrupt",
            "20s",
            &format!(
                "[check.image]\npath = \"{}\"\nformat = \"qcow2\"\nconsistency_check = true",
                image.display()
            ),
        ),
        &Expect {
            exit: 1,
            within: Duration::from_secs(20),
            overall: "FAILURE",
            checks: &[("image.corrupt", "FAIL", "qemu-img")],
        },
    );
}

/// SIGINT and SIGTERM while a check runs: exit 3, a signed ABORTED
/// transcript, the finished check kept, the running one ABORTED.
#[test]
fn sigint_and_sigterm_mid_run_end_in_a_signed_aborted_transcript() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let work = Workdir::new();
        let marker = work.path("started");
        let profile = work.write(
            "slow.toml",
            &format!(
                "[[check]]\nid = \"quick.pass\"\nphase = \"config\"\n[check.command]\nrun = [\"true\"]\n\n{}",
                check(
                    "slow.sleep",
                    "60s",
                    &format!(
                        "[check.command]\nscript = \"touch {}; exec sleep 60\"",
                        marker.display()
                    )
                )
            ),
        );
        let out = work.path("out");
        let started = Instant::now();
        let child = work
            .run_command(&profile, &out, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while !marker.exists() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(marker.exists(), "the slow check never started");
        let sent = Instant::now();
        // SAFETY: plain signal delivery to our own child.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let output = child.wait_with_output().unwrap();
        settle(
            &work,
            output,
            sent.elapsed(),
            &out,
            &Expect {
                exit: 3,
                within: Duration::ZERO,
                overall: "ABORTED",
                checks: &[("quick.pass", "PASS", ""), ("slow.sleep", "ABORTED", "")],
            },
        );
    }
}

/// VALIDATION_TIMEOUT ends the run at the global deadline, whatever its
/// checks' own timeouts say.
#[test]
fn the_global_deadline_aborts_the_run_on_time() {
    let work = Workdir::new();
    let profile = work.write(
        "slow.toml",
        &check(
            "slow.sleep",
            "60s",
            "[check.command]\nrun = [\"sleep\", \"60\"]",
        ),
    );
    let out = work.path("out");
    let mut cmd = work.run_command(&profile, &out, &[]);
    cmd.env("VALIDATION_TIMEOUT", "2");
    held_to(
        &work,
        cmd,
        &out,
        &Expect {
            exit: 3,
            within: Duration::from_secs(2),
            overall: "ABORTED",
            checks: &[("slow.sleep", "ABORTED", "")],
        },
    );
}

/// The files a failed publication may leave in `dir`: none of the set, and
/// no temporary file either.
fn nothing_published(dir: &Path, said: &str) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}\n{said}",
        dir.display()
    );
}

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", text(&out));
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// The artifacts directory full (a 16 KiB tmpfs, filled): the checks are
/// judged, exit 4, the error names the directory, and nothing of the set
/// is left there. Read-only: refused before anything runs (exit 2).
#[test]
#[cfg_attr(
    missing = "netns",
    ignore = "needs root to mount a small tmpfs: run the tests as root"
)]
fn a_full_or_read_only_artifacts_directory_publishes_nothing() {
    let repo = common::repo();
    if common::detect::Server::Netns.missing(&repo).is_some() {
        common::missing(common::detect::Server::Netns)
    }
    for (options, exit) in [("size=16k", 4), ("ro,size=1m", 2)] {
        let work = Workdir::new();
        let out = work.path("out");
        let _mount = Mount::tmpfs(&out, options);
        if exit == 4 {
            // Fill it, leaving less than one transcript's room.
            let mut filler = std::fs::File::create(out.join("filler")).unwrap();
            let _ = filler.write_all(&vec![0u8; 15 * 1024]);
            drop(filler);
        }
        let profile = work.write(
            "checks.toml",
            &check("some.pass", "5s", "[check.command]\nrun = [\"true\"]"),
        );
        let output = work.run_command(&profile, &out, &[]).output().unwrap();
        let said = text(&output);
        assert_eq!(output.status.code(), Some(exit), "{options}: {said}");
        assert!(
            said.contains(&out.display().to_string()),
            "{options}: {said}"
        );
        if exit == 4 {
            assert!(said.contains("PASS    some.pass"), "judged: {said}");
            assert!(
                said.contains(&format!("cannot write artifacts to {}", out.display())),
                "{said}"
            );
            std::fs::remove_file(out.join("filler")).unwrap();
        } else {
            assert!(said.contains("not writable"), "{said}");
            assert!(!said.contains("PASS    some.pass"), "ran anyway: {said}");
        }
        nothing_published(&out, &said);
    }
}

/// `--out` under a plain file: refused before anything runs (exit 2),
/// naming the path.
#[test]
fn an_artifacts_path_under_a_file_is_refused_before_the_run() {
    let work = Workdir::new();
    let file = work.write("a-file", "not a directory\n");
    let profile = work.write(
        "checks.toml",
        &check("some.pass", "5s", "[check.command]\nrun = [\"true\"]"),
    );
    let output = work
        .run_command(&profile, &file.join("out"), &[])
        .output()
        .unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains(&file.display().to_string()), "{said}");
    assert!(!said.contains("PASS    some.pass"), "ran anyway: {said}");
}

/// Malformed profiles and targets: exit 2 at once, naming the file, the
/// line of the fault and the field; never a panic.
#[test]
fn malformed_profiles_and_targets_exit_2_naming_file_line_and_field() {
    let good =
        "[[check]]\nid = \"a.pass\"\nphase = \"services\"\n[check.command]\nrun = [\"true\"]\n";
    // (what, profile, target, the words the error holds)
    let cases: &[(&str, &str, Option<&str>, &[&str])] = &[
        (
            "not TOML",
            "[[check]\nid = \"x\"\n",
            None,
            &["bad.toml:1"],
        ),
        (
            "an unknown kind",
            "[[check]]\nid = \"a.x\"\nphase = \"services\"\n[check.telepathy]\nhow = 1\n",
            None,
            &["bad.toml:4", "telepathy"],
        ),
        (
            "a bad duration",
            "[[check]]\nid = \"a.x\"\nphase = \"services\"\ntimeout = \"soon\"\n[check.command]\nrun = [\"true\"]\n",
            None,
            &["bad.toml:4", "timeout"],
        ),
        (
            "an unknown phase",
            "[[check]]\nid = \"a.x\"\nphase = \"lunch\"\n[check.command]\nrun = [\"true\"]\n",
            None,
            &["bad.toml:3", "phase"],
        ),
        (
            "needs naming no check",
            "[[check]]\nid = \"a.x\"\nphase = \"services\"\nneeds = [\"a.ghost\"]\n[check.command]\nrun = [\"true\"]\n",
            None,
            &["bad.toml:4", "a.ghost"],
        ),
        (
            "an unknown variable",
            "[[check]]\nid = \"a.x\"\nphase = \"services\"\n[check.tcp]\naddress = \"${nowhere.addr}\"\n",
            None,
            &["bad.toml:5", "nowhere.addr"],
        ),
        (
            "a target host table with an inline key",
            good,
            Some("[host]\ntransport = \"ssh\"\naddress = \"p6.example.org\"\nuser = \"rave\"\nidentity = \"-----BEGIN OPENSSH PRIVATE KEY-----\"\nhost_key = \"SHA256:abc\"\n"),
            &["target.toml:5", "identity"],
        ),
        (
            "a target with an unknown table",
            good,
            Some("[varz]\nx = 1\n"),
            &["target.toml:1", "varz"],
        ),
    ];
    for (what, profile, target, words) in cases {
        let work = Workdir::new();
        let profile_path = work.write("bad.toml", profile);
        let out = work.path("out");
        let mut cmd = work.run_command(&profile_path, &out, &[]);
        if let Some(target) = target {
            cmd.arg("--target").arg(work.write("target.toml", target));
        }
        let started = Instant::now();
        let output = cmd.output().unwrap();
        let said = text(&output);
        assert!(
            started.elapsed() < GRACE,
            "{what}: took {:?}",
            started.elapsed()
        );
        assert_eq!(output.status.code(), Some(2), "{what}: {said}");
        assert!(!said.contains("panicked"), "{what}: {said}");
        for word in *words {
            assert!(
                said.contains(word),
                "{what}: the error does not say `{word}`:\n{said}"
            );
        }
    }
}
