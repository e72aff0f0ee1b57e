//! Parses `sshd -T` (one `keyword value` line per setting, keywords in
//! lower case) and judges the effective configuration: no passwords, no
//! keyboard-interactive, no root login (or key-only), and only allowed key
//! exchange, ciphers and MACs.

use std::collections::BTreeMap;

use super::spec::{RootLogin, Spec};
use crate::check::{all_of, excerpt, Verdict};

/// What `sshd -T` printed, or why it printed nothing usable.
pub use crate::checks::ran::Ran as Facts;

/// The settings of `sshd -T` output: keyword -> value (the first line of a
/// keyword wins, as in sshd itself).
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if key.is_empty() {
            continue;
        }
        settings
            .entry(key.to_ascii_lowercase())
            .or_insert_with(|| value.trim().to_string());
    }
    settings
}

/// The keywords this judge reads (the evidence shows these lines).
const JUDGED: &[&str] = &[
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "challengeresponseauthentication",
    "permitrootlogin",
    "kexalgorithms",
    "ciphers",
    "macs",
];

pub fn judge(spec: &Spec, f: &Facts) -> Verdict {
    let asked = format!("`{}` on {}", f.command, f.place);
    if let Some(e) = &f.error {
        return Verdict::fail(
            format!("the effective sshd configuration ({asked})"),
            format!("sshd -T did not run: {e} (is sshd installed there, and on PATH?)"),
        );
    }
    if f.exit_code != Some(0) {
        let code = f
            .exit_code
            .map_or("killed by a signal".to_string(), |c| format!("exit code {c}"));
        return Verdict::fail(
            format!("the effective sshd configuration ({asked})"),
            format!(
                "sshd -T failed ({code}): {} (sshd -T needs root and a readable configuration and host keys)",
                excerpt(f.stderr.trim(), 300)
            ),
        );
    }
    let settings = parse(&f.stdout);
    if settings.is_empty() {
        return Verdict::fail(
            format!("the effective sshd configuration ({asked})"),
            "sshd -T printed no settings",
        );
    }
    let mut parts = vec![
        is_off(&settings, "passwordauthentication", None),
        // OpenSSH before 8.7 names it ChallengeResponseAuthentication.
        is_off(
            &settings,
            "kbdinteractiveauthentication",
            Some("challengeresponseauthentication"),
        ),
        root_login(spec.root_login, &settings),
    ];
    for (key, allowed) in [
        ("kexalgorithms", spec.allowed_kex()),
        ("ciphers", spec.allowed_ciphers()),
        ("macs", spec.allowed_macs()),
    ] {
        parts.push(subset(&settings, key, &allowed));
    }
    let evidence: Vec<String> = JUDGED
        .iter()
        .filter_map(|k| settings.get(*k).map(|v| format!("{k} {v}")))
        .collect();
    all_of(parts).with_evidence(format!("{asked}:\n{}", evidence.join("\n")))
}

fn is_off(settings: &BTreeMap<String, String>, key: &str, alias: Option<&str>) -> Verdict {
    let expected = format!("{key} no");
    let found = settings
        .get(key)
        .map(|v| (key, v))
        .or_else(|| alias.and_then(|a| settings.get(a).map(|v| (a, v))));
    match found {
        Some((_, v)) if v == "no" => Verdict::pass(expected, format!("{key} no")),
        Some((k, v)) => Verdict::fail(expected, format!("{k} {v}")),
        None => Verdict::fail(expected, format!("{key} is not in the sshd -T output")),
    }
}

fn root_login(want: RootLogin, settings: &BTreeMap<String, String>) -> Verdict {
    let (expected, accepted): (&str, &[&str]) = match want {
        RootLogin::No => ("permitrootlogin no", &["no"]),
        // `without-password` is the old name of `prohibit-password`, and
        // what OpenSSH 9.x still prints for it.
        RootLogin::ProhibitPassword => (
            "permitrootlogin no or prohibit-password (root with a key only)",
            &["no", "prohibit-password", "without-password"],
        ),
    };
    match settings.get("permitrootlogin") {
        Some(v) if accepted.contains(&v.as_str()) => {
            Verdict::pass(expected, format!("permitrootlogin {v}"))
        }
        Some(v) => Verdict::fail(expected, format!("permitrootlogin {v}")),
        None => Verdict::fail(expected, "permitrootlogin is not in the sshd -T output"),
    }
}

fn subset(settings: &BTreeMap<String, String>, key: &str, allowed: &[String]) -> Verdict {
    let expected = format!("{key} only from {}", allowed.join(","));
    let Some(value) = settings.get(key) else {
        return Verdict::fail(expected, format!("{key} is not in the sshd -T output"));
    };
    let offending: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty() && !allowed.iter().any(|x| x == a))
        .collect();
    if offending.is_empty() {
        Verdict::pass(expected, format!("{key} {value}"))
    } else {
        Verdict::fail(
            expected,
            format!("{key} allows {} (not in the allow-list)", offending.join(",")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sshd -T` of a hardened server (abridged to what is judged and a few more).
    const HARDENED: &str = "port 22
passwordauthentication no
kbdinteractiveauthentication no
permitrootlogin no
kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-ctr
macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
";

    fn facts(stdout: &str) -> Facts {
        Facts {
            command: "sshd -T".into(),
            place: "local".into(),
            exit_code: Some(0),
            stdout: stdout.into(),
            ..Facts::default()
        }
    }

    fn with(line: &str) -> String {
        let key = line.split(' ').next().unwrap();
        HARDENED
            .lines()
            .map(|l| {
                if l.split(' ').next() == Some(key) {
                    line.to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn check(spec_text: &str, f: Facts, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(spec_text).unwrap();
        let v = judge(&spec, &f);
        assert_eq!(v.pass, pass, "{spec_text} {f:?}: {v:?}");
        assert!(v.found.contains(found), "{spec_text}: {:?}", v.found);
    }

    #[test]
    fn cases() {
        check("", facts(HARDENED), true, "passwordauthentication no");
        check(
            "",
            facts(&with("passwordauthentication yes")),
            false,
            "passwordauthentication yes",
        );
        check(
            "",
            facts(&with("kbdinteractiveauthentication yes")),
            false,
            "kbdinteractiveauthentication yes",
        );
        // The old keyword stands in for the new one.
        let old = HARDENED.replace(
            "kbdinteractiveauthentication no",
            "challengeresponseauthentication yes",
        );
        check("", facts(&old), false, "challengeresponseauthentication yes");
        let old = HARDENED.replace(
            "kbdinteractiveauthentication no",
            "challengeresponseauthentication no",
        );
        check("", facts(&old), true, "");
        check(
            "",
            facts(&HARDENED.replace("passwordauthentication no\n", "")),
            false,
            "passwordauthentication is not in the sshd -T output",
        );
        let key_only = with("permitrootlogin without-password");
        check("", facts(&key_only), false, "permitrootlogin without-password");
        check("root_login = \"prohibit-password\"", facts(&key_only), true, "");
        check(
            "root_login = \"prohibit-password\"",
            facts(&with("permitrootlogin prohibit-password")),
            true,
            "",
        );
        check(
            "root_login = \"prohibit-password\"",
            facts(&with("permitrootlogin yes")),
            false,
            "permitrootlogin yes",
        );
        check(
            "",
            facts(&with(
                "ciphers chacha20-poly1305@openssh.com,aes128-cbc,3des-cbc",
            )),
            false,
            "ciphers allows aes128-cbc,3des-cbc (not in the allow-list)",
        );
        check(
            "",
            facts(&with(
                "kexalgorithms curve25519-sha256,diffie-hellman-group14-sha1",
            )),
            false,
            "kexalgorithms allows diffie-hellman-group14-sha1",
        );
        check(
            "",
            facts(&with("macs hmac-sha2-256-etm@openssh.com,hmac-sha1")),
            false,
            "macs allows hmac-sha1",
        );
        // An overridden allow-list is the one applied.
        check(
            "macs = [\"hmac-sha2-256-etm@openssh.com\", \"hmac-sha1\"]\nciphers = [\"chacha20-poly1305@openssh.com\"]",
            facts(&with("macs hmac-sha2-256-etm@openssh.com,hmac-sha1")),
            false,
            "ciphers allows aes256-gcm@openssh.com,aes128-ctr",
        );
        // Several offences: each is named.
        let weak = with("passwordauthentication yes").replace(
            "macs hmac-sha2-512-etm@openssh.com",
            "macs hmac-md5,hmac-sha2-512-etm@openssh.com",
        );
        let spec: Spec = toml::from_str("").unwrap();
        let v = judge(&spec, &facts(&weak));
        assert!(
            !v.pass
                && v.found.contains("passwordauthentication yes")
                && v.found.contains("macs allows hmac-md5"),
            "{v:?}"
        );
        assert!(v.evidence.contains("ciphers chacha20"), "{v:?}");
    }

    #[test]
    fn sshd_that_cannot_answer_fails_saying_so() {
        let failed = Facts {
            exit_code: Some(255),
            stdout: String::new(),
            stderr: "Privilege separation user sshd does not exist\n".into(),
            ..facts("")
        };
        check(
            "",
            failed,
            false,
            "sshd -T failed (exit code 255): Privilege separation user sshd does not exist",
        );
        let absent = Facts {
            exit_code: None,
            error: Some("could not start: `sshd`: No such file or directory".into()),
            ..facts("")
        };
        check("", absent, false, "sshd -T did not run: could not start");
        check("", facts(""), false, "printed no settings");
    }

    #[test]
    fn connection_words_are_checked() {
        let spec: Spec = toml::from_str(
            "binary = \"/usr/sbin/sshd\"\nconfig = \"/etc/ssh/x\"\nconnection = { user = \"alice\", host = \"ci\", addr = \"10.0.0.1\" }",
        )
        .unwrap();
        assert_eq!(
            spec.command().display(),
            "/usr/sbin/sshd -T -f /etc/ssh/x -C user=alice,host=ci,addr=10.0.0.1"
        );
        let err = toml::from_str::<Spec>(
            "connection = { user = \"a,host=evil\", host = \"h\", addr = \"1.2.3.4\" }",
        )
        .unwrap_err();
        assert!(err.to_string().contains("connection.user"), "{err}");
        assert!(toml::from_str::<Spec>("root_login = \"yes\"").is_err());
    }
}
