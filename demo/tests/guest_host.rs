//! The demo's guest host, for real: `demo up` boots the hardened guest image
//! as a long-lived service; it answers ssh only with the host key the image
//! was built with (pinned in `guest/known_hosts`) and root's key from
//! `secrets/guest_ssh_key`; inside, sshd, nftables, the listeners and the
//! secrets under /run/secrets are hardened like a P6 host, and its nginx
//! serves TLS on 3002 with a certificate from the demo CA. Through the
//! target's ssh host `guest`, every check of health-checks/security.toml
//! passes there; weakened over ssh (password logins on, an extra listener,
//! the ruleset flushed, a secret made 0644) each check FAILS for its own
//! reason, naming the process or the file. `demo down` stops it. One
//! `demo up` serves every assertion: booting is the slow part.
//!
//! Needs `./scripts/setup.sh` (the demo stack and QEMU). Without them these
//! tests are reported ignored with the reason, unless
//! SPINUP_SMOKE_REQUIRE_ALL=1, where they fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spinup_smoke::cli::{EnvSettings, Format, RunArgs, Selection};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("demo/ sits in the repository")
        .to_path_buf()
}

fn demo() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spinup-smoke-demo"));
    c.current_dir(repo())
        .arg("--assets")
        .arg(repo())
        .env("NO_COLOR", "1")
        .env_remove("SPINUP_SIGNING_KEY");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `[vars]` value of the target `up` wrote.
fn var(state: &Path, name: &str) -> String {
    let target = std::fs::read_to_string(state.join("target.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&target).unwrap();
    let mut value = &doc["vars"];
    for part in name.split('.') {
        value = &value[part];
    }
    value.as_str().unwrap().to_string()
}

/// The port of the guest's ssh, as the target names it.
fn ssh_port(state: &Path) -> String {
    var(state, "guest.ssh_address")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

/// Runs `command` in the guest as its administrator `rave` over ssh,
/// trusting only the host keys in `known_hosts`.
fn ssh_with(state: &Path, known_hosts: &Path, command: &str) -> Output {
    Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(state.join("secrets/guest_ssh_key"))
        .args(["-p", &ssh_port(state)])
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args(["-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
        ])
        .args(["rave@127.0.0.1", "--", command])
        .output()
        .unwrap()
}

/// `command` in the guest; its stdout, asserting it succeeded.
fn guest(state: &Path, command: &str) -> String {
    let mut out = ssh_with(state, &state.join("guest/known_hosts"), command);
    // ssh's own failure (a reloading sshd refuses for a moment): again.
    for _ in 0..3 {
        if out.status.code() != Some(255) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        out = ssh_with(state, &state.join("guest/known_hosts"), command);
    }
    assert!(
        out.status.success(),
        "`{command}` in the guest: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Stack {
    _dir: tempfile::TempDir,
    state: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = demo().args(["down", "--state"]).arg(&self.state).output();
    }
}

fn up() -> Stack {
    let dir = tempfile::Builder::new()
        .prefix("spinup-demo-guest")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    let out = demo().args(["up", "--state"]).arg(&state).output().unwrap();
    assert!(out.status.success(), "demo up failed:\n{}", text(&out));
    Stack { _dir: dir, state }
}

#[test]
#[cfg_attr(
    missing = "demo",
    ignore = "needs the demo stack (PostgreSQL, Synapse, the IdP, Prometheus, nginx, podman, QEMU): ./scripts/setup.sh installs it"
)]
fn the_guest_is_pinned_hardened_and_stopped_by_down() {
    let stack = up();
    let state = &stack.state;

    // The pinned host key admits the guest; any other key refuses it.
    let known = std::fs::read_to_string(state.join("guest/known_hosts")).unwrap();
    assert!(
        known.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", ssh_port(state))),
        "{known}"
    );
    assert_eq!(guest(state, "hostname").trim(), "spinup-guest");
    let other = state.join("other_known_hosts");
    let stranger = state.join("stranger");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    let stranger_pub = std::fs::read_to_string(stranger.with_extension("pub")).unwrap();
    let fields: Vec<&str> = stranger_pub.split_whitespace().take(2).collect();
    std::fs::write(
        &other,
        format!("[127.0.0.1]:{} {}\n", ssh_port(state), fields.join(" ")),
    )
    .unwrap();
    let refused = ssh_with(state, &other, "true");
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("Host key verification failed"),
        "{}",
        text(&refused)
    );

    // The same key does not let root in.
    let root = Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(state.join("secrets/guest_ssh_key"))
        .args(["-p", &ssh_port(state), "-o", "BatchMode=yes", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            state.join("guest/known_hosts").display()
        ))
        .args(["root@127.0.0.1", "--", "true"])
        .output()
        .unwrap();
    assert!(!root.status.success());
    assert!(text(&root).contains("Permission denied"), "{}", text(&root));

    // sshd: keys only, no root login, modern algorithms.
    let sshd = guest(state, "sudo -n sshd -T");
    for line in [
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitrootlogin no",
        "authenticationmethods publickey",
        "kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org",
        "ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com",
        "macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    ] {
        assert!(sshd.lines().any(|l| l == line), "no `{line}` in sshd -T:\n{sshd}");
    }

    // nftables: inet nixos-fw input, policy drop, admitting 22 and 3002.
    let ruleset: serde_json::Value =
        serde_json::from_str(&guest(state, "sudo -n nft -j list ruleset")).unwrap();
    let items = ruleset["nftables"].as_array().unwrap();
    let input = items
        .iter()
        .find_map(|i| {
            let c = &i["chain"];
            (c["table"] == "nixos-fw" && c["name"] == "input").then_some(c)
        })
        .unwrap_or_else(|| panic!("no input chain in {ruleset}"));
    assert_eq!(input["family"], "inet");
    assert_eq!(input["hook"], "input");
    assert_eq!(input["policy"], "drop");
    let rules = serde_json::to_string(items).unwrap();
    assert!(rules.contains(r#"{"set":[22,3002]}"#), "{rules}");

    // Listeners off loopback: sshd on 22 and nginx on 3002, nothing else.
    let listening = guest(state, "sudo -n ss -Htlnp");
    let public: Vec<&str> = listening
        .lines()
        .filter(|l| !l.contains("127.0.0.1:") && !l.contains("[::1]:"))
        .collect();
    assert!(
        public
            .iter()
            .all(|l| l.contains(":22 ") || l.contains(":3002 ")),
        "{listening}"
    );
    assert!(
        public
            .iter()
            .any(|l| l.contains(":3002 ") && l.contains("nginx")),
        "{listening}"
    );

    // Secrets: a ramfs at /run/secrets, each file 0400 with its owner.
    assert_eq!(
        guest(state, "findmnt -no FSTYPE /run/secrets").trim(),
        "ramfs"
    );
    let stats = guest(state, "sudo -n sh -c \"stat -c '%n %a %U' /run/secrets/*\"");
    for expected in [
        "/run/secrets/tls_key 400 nginx",
        "/run/secrets/gitlab_db_password 400 gitlab",
        "/run/secrets/synapse_oidc_client_secret 400 matrix-synapse",
        "/run/secrets/grafana_oauth_client_secret 400 grafana",
        "/run/secrets/spinup_signing_key 400 root",
    ] {
        assert!(
            stats.lines().any(|l| l == expected),
            "no `{expected}` in:\n{stats}"
        );
    }
    assert!(stats.lines().all(|l| l.contains(" 400 ")), "{stats}");

    // nginx in the guest: TLS 1.2 and 1.3 for rave.local, from the demo CA.
    let tls = var(state, "tls_front.address");
    let port = tls.rsplit(':').next().unwrap();
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(var(state, "tls_front.ca_file"))
            .args(["--resolve", &format!("rave.local:{port}:127.0.0.1")])
            .args(extra)
            .arg(format!("https://rave.local:{port}/"))
            .output()
            .unwrap()
    };
    let ok = curl(&[]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "RAVE demo guest\n");
    let tls12 = curl(&["--tlsv1.2", "--tls-max", "1.2"]);
    assert!(tls12.status.success(), "{}", text(&tls12));

    security_phase_passes_and_each_weakening_fails(state, &stack._dir.path().join("out"));

    // down stops the guest's QEMU.
    let record = std::fs::read_to_string(state.join("run/guest.pid")).unwrap();
    let pid: u32 = record.split_whitespace().next().unwrap().parse().unwrap();
    let down = demo()
        .args(["down", "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("guest"), "{}", text(&down));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true),
        "the guest's QEMU {pid} outlived down"
    );
}

/// One run of health-checks/security.toml against the target: the exit
/// code and the transcript.
fn run_security(state: &Path, out: &Path) -> (i32, serde_json::Value) {
    let args = RunArgs {
        selection: Selection {
            profiles: vec![repo().join("health-checks/security.toml")],
            target: Some(state.join("target.toml")),
            phases: Vec::new(),
            smoke: false,
        },
        image: None,
        key: None,
        out: out.to_path_buf(),
        jobs: 8,
        format: Format::Json,
        require_phases: Vec::new(),
        quiet: false,
    };
    let settings = EnvSettings::from_lookup(|_| None).unwrap();
    let runtime = spinup_smoke::cli::runtime().unwrap();
    let (code, written) = runtime.block_on(spinup_smoke::cli::run(args, settings));
    runtime.shutdown_background();
    let doc = written
        .and_then(|w| std::fs::read_to_string(w.transcript).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    (code, doc)
}

fn results(doc: &serde_json::Value) -> Vec<&serde_json::Value> {
    doc["validation_results"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

fn summary(doc: &serde_json::Value) -> String {
    results(doc)
        .iter()
        .map(|c| format!("{} {} {}", c["status"], c["id"], c["found"]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn result<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    results(doc)
        .into_iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in:\n{}", summary(doc)))
}

/// What the guest was doing, for a failure's message: the tail of its
/// console and of sshd's journal (best effort: the guest may be the fault).
fn diagnostics(state: &Path) -> String {
    let console = std::fs::read_to_string(state.join("logs/guest-console.log")).unwrap_or_default();
    let tail: Vec<&str> = console.lines().rev().take(20).collect();
    let journal = ssh_with(
        state,
        &state.join("guest/known_hosts"),
        "sudo -n journalctl -u ssh -n 30 --no-pager",
    );
    format!(
        "guest console (last lines):\n{}\nsshd journal:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        text(&journal)
    )
}

/// The security phase passes on the hardened guest through the target's
/// ssh host; weakening it fails each check for its own reason.
fn security_phase_passes_and_each_weakening_fails(state: &Path, out: &Path) {
    let (code, doc) = run_security(state, &out.join("healthy"));
    assert_eq!(
        code,
        0,
        "{}\nall checks:\n{}",
        diagnostics(state),
        summary(&doc)
    );
    let checks = results(&doc);
    assert!(checks.len() > 10, "{}", summary(&doc));
    assert!(
        checks.iter().all(|c| c["status"] == "PASS"),
        "{}",
        summary(&doc)
    );
    // It examined the guest, not this machine.
    let evidence = result(&doc, "security.sshd.effective_config")["evidence"].to_string();
    assert!(evidence.contains("rave@127.0.0.1"), "{evidence}");

    // Weaken the guest: password logins on (sshd reloaded), a listener on
    // 8080, the ruleset flushed, a secret readable by everyone.
    guest(
        state,
        "sudo -n sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' /etc/ssh/sshd_config.d/spinup.conf && sudo -n systemctl reload ssh && sleep 3",
    );
    guest(
        state,
        "sudo -n sh -c 'setsid nc -lk 0.0.0.0 8080 </dev/null >/dev/null 2>&1 &'",
    );
    // The listener is up before the run looks (a loaded guest may take a
    // while to start nc), and sshd admits new connections after its reload.
    guest(
        state,
        "for i in $(seq 100); do ss -ltn | grep -q ':8080 ' && exit 0; sleep 0.2; done; echo 'nc never listened on 8080'; exit 1",
    );
    guest(state, "sudo -n nft flush ruleset");
    guest(state, "sudo -n chmod 0644 /run/secrets/gitlab_db_password");

    let (code, doc) = run_security(state, &out.join("weakened"));
    assert_eq!(
        code,
        1,
        "{}\nall checks:\n{}",
        diagnostics(state),
        summary(&doc)
    );
    let failed = |id: &str, reasons: &[&str]| {
        let check = result(&doc, id);
        assert_eq!(
            check["status"],
            "FAIL",
            "{}\nall checks:\n{}\n{id} did not fail",
            diagnostics(state),
            summary(&doc)
        );
        // What it found, and the evidence that names the file or process.
        let found = format!(
            "{}\n{}",
            check["found"].as_str().unwrap_or_default(),
            check["evidence"].as_str().unwrap_or_default()
        )
        .to_lowercase();
        // The fault is named last: a long log keeps only its end.
        for reason in reasons {
            assert!(
                found.contains(&reason.to_lowercase()),
                "{}\nall checks:\n{}\n{id} does not say `{reason}`; it found:\n{found}",
                diagnostics(state),
                summary(&doc)
            );
        }
    };
    failed(
        "security.sshd.effective_config",
        &["passwordauthentication yes"],
    );
    failed("security.ports.allow_list", &["8080", "nc"]);
    failed("security.firewall.input_chain", &["nixos-fw"]);
    failed(
        "security.secrets.gitlab_db_password",
        &["/run/secrets/gitlab_db_password", "644"],
    );
    // Nothing else broke: the TLS front and the other secrets still pass.
    for check in results(&doc) {
        let id = check["id"].as_str().unwrap_or_default();
        if ![
            "security.sshd.effective_config",
            "security.ports.allow_list",
            "security.firewall.input_chain",
            "security.secrets.gitlab_db_password",
        ]
        .contains(&id)
        {
            assert_eq!(check["status"], "PASS", "{id}:\n{}", summary(&doc));
        }
    }
}
