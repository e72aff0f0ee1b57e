//! Judges a TLS handshake: chain, expiry, names, key strength, protocol.

use super::spec::Spec;
use crate::check::{all_of, Verdict};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    pub not_after_unix: i64,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// "RSA", "EC", "Ed25519", ...
    pub key_type: String,
    pub key_bits: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub protocol: String,
    pub cipher: String,
    /// Leaf first.
    pub chain: Vec<CertFacts>,
    /// Why the chain does not verify, if it does not.
    pub chain_error: Option<String>,
    /// When the probe looked (expiry is judged against it).
    pub now_unix: i64,
    /// No handshake at all.
    pub error: Option<String>,
    /// For `min_version`: each older version offered alone, and how the
    /// server answered.
    pub older: Vec<(String, Offer)>,
}

/// How a server answered a client offering one protocol version only.
#[derive(Debug, Clone, PartialEq)]
pub enum Offer {
    /// The handshake completed with this cipher.
    Accepted { cipher: String },
    /// The server refused it (the alert or error it sent).
    Refused { reason: String },
    /// It could not be tried (no openssl, no connection, the client cannot
    /// offer it).
    Untried { reason: String },
}

pub fn judge(spec: &Spec, f: &Facts) -> Verdict {
    let name = spec.name();
    if let Some(e) = &f.error {
        return Verdict::fail(
            format!("{} completes a TLS handshake for {name}", spec.address),
            e.clone(),
        );
    }
    let Some(leaf) = f.chain.first() else {
        return Verdict::fail(
            format!("{} presents a certificate", spec.address),
            "no certificate presented",
        );
    };
    let mut parts = Vec::new();
    if spec.chain_valid.unwrap_or(true) {
        let e = format!("a chain valid for {name}");
        parts.push(match &f.chain_error {
            None => Verdict::pass(e, "chain verifies"),
            Some(err) => Verdict::fail(e, format!("chain does not verify: {err}")),
        });
    }
    let min_days = spec.min_days_valid.unwrap_or(14);
    let seconds_left = leaf.not_after_unix - f.now_unix;
    let days_left = seconds_left.div_euclid(86_400);
    let e = format!("certificate valid for at least {min_days} more days");
    let found = if seconds_left < 0 {
        // Whole days since the end, as a person counts them: 2 days and an
        // hour ago is "2 days ago" (the floor of the negative `days_left`
        // would say 3).
        match (-seconds_left).div_euclid(86_400) {
            0 => "expired less than a day ago".to_string(),
            1 => "expired 1 day ago".to_string(),
            days => format!("expired {days} days ago"),
        }
    } else {
        format!("expires in {days_left} days")
    };
    parts.push(if days_left >= min_days {
        Verdict::pass(e, found)
    } else {
        Verdict::fail(e, found)
    });
    for want in &spec.san {
        let e = format!("subjectAltName includes {want}");
        let has = leaf.dns_names.iter().any(|n| n.eq_ignore_ascii_case(want))
            || leaf.ip_addresses.contains(want);
        let listed = leaf
            .dns_names
            .iter()
            .chain(&leaf.ip_addresses)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(if has {
            Verdict::pass(e, format!("SAN: {listed}"))
        } else {
            Verdict::fail(e, format!("SAN lacks {want}: {listed}"))
        });
    }
    let min_rsa = spec.min_key_bits.unwrap_or(2048);
    let key_ok = match leaf.key_type.as_str() {
        "RSA" => leaf.key_bits >= min_rsa,
        "EC" => leaf.key_bits >= 256,
        "Ed25519" | "Ed448" => true,
        _ => false,
    };
    let e = format!("a strong key (RSA >= {min_rsa}, EC >= 256, Ed25519)");
    let found = format!("{} {} bits", leaf.key_type, leaf.key_bits);
    parts.push(if key_ok {
        Verdict::pass(e, found)
    } else {
        Verdict::fail(e, found)
    });
    let allowed = spec
        .protocols
        .clone()
        .unwrap_or_else(|| vec!["TLSv1.2".into(), "TLSv1.3".into()]);
    let e = format!("protocol {}", allowed.join(" or "));
    parts.push(if allowed.contains(&f.protocol) {
        Verdict::pass(e, format!("negotiated {}", f.protocol))
    } else {
        Verdict::fail(e, format!("negotiated {}", f.protocol))
    });
    if let Some(min) = spec.min_version {
        let e = format!("{} refused ({} minimum)", min.older().iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", "), min.name());
        let mut bad = Vec::new();
        let mut refused = Vec::new();
        for (_, name) in min.older() {
            match f.older.iter().find(|(n, _)| n == name).map(|(_, o)| o) {
                Some(Offer::Refused { .. }) => refused.push(name.to_string()),
                Some(Offer::Accepted { cipher }) => {
                    bad.push(format!("{name} accepted (cipher {cipher})"))
                }
                Some(Offer::Untried { reason }) => {
                    bad.push(format!("{name} could not be tried: {reason}"))
                }
                None => bad.push(format!("{name} not tried")),
            }
        }
        parts.push(if bad.is_empty() {
            Verdict::pass(e, format!("refused: {}", refused.join(", ")))
        } else {
            Verdict::fail(e, bad.join("; "))
        });
    }
    let evidence = format!(
        "{} {} {}\nleaf: {}\nissuer: {}\nSAN: {}\nkey: {} {} bits\nchain length: {}",
        spec.address,
        f.protocol,
        f.cipher,
        leaf.subject,
        leaf.issuer,
        leaf.dns_names
            .iter()
            .chain(&leaf.ip_addresses)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        leaf.key_type,
        leaf.key_bits,
        f.chain.len()
    );
    let mut evidence = evidence;
    for (name, offer) in &f.older {
        let answer = match offer {
            Offer::Accepted { cipher } => format!("accepted (cipher {cipher})"),
            Offer::Refused { reason } => format!("refused ({reason})"),
            Offer::Untried { reason } => format!("not tried ({reason})"),
        };
        evidence.push_str(&format!("\n{name} offered alone: {answer}"));
    }
    all_of(parts)
        .with_evidence(evidence)
        .with_metric("days_to_expiry", days_left as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(days: i64, key: (&str, u32)) -> Facts {
        Facts {
            protocol: "TLSv1.3".into(),
            chain: vec![CertFacts {
                not_after_unix: 1_000_000 + days * 86_400 + 60,
                dns_names: vec!["rave.local".into()],
                key_type: key.0.into(),
                key_bits: key.1,
                ..CertFacts::default()
            }],
            now_unix: 1_000_000,
            ..Facts::default()
        }
    }

    fn check(extra: &str, f: Facts, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(&format!("address = \"h:443\"\n{extra}")).unwrap();
        let v = judge(&spec, &f);
        assert_eq!(v.pass, pass, "{extra}: {v:?}");
        assert!(v.found.contains(found), "{extra}: {:?}", v.found);
    }

    #[test]
    fn cases() {
        check("", facts(90, ("EC", 256)), true, "expires in 90 days");
        check("", facts(13, ("EC", 256)), false, "expires in 13 days");
        check("", facts(-3, ("EC", 256)), false, "expired 2 days ago");
        // The end a little over two days ago: 2 days, not 3.
        let mut just_over_two = facts(0, ("EC", 256));
        just_over_two.chain[0].not_after_unix = 1_000_000 - 2 * 86_400 - 3_600;
        check("", just_over_two, false, "expired 2 days ago");
        let mut one = facts(0, ("EC", 256));
        one.chain[0].not_after_unix = 1_000_000 - 86_400 - 1;
        check("", one, false, "expired 1 day ago");
        let mut hours = facts(0, ("EC", 256));
        hours.chain[0].not_after_unix = 1_000_000 - 3 * 3_600;
        check("", hours, false, "expired less than a day ago");
        check("", facts(90, ("RSA", 1024)), false, "RSA 1024 bits");
        check("min_key_bits = 1024", facts(90, ("RSA", 1024)), true, "");
        check(
            "san = [\"other\"]",
            facts(90, ("EC", 256)),
            false,
            "SAN lacks other",
        );
        let mut bad_chain = facts(90, ("EC", 256));
        bad_chain.chain_error = Some("invalid peer certificate: UnknownIssuer".into());
        check("", bad_chain.clone(), false, "UnknownIssuer");
        check("chain_valid = false", bad_chain, true, "");
        check(
            "",
            Facts {
                error: Some("connect failed".into()),
                ..Facts::default()
            },
            false,
            "connect failed",
        );
    }

    #[test]
    fn min_version_needs_every_older_version_refused() {
        let refused = || Offer::Refused {
            reason: "tlsv1 alert protocol version".into(),
        };
        let with = |older: Vec<(&str, Offer)>| Facts {
            older: older.into_iter().map(|(n, o)| (n.to_string(), o)).collect(),
            ..facts(90, ("EC", 256))
        };
        let min12 = "min_version = \"1.2\"";
        check(
            min12,
            with(vec![("TLSv1", refused()), ("TLSv1.1", refused())]),
            true,
            "refused: TLSv1, TLSv1.1",
        );
        check(
            min12,
            with(vec![
                ("TLSv1", refused()),
                (
                    "TLSv1.1",
                    Offer::Accepted {
                        cipher: "ECDHE-RSA-AES256-SHA".into(),
                    },
                ),
            ]),
            false,
            "TLSv1.1 accepted (cipher ECDHE-RSA-AES256-SHA)",
        );
        check(
            min12,
            with(vec![
                ("TLSv1", refused()),
                (
                    "TLSv1.1",
                    Offer::Untried {
                        reason: "openssl not found".into(),
                    },
                ),
            ]),
            false,
            "TLSv1.1 could not be tried: openssl not found",
        );
        check(
            "min_version = \"1.3\"",
            with(vec![("TLSv1", refused()), ("TLSv1.1", refused())]),
            false,
            "TLSv1.2 not tried",
        );
        assert!(toml::from_str::<Spec>("address = \"h:1\"\nmin_version = \"1.1\"").is_err());
    }
}
