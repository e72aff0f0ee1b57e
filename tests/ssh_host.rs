//! Checks on a host reached over ssh, against a real sshd that each test
//! starts in a network namespace of its own (reached through a veth pair):
//! commands, files and processes read there, one handshake per run, host
//! key pins, a refused identity, a black-holed address, a command killed on
//! the remote side at its deadline, a dropped connection, a forward to a
//! service listening only on the namespace's loopback.
//!
//! `ip netns exec` bind-mounts `/etc/netns/<name>/*` over `/etc/`: the
//! namespace's `/etc/hostname` says `rave-test-host` (a file only the ssh
//! host sees), and its `/etc/passwd` adds sshd's privilege separation user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::detect::{self, Server};
use spinup_smoke::host::{Host, HostKeyPin, Identity, SshConfig, SshHost};
use spinup_smoke::os::CommandSpec;

static NEXT: AtomicU32 = AtomicU32::new(1);

/// An sshd in a network namespace, listening on `address:22`.
struct Sshd {
    ns: String,
    dir: tempfile::TempDir,
    address: String,
    sshd: Child,
}

fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn keygen(path: &Path) {
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &path.display().to_string(),
        ],
    );
}

/// The fingerprint ssh-keygen prints for a public key file.
fn fingerprint(public: &Path) -> String {
    let out = run("ssh-keygen", &["-lf", &public.display().to_string()]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

impl Sshd {
    fn start() -> Sshd {
        let repo = common::repo();
        let Some(sshd_bin) = detect::sshd(&repo) else {
            common::missing(Server::Sshd)
        };
        if detect::Server::Netns.missing(&repo).is_some() {
            common::missing(Server::Netns)
        }
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{}{n}", pid % 100_000);
        let ns = format!("ss-ssh-{tag}");
        let subnet = (100 + pid % 100, n % 250);
        let host_ip = format!("10.{}.{}.1", subnet.0, subnet.1);
        let address = format!("10.{}.{}.2", subnet.0, subnet.1);
        let (outer, inner) = (format!("vh{tag}"), format!("vn{tag}"));
        run("ip", &["netns", "add", &ns]);
        run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        run(
            "ip",
            &[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ],
        );
        run("ip", &["link", "set", &inner, "netns", &ns]);
        run(
            "ip",
            &["addr", "add", &format!("{host_ip}/30"), "dev", &outer],
        );
        run("ip", &["link", "set", &outer, "up"]);
        run(
            "ip",
            &[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/30"),
                "dev",
                &inner,
            ],
        );
        run("ip", &["-n", &ns, "link", "set", &inner, "up"]);
        let etc = PathBuf::from("/etc/netns").join(&ns);
        std::fs::create_dir_all(&etc).unwrap();
        // root logs in with a plain /bin/sh there: this machine's
        // ~/.bashrc (pyenv and the like) has no business in the tests.
        let passwd: String = std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .map(|l| match l.strip_prefix("root:") {
                Some(rest) => {
                    let fields: Vec<&str> = rest.rsplitn(2, ':').collect();
                    format!("root:{}:/bin/sh\n", fields.last().unwrap())
                }
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(
            etc.join("passwd"),
            format!("{passwd}sshd:x:74:65534:sshd privsep:/run/sshd:/usr/sbin/nologin\n"),
        )
        .unwrap();
        std::fs::write(etc.join("hostname"), "rave-test-host\n").unwrap();
        // sshd's privilege separation directory (compiled in).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("hostkey"));
        keygen(&d.join("id"));
        keygen(&d.join("other_id"));
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "ListenAddress {address}:22\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nMaxStartups 100\nLogLevel INFO\n",
                d.join("hostkey").display(),
                d.join("sshd.pid").display(),
                d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let sshd = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(&sshd_bin)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let server = Sshd {
            ns,
            dir,
            address,
            sshd,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while !server.log().contains("Server listening") {
            assert!(
                Instant::now() < until,
                "sshd did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    fn handshakes(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    fn host_key(&self) -> String {
        fingerprint(&self.path("hostkey.pub"))
    }

    /// Runs a command inside the namespace.
    fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()
            .unwrap()
    }

    /// Kills sshd's per-connection processes (the session ends, the
    /// listener stays).
    fn drop_connections(&self) {
        let out = run("pgrep", &["-P", &self.sshd.id().to_string()]);
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).output();
        }
    }

    fn config(&self, port: u16, key: &str, pin: HostKeyPin) -> SshConfig {
        SshConfig {
            address: self.address.clone(),
            port,
            user: "root".into(),
            identity_name: "host_ssh_key".into(),
            identity: Identity::File(self.path(key)),
            pin,
            sudo: false,
            connect_timeout: Duration::from_secs(5),
            via_host: false,
        }
    }

    /// A target for this host (`host_table` lines added to `[host]`).
    fn target(&self, host_table: &str) -> PathBuf {
        let path = self.path("target.toml");
        std::fs::write(
            &path,
            format!(
                "name = \"ssh-test\"\n[secrets]\nhost_ssh_key = {{ file = \"{}\" }}\n\n[host]\ntransport = \"ssh\"\naddress = \"{}\"\nuser = \"root\"\nidentity = {{ secret = \"host_ssh_key\" }}\nconnect_timeout = \"5s\"\n{host_table}\n",
                self.path("id").display(),
                self.address
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        // Whatever still runs in the namespace was started through this sshd.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).output();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .output();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.ns));
    }
}

/// Runs the validator; returns the output, the transcript and how long it took.
fn validate(target: &Path, profile: &str, dir: &Path) -> (Output, serde_json::Value, Duration) {
    validate_with(target, profile, dir, &[])
}

/// `validate` with more arguments for `run` (`--jobs 24`).
fn validate_with(
    target: &Path,
    profile: &str,
    dir: &Path,
    extra: &[&str],
) -> (Output, serde_json::Value, Duration) {
    let profile_path = dir.join("profile.toml");
    std::fs::write(&profile_path, profile).unwrap();
    let out_dir = dir.join("out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"))
        .arg("run")
        .args(extra)
        .arg("--target")
        .arg(target)
        .arg("--profile")
        .arg(&profile_path)
        .arg("--out")
        .arg(&out_dir)
        .env("NO_COLOR", "1")
        .env_remove("SPINUP_SIGNING_KEY")
        .output()
        .unwrap();
    let took = started.elapsed();
    if !out_dir.is_dir() {
        panic!("no artifacts: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out, transcript_in(&out_dir), took)
}

fn transcript_in(out_dir: &Path) -> serde_json::Value {
    let transcript = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("boot_transcript_")
                && name.ends_with(".json")
                && !name.ends_with(".intoto.json")
        })
        .expect("a transcript");
    serde_json::from_str(&std::fs::read_to_string(transcript).unwrap()).unwrap()
}

fn result(doc: &serde_json::Value, id: &str) -> serde_json::Value {
    doc["validation_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {doc}"))
        .clone()
}

fn found(r: &serde_json::Value) -> String {
    r["found"].as_str().unwrap_or_default().to_string()
}

/// Commands, a file, a process and the memory in use (read from inside,
/// through the connection) on the ssh host pass and prove they ran there;
/// six checks make one handshake, and the connection is closed
/// when the run ends.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn checks_run_on_the_ssh_host_over_one_connection() {
    let sshd = Sshd::start();
    let target = sshd.target(&format!("host_key = \"{}\"", sshd.host_key()));
    let profile = format!(
        r#"[profile]
name = "remote"
[[check]]
id = "remote.hostname"
phase = "services"
[check.command]
run = ["cat", "/etc/hostname"]
stdout_contains = ["rave-test-host"]

[[check]]
id = "remote.interfaces"
phase = "services"
[check.command]
script = "cat /proc/net/dev"
stdout_contains = ["vn"]

[[check]]
id = "remote.file"
phase = "services"
[check.file]
path = "/etc/hostname"
kind = "file"
owner = "root"
contains = ["rave-test-host"]

[[check]]
id = "remote.ports"
phase = "services"
[check.ports]
listening = [22]
allowed = [22]

[[check]]
id = "remote.process"
phase = "services"
[check.process]
name = "sshd"
cmdline_contains = "{}"

[[check]]
id = "remote.memory"
phase = "performance"
[check.memory]
meminfo = true
max_gib = 100000
"#,
        sshd.path("sshd_config").display()
    );
    let (out, doc, _) = validate(&target, &profile, sshd.dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = format!("ssh root@{}:22", sshd.address);
    for id in [
        "remote.hostname",
        "remote.interfaces",
        "remote.file",
        "remote.ports",
        "remote.process",
        "remote.memory",
    ] {
        let r = result(&doc, id);
        assert_eq!(r["status"], "PASS", "{r}");
        assert_eq!(r["host"], host, "{r}");
    }
    assert!(
        stdout.contains(&host),
        "the console names the host: {stdout}"
    );
    assert_eq!(
        sshd.handshakes(),
        1,
        "one connection per run:\n{}",
        sshd.log()
    );
    // The master is closed when the run ends.
    let until = Instant::now() + Duration::from_secs(5);
    while !sshd.log().contains("Disconnected from user root") {
        assert!(
            Instant::now() < until,
            "the connection outlived the run:\n{}",
            sshd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `[hosts.NAME]` claims a profile: its checks run there, the others on
/// this machine (no `[host]`). Its key comes from an environment variable.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn a_named_host_runs_the_profiles_it_claims() {
    let sshd = Sshd::start();
    let target = sshd.path("target.toml");
    std::fs::write(
        &target,
        format!(
            "[secrets]\nguest_key = {{ env = \"SPINUP_SMOKE_TEST_GUEST_KEY\" }}\n[hosts.guest]\ntransport = \"ssh\"\naddress = \"{}\"\nuser = \"root\"\nidentity = {{ secret = \"guest_key\" }}\nhost_key = \"{}\"\nprofiles = [\"remote\"]\n",
            sshd.address,
            sshd.host_key()
        ),
    )
    .unwrap();
    let key = std::fs::read_to_string(sshd.path("id")).unwrap();
    let dir = sshd.dir.path();
    std::fs::write(
        dir.join("here.toml"),
        "[profile]\nname = \"here\"\n[[check]]\nid = \"here.hostname\"\nphase = \"services\"\n[check.command]\nrun = [\"cat\", \"/etc/hostname\"]\nstdout_not_contains = [\"rave-test-host\"]\n",
    )
    .unwrap();
    let remote = "[profile]\nname = \"remote\"\n[[check]]\nid = \"remote.hostname\"\nphase = \"services\"\n[check.command]\nrun = [\"cat\", \"/etc/hostname\"]\nstdout_contains = [\"rave-test-host\"]\n";
    std::fs::write(dir.join("remote.toml"), remote).unwrap();
    let out_dir = dir.join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"))
        .args(["run", "--target"])
        .arg(&target)
        .arg("--profile")
        .arg(dir.join("here.toml"))
        .arg("--profile")
        .arg(dir.join("remote.toml"))
        .arg("--out")
        .arg(&out_dir)
        .env("NO_COLOR", "1")
        .env("SPINUP_SMOKE_TEST_GUEST_KEY", &key)
        .env_remove("SPINUP_SIGNING_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    let out = out.wait_with_output().unwrap();
    // The key from the environment lived in a private directory of the
    // run, removed at its end.
    let private = format!("spinup-ssh-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&private))
        .collect();
    assert!(
        left.is_empty(),
        "the private directory outlived the run: {left:?}"
    );
    let transcript_text = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    let key_body = key.lines().nth(1).unwrap();
    assert!(
        !transcript_text.contains(key_body),
        "the key reached an artifact"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = transcript_in(&out_dir);
    assert_eq!(result(&doc, "here.hostname")["host"], "local");
    assert_eq!(
        result(&doc, "remote.hostname")["host"],
        format!("ssh root@{}:22", sshd.address)
    );
}

/// A pinned fingerprint or a known_hosts file that does not match fails
/// every check with both fingerprints; trust on first use records the key.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn a_host_key_that_does_not_match_fails_showing_both_fingerprints() {
    let sshd = Sshd::start();
    let real = sshd.host_key();
    let wrong = fingerprint(&sshd.path("other_id.pub"));
    let profile = "[[check]]\nid = \"remote.a\"\nphase = \"services\"\n[check.command]\nrun = [\"true\"]\n\n[[check]]\nid = \"remote.b\"\nphase = \"services\"\n[check.command]\nrun = [\"true\"]\n";
    let endpoint = format!("{}:22", sshd.address);

    let target = sshd.target(&format!("host_key = \"{wrong}\""));
    let (out, doc, _) = validate(&target, profile, sshd.dir.path());
    assert_eq!(out.status.code(), Some(1));
    for id in ["remote.a", "remote.b"] {
        let r = result(&doc, id);
        assert_eq!(r["status"], "FAIL", "{r}");
        assert!(
            found(&r).contains(&format!(
                "host key mismatch: expected {wrong}, {endpoint} presented {real} (ssh-ed25519)"
            )),
            "{r}"
        );
    }
    assert_eq!(sshd.handshakes(), 0, "{}", sshd.log());

    // A known_hosts file holding another key for the host.
    let other_pub = std::fs::read_to_string(sshd.path("other_id.pub")).unwrap();
    let key = other_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(
        sshd.path("p6.known_hosts"),
        format!("{} {key}\n", sshd.address),
    )
    .unwrap();
    let target = sshd.target("known_hosts = \"p6.known_hosts\"");
    let (_, doc, _) = validate(&target, profile, sshd.dir.path());
    let r = result(&doc, "remote.a");
    assert_eq!(r["status"], "FAIL", "{r}");
    assert!(
        found(&r).contains(&format!(
            "host key mismatch: expected {wrong} (ssh-ed25519), {endpoint} presented {real} (ssh-ed25519)"
        )),
        "{r}"
    );

    // Trust on first use: the key is recorded, the next run checks it.
    let target = sshd.target("known_hosts = \"first.known_hosts\"\ntrust_on_first_use = true");
    let (out, doc, _) = validate(&target, profile, sshd.dir.path());
    assert_eq!(out.status.code(), Some(0), "{doc}");
    let recorded = std::fs::read_to_string(sshd.path("first.known_hosts")).unwrap();
    assert!(recorded.contains("ssh-ed25519"), "{recorded}");
    let target = sshd.target("known_hosts = \"first.known_hosts\"");
    let (out, _, _) = validate(&target, profile, sshd.dir.path());
    assert_eq!(out.status.code(), Some(0));
}

/// A key the host does not accept: the checks fail saying authentication
/// was refused, naming the identity and the user.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn a_refused_identity_fails_saying_authentication_was_refused() {
    let sshd = Sshd::start();
    let target = sshd.target(&format!("host_key = \"{}\"", sshd.host_key()));
    let text = std::fs::read_to_string(&target).unwrap().replace(
        &sshd.path("id").display().to_string(),
        &sshd.path("other_id").display().to_string(),
    );
    std::fs::write(&target, text).unwrap();
    let profile =
        "[[check]]\nid = \"remote.a\"\nphase = \"services\"\n[check.command]\nrun = [\"true\"]\n";
    let (out, doc, _) = validate(&target, profile, sshd.dir.path());
    assert_eq!(out.status.code(), Some(1));
    let r = result(&doc, "remote.a");
    assert_eq!(r["status"], "FAIL", "{r}");
    assert!(
        found(&r).contains("authentication was refused: the host did not accept identity `host_ssh_key` for user `root`"),
        "{r}"
    );
}

/// A black-holed address (the namespace drops its SYNs): the checks fail at
/// their deadline, their dependents are skipped, and the run ends promptly.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn an_unreachable_host_fails_at_the_deadline_and_skips_dependents() {
    let sshd = Sshd::start();
    let drop_rule = sshd.exec(&[
        "nft",
        "add table inet blackhole; add chain inet blackhole input { type filter hook input priority 0; policy accept; }; add rule inet blackhole input tcp dport 2222 drop",
    ]);
    assert!(drop_rule.status.success(), "{drop_rule:?}");
    let target = sshd.target(&format!("port = 2222\nhost_key = \"{}\"", sshd.host_key()));
    let profile = "[[check]]\nid = \"remote.a\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.command]\nrun = [\"true\"]\n\n[[check]]\nid = \"remote.b\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.command]\nrun = [\"true\"]\n\n[[check]]\nid = \"remote.after\"\nphase = \"services\"\nneeds = [\"remote.a\"]\n[check.command]\nrun = [\"true\"]\n";
    let (out, doc, took) = validate(&target, profile, sshd.dir.path());
    assert_eq!(out.status.code(), Some(1));
    for id in ["remote.a", "remote.b"] {
        let r = result(&doc, id);
        assert_eq!(r["status"], "FAIL", "{r}");
        assert!(found(&r).contains("no answer"), "{r}");
        let ms = r["duration_ms"].as_u64().unwrap();
        assert!((1500..6000).contains(&ms), "{id} took {ms} ms: {r}");
    }
    let r = result(&doc, "remote.after");
    assert_eq!(r["status"], "SKIP", "{r}");
    // A wide bound: this is about not hanging.
    assert!(took < Duration::from_secs(15), "the run took {took:?}");
}

/// A command outliving its deadline is killed on the remote side too.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn a_remote_command_outliving_its_deadline_is_killed_there() {
    let sshd = Sshd::start();
    let marker = format!("47{}.25", std::process::id());
    let target = sshd.target(&format!("host_key = \"{}\"", sshd.host_key()));
    let profile = format!(
        "[[check]]\nid = \"remote.slow\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.command]\nscript = \"sleep {marker}; echo never\"\n"
    );
    let (out, doc, took) = validate(&target, &profile, sshd.dir.path());
    assert_eq!(out.status.code(), Some(1));
    let r = result(&doc, "remote.slow");
    assert_eq!(r["status"], "FAIL", "{r}");
    assert!(took < Duration::from_secs(12), "the run took {took:?}");
    // The remote `timeout` ends it a second after the deadline at most.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}")])
            .output()
            .unwrap();
        if !left.status.success() {
            break;
        }
        assert!(
            Instant::now() < until,
            "the remote command outlived its deadline: pids {}",
            String::from_utf8_lossy(&left.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A bad host table stops the run before anything is checked: exit 2 with
/// the file, line, field and fix.
#[test]
fn a_bad_host_table_exits_2_naming_file_line_field_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p6.toml");
    std::fs::write(
        &target,
        "[host]\ntransport = \"ssh\"\naddress = \"p6.example.org\"\nuser = \"rave\"\nidentity = \"/home/rave/.ssh/id_ed25519\"\nhost_key = \"SHA256:94yiotacdD7G+JCYpJrLurqnqIciJ+0LlKg9zIRQk6k\"\n",
    )
    .unwrap();
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        "[[check]]\nid = \"a.b\"\nphase = \"services\"\n[check.command]\nrun = [\"true\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"))
        .args(["run", "--target"])
        .arg(&target)
        .arg("--profile")
        .arg(&profile)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "p6.toml:5:",
        "host.identity",
        "the identity must be a secret",
        "host_ssh_key = { file = \"/home/rave/.ssh/id_ed25519\" }",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The connection dropped between commands and during one: it reconnects
/// once, the command passes, and its stderr says so.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn a_dropped_connection_is_reopened_once() {
    let sshd = Arc::new(Sshd::start());
    let host = SshHost::new(sshd.config(22, "id", HostKeyPin::Fingerprint(sshd.host_key())));
    rt().block_on(async {
        let exec = host.executor();
        let hostname = CommandSpec::new("cat", &["/etc/hostname"]);
        let out = exec.run(&hostname, soon(10)).await.unwrap();
        assert_eq!(out.stdout_text(), "rave-test-host\n", "{out:?}");
        assert_eq!(host.handshakes(), 1);

        sshd.drop_connections();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let out = exec.run(&hostname, soon(10)).await.unwrap();
        assert_eq!(out.stdout_text(), "rave-test-host\n", "{out:?}");
        assert!(out.stderr_text().contains("had dropped"), "{out:?}");
        assert_eq!(host.handshakes(), 2);

        // Dropped while a command runs: it runs once more on a new connection.
        let killer = {
            let sshd = sshd.clone();
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(700));
                sshd.drop_connections();
            })
        };
        let slow = CommandSpec::new("sh", &["-c", "sleep 1.5; echo done"]);
        let out = exec.run(&slow, soon(15)).await.unwrap();
        killer.await.unwrap();
        assert_eq!(out.exit_code, Some(0), "{out:?}");
        assert_eq!(out.stdout_text(), "done\n", "{out:?}");
        assert!(
            out.stderr_text().contains("dropped while the command ran"),
            "{out:?}"
        );
        assert_eq!(host.handshakes(), 3);
        host.close().await;
    });
}

/// The connection dropped and the host refuses new ones for a moment (an
/// sshd re-executing after a reload): the next command waits within the
/// connect timeout, reconnects, passes, and says how often it was refused.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn a_host_refusing_for_a_moment_is_reconnected_within_the_connect_timeout() {
    let sshd = Arc::new(Sshd::start());
    let host = SshHost::new(sshd.config(22, "id", HostKeyPin::Fingerprint(sshd.host_key())));
    rt().block_on(async {
        let exec = host.executor();
        let hostname = CommandSpec::new("cat", &["/etc/hostname"]);
        exec.run(&hostname, soon(10)).await.unwrap();

        let refuse = sshd.exec(&[
            "nft",
            "add table inet refuse; add chain inet refuse input { type filter hook input priority 0; policy accept; }; add rule inet refuse input tcp dport 22 reject with tcp reset",
        ]);
        assert!(refuse.status.success(), "{refuse:?}");
        sshd.drop_connections();
        let reopen = {
            let sshd = sshd.clone();
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(1200));
                sshd.exec(&["nft", "delete table inet refuse"])
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let out = exec.run(&hostname, soon(10)).await.unwrap();
        assert!(reopen.await.unwrap().status.success());
        assert_eq!(out.stdout_text(), "rave-test-host\n", "{out:?}");
        let said = out.stderr_text();
        assert!(said.contains("had dropped"), "{said}");
        assert!(said.contains("before it admitted the connection"), "{said}");
        assert_eq!(host.handshakes(), 2);

        // Refused for longer than the connect timeout: it fails, saying
        // the connection had dropped and how reconnecting went.
        let refuse = sshd.exec(&[
            "nft",
            "add table inet refuse; add chain inet refuse input { type filter hook input priority 0; policy accept; }; add rule inet refuse input tcp dport 22 reject with tcp reset",
        ]);
        assert!(refuse.status.success(), "{refuse:?}");
        sshd.drop_connections();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let err = exec.run(&hostname, soon(20)).await.unwrap_err().to_string();
        let took = started.elapsed();
        assert!(err.contains("had dropped"), "{err}");
        assert!(err.contains("reconnecting failed"), "{err}");
        assert!(err.contains("attempts"), "{err}");
        // The connect timeout (5 s) bounds it, not the command's deadline.
        assert!(took < Duration::from_secs(12), "took {took:?}: {err}");
        host.close().await;
    });
}

/// `forward_tcp` reaches a service that listens only on the namespace's
/// loopback; the same port is not open on this machine's.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn forward_tcp_reaches_the_hosts_loopback() {
    use std::io::{BufRead, Read};
    let sshd = Sshd::start();
    let port = common::free_port();
    let mut service = Command::new("ip")
        .args(["netns", "exec", &sshd.ns, "python3", "-c"])
        .arg(format!(
            "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', {port}))\ns.listen()\nprint('ready', flush=True)\nwhile True:\n    c, _ = s.accept()\n    c.sendall(b'hello from the host loopback\\n')\n    c.close()\n"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(service.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is open on this machine's loopback too"
    );
    let host = SshHost::new(sshd.config(22, "id", HostKeyPin::Fingerprint(sshd.host_key())));
    rt().block_on(async {
        let tunnel = host.tunnel().unwrap();
        let local = tunnel
            .forward_tcp("127.0.0.1", port, soon(10))
            .await
            .unwrap();
        let again = tunnel
            .forward_tcp("127.0.0.1", port, soon(10))
            .await
            .unwrap();
        assert_eq!(local, again, "forwards are made once per host:port");
        let mut got = String::new();
        std::net::TcpStream::connect(local)
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "hello from the host loopback\n");
        // A unix socket on the host, reached through a local one.
        let remote_socket = sshd.path("remote.sock");
        let listener = std::os::unix::net::UnixListener::bind(&remote_socket).unwrap();
        let serve = std::thread::spawn(move || {
            use std::io::Write;
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(b"bus").unwrap();
        });
        let local_socket = tunnel
            .forward_unix(&remote_socket.display().to_string(), soon(10))
            .await
            .unwrap();
        assert_ne!(local_socket, remote_socket);
        let mut got = String::new();
        std::os::unix::net::UnixStream::connect(&local_socket)
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "bus");
        serve.join().unwrap();
        let socks = tunnel.socks_proxy(soon(10)).await.unwrap();
        assert!(std::net::TcpStream::connect(socks).is_ok());
        host.close().await;
        assert!(
            std::net::TcpStream::connect(local).is_err(),
            "the forward outlived the connection"
        );
    });
    let _ = service.kill();
    let _ = service.wait();
    assert_eq!(sshd.handshakes(), 1);
}

/// More checks at once than sshd's default `MaxSessions` (10) on the one
/// connection: each waits its turn for a session instead of being refused
/// ("Session open refused by peer"), and all pass.
#[test]
#[cfg_attr(
    any(missing = "sshd", missing = "netns"),
    ignore = "needs an sshd and root with ip (iproute2) for a network namespace: ./scripts/setup.sh installs both"
)]
fn more_parallel_checks_than_sshd_sessions_wait_their_turn() {
    let sshd = Sshd::start();
    let target = sshd.target(&format!("host_key = \"{}\"", sshd.host_key()));
    let mut profile = String::from("[profile]\nname = \"remote\"\n");
    for n in 0..24 {
        profile.push_str(&format!(
            "[[check]]\nid = \"remote.session{n}\"\nphase = \"services\"\ntimeout = \"60s\"\n[check.command]\nscript = \"sleep 0.5; echo ok{n}\"\nstdout_contains = [\"ok{n}\"]\n\n"
        ));
    }
    let (out, doc, _) = validate_with(&target, &profile, sshd.dir.path(), &["--jobs", "24"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let passed = doc["validation_results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "PASS")
        .count();
    assert_eq!(passed, 24, "{stdout}");
}
