//! The security kinds against the real thing: the effective configuration
//! of a real sshd binary (`sshd -T` in a mount namespace of the test's own,
//! where the privilege separation user exists), a real nftables ruleset and
//! real listeners in network namespaces of the test's own. Each check
//! passes on the hardened setup and fails, for its own reason, on the
//! weakened one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use spinup_smoke::check::ProbeContext;
use spinup_smoke::checks::{nftables, ports, sshd};
use spinup_smoke::os::exec::ExecFuture;
use spinup_smoke::os::{CommandExecutor, CommandSpec, LocalExecutor};

/// Runs every command behind `prefix` (`ip netns exec NAME`, `unshare ...`)
/// on this machine: what the checks see is the namespace's state.
struct Prefixed {
    prefix: Vec<String>,
}

impl CommandExecutor for Prefixed {
    fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: Instant) -> ExecFuture<'a> {
        Box::pin(async move {
            let mut wrapped = spec.clone();
            wrapped.program = self.prefix[0].clone();
            wrapped.args = self.prefix[1..]
                .iter()
                .cloned()
                .chain(std::iter::once(spec.program.clone()))
                .chain(spec.args.iter().cloned())
                .collect();
            LocalExecutor.run(&wrapped, deadline).await
        })
    }
    fn describe(&self) -> String {
        format!("local ({})", self.prefix.join(" "))
    }
}

fn context(prefix: &[&str]) -> ProbeContext {
    let mut ctx = ProbeContext::for_tests(20);
    ctx.executor = Arc::new(Prefixed {
        prefix: prefix.iter().map(|s| s.to_string()).collect(),
    });
    ctx
}

fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
}

/// A network namespace of the test's own (loopback up), removed on drop
/// with every process still in it.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("ss-{tag}-{}", std::process::id());
        run_ok("ip", &["netns", "add", &name]);
        run_ok("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }
    fn exec(&self) -> Vec<&str> {
        vec!["ip", "netns", "exec", &self.name]
    }
    fn nft(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "nft"];
        all.extend_from_slice(args);
        run_ok("ip", &all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

/// The NixOS firewall's shape: input drops; loopback and established pass;
/// new connections go through a verdict map to input-allow.
const RULESET: &str = "table inet nixos-fw {
  chain input-allow {
    tcp dport 22 accept
    tcp dport 3002 accept
    icmp type echo-request accept
    udp dport 5353 accept
  }
  chain input {
    type filter hook input priority filter; policy drop;
    iifname \"lo\" accept
    ct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow, untracked : jump input-allow }
  }
}
";

#[tokio::test]
#[cfg_attr(
    missing = "netns",
    ignore = "needs root and ip (iproute2) for a network namespace: ./scripts/setup.sh installs iproute2"
)]
async fn the_nftables_input_chain_passes_and_fails_for_its_reason() {
    let ns = Netns::new("nft");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.nft");
    std::fs::write(&rules, RULESET).unwrap();
    ns.nft(&["-f", rules.to_str().unwrap()]);
    let ctx = context(&ns.exec());
    let spec: nftables::Spec = toml::from_str(
        "allowed_tcp = [22, 3002]\nfamily = \"inet\"\ntable = \"nixos-fw\"\nchain = \"input\"",
    )
    .unwrap();
    let v = nftables::run(&spec, &ctx).await;
    assert!(v.pass && v.found.contains("admitted: 22, 3002"), "{v:?}");

    ns.nft(&[
        "add",
        "rule",
        "inet",
        "nixos-fw",
        "input-allow",
        "tcp",
        "dport",
        "8080",
        "accept",
    ]);
    let v = nftables::run(&spec, &ctx).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains("input chain inet nixos-fw input admits extra ports: TCP 8080 (inet nixos-fw input-allow handle"),
        "{v:?}"
    );

    ns.nft(&["flush", "ruleset"]);
    let v = nftables::run(&spec, &ctx).await;
    assert!(!v.pass && v.found.contains("no input chain"), "{v:?}");
}

#[tokio::test]
#[cfg_attr(
    missing = "netns",
    ignore = "needs root and ip (iproute2) for a network namespace: ./scripts/setup.sh installs iproute2"
)]
async fn an_extra_listener_is_named_with_its_process() {
    let ns = Netns::new("ports");
    let mut exec = ns.exec();
    exec.extend(["python3", "-c", "import socket, time\ns = socket.socket()\ns.bind(('0.0.0.0', 8080))\ns.listen()\nprint('ready', flush=True)\ntime.sleep(60)\n"]);
    let mut listener = Command::new(exec[0])
        .args(&exec[1..])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(listener.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    // `ip netns exec` becomes the program it runs: the same pid.
    let pid = listener.id();
    let ctx = context(&ns.exec());
    let spec: ports::Spec = toml::from_str("allowed = [22, 3002]").unwrap();
    let v = ports::run(&spec, &ctx).await;
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.contains(&format!(
            "unexpected listening ports: 8080: 0.0.0.0:8080 (pid {pid} python3)"
        )),
        "{v:?}"
    );
}

/// An sshd configuration with its own host key, and a mount namespace in
/// which the privilege separation user and /run/sshd exist (sshd -T wants
/// both); nothing on the machine changes.
struct SshdSetup {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl SshdSetup {
    fn new() -> SshdSetup {
        let binary = common::detect::sshd(&common::repo())
            .unwrap_or_else(|| common::missing(common::detect::Server::Sshd));
        let dir = tempfile::tempdir().unwrap();
        run_ok(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                dir.path().join("host_key").to_str().unwrap(),
            ],
        );
        let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        if !passwd.lines().any(|l| l.starts_with("sshd:")) {
            passwd.push_str("sshd:x:61999:65534::/run/sshd:/usr/sbin/nologin\n");
        }
        std::fs::write(dir.path().join("passwd"), passwd).unwrap();
        SshdSetup { dir, binary }
    }

    fn config(&self, name: &str, lines: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "HostKey {}\n{lines}",
                self.dir.path().join("host_key").display()
            ),
        )
        .unwrap();
        path
    }

    fn context(&self) -> ProbeContext {
        let setup = format!(
            "mount --bind {} /etc/passwd && mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec \"$@\"",
            self.dir.path().join("passwd").display()
        );
        context(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &setup,
            "sh",
        ])
    }

    fn spec(&self, config: &Path) -> sshd::Spec {
        toml::from_str(&format!(
            "binary = \"{}\"\nconfig = \"{}\"",
            self.binary.display(),
            config.display()
        ))
        .unwrap()
    }
}

const HARDENED: &str = "PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com
";

#[tokio::test]
#[cfg_attr(
    missing = "sshd",
    ignore = "needs an sshd binary: ./scripts/setup.sh fetches one"
)]
#[cfg_attr(
    missing = "netns",
    ignore = "needs root (a mount namespace of the test's own for sshd's privilege separation user)"
)]
async fn the_effective_sshd_configuration_of_a_real_sshd() {
    let sshd = SshdSetup::new();
    let ctx = sshd.context();
    let hardened = sshd.config("hardened", HARDENED);
    let v = sshd::run(&sshd.spec(&hardened), &ctx).await;
    assert!(v.pass, "{v:?}");

    let weak = sshd.config(
        "weak",
        &HARDENED
            .replace("PasswordAuthentication no", "PasswordAuthentication yes")
            .replace(
                "Ciphers chacha20-poly1305@openssh.com,",
                "Ciphers aes128-cbc,chacha20-poly1305@openssh.com,",
            ),
    );
    let v = sshd::run(&sshd.spec(&weak), &ctx).await;
    assert!(!v.pass, "{v:?}");
    assert!(v.found.contains("passwordauthentication yes"), "{v:?}");
    assert!(
        v.found
            .contains("ciphers allows aes128-cbc (not in the allow-list)"),
        "{v:?}"
    );

    // OpenSSH's own defaults: NIST and Diffie-Hellman key exchange and
    // MAC-then-encrypt MACs are offered.
    let defaults = sshd.config(
        "defaults",
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n",
    );
    let v = sshd::run(&sshd.spec(&defaults), &ctx).await;
    assert!(
        !v.pass && v.found.contains("kexalgorithms allows ") && v.found.contains("hmac-sha1"),
        "{v:?}"
    );

    // A Match block for one connection, evaluated with `connection`.
    let matched = sshd.config(
        "matched",
        &format!("{HARDENED}Match User deploy\n  PasswordAuthentication yes\n"),
    );
    let mut spec = sshd.spec(&matched);
    assert!(sshd::run(&spec, &ctx).await.pass);
    spec = toml::from_str(&format!(
        "binary = \"{}\"\nconfig = \"{}\"\nconnection = {{ user = \"deploy\", host = \"ci\", addr = \"10.0.0.9\" }}",
        sshd.binary.display(),
        matched.display()
    ))
    .unwrap();
    let v = sshd::run(&spec, &ctx).await;
    assert!(
        !v.pass && v.found.contains("passwordauthentication yes"),
        "{v:?}"
    );

    // sshd -T that cannot answer (here: no such configuration file).
    let v = sshd::run(&sshd.spec(&sshd.dir.path().join("absent")), &ctx).await;
    assert!(
        !v.pass
            && v.found.contains("sshd -T failed (exit code 1): ")
            && v.found.contains("No such file or directory"),
        "{v:?}"
    );
}
