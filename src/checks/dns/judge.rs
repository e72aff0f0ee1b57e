//! Judges a name lookup.

// The address value type from `core`, which has no sockets.
use core::net::IpAddr;

use super::spec::Spec;
use crate::check::{all_of, Verdict};

/// What the resolver answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    /// Addresses (sorted, deduplicated; possibly none).
    Addresses(Vec<IpAddr>),
    /// An authoritative "no such name", with the resolver's words.
    NotFound(String),
    /// No answer: the resolver did not reply, failed, or the deadline came.
    NoAnswer(String),
}

pub fn judge(spec: &Spec, result: &Facts) -> Verdict {
    let name = &spec.name;
    let addrs = match result {
        Facts::Addresses(a) if !a.is_empty() => a,
        Facts::NoAnswer(e) if !spec.resolves => {
            // "Does not resolve" needs a resolver that said so.
            return Verdict::fail(
                format!("{name} does not resolve (an authoritative negative answer)"),
                format!("no answer from the resolver for {name}: {e}"),
            );
        }
        other => {
            let why = match other {
                Facts::NotFound(e) | Facts::NoAnswer(e) => format!("{name} does not resolve: {e}"),
                Facts::Addresses(_) => format!("{name} resolves to no address"),
            };
            return if spec.resolves {
                Verdict::fail(format!("{name} resolves"), why)
            } else {
                Verdict::pass(format!("{name} does not resolve"), why)
            };
        }
    };
    let listed = addrs
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let found = format!("{name} -> {listed}");
    if !spec.resolves {
        return Verdict::fail(format!("{name} does not resolve"), found);
    }
    let mut parts = vec![Verdict::pass(format!("{name} resolves"), found.clone())];
    for want in &spec.addresses_include {
        let e = format!("{name} resolves to {want}");
        parts.push(if addrs.contains(want) {
            Verdict::pass(e, found.clone())
        } else {
            Verdict::fail(e, found.clone())
        });
    }
    if let Some(min) = spec.min_addresses {
        let e = format!("at least {min} addresses");
        parts.push(if addrs.len() >= min {
            Verdict::pass(e, found.clone())
        } else {
            Verdict::fail(e, format!("{} addresses: {listed}", addrs.len()))
        });
    }
    all_of(parts).with_evidence(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Err("no answer...")` stands for no answer, any other `Err` for an
    /// authoritative "no such name".
    fn check(spec_text: &str, result: Result<Vec<&str>, &str>, pass: bool) {
        let spec: Spec = toml::from_str(&format!("name = \"db\"\n{spec_text}")).unwrap();
        let result = match result {
            Ok(v) => Facts::Addresses(v.iter().map(|a| a.parse().unwrap()).collect()),
            Err(e) if e.starts_with("no answer") => Facts::NoAnswer(e.to_string()),
            Err(e) => Facts::NotFound(e.to_string()),
        };
        assert_eq!(judge(&spec, &result).pass, pass, "{spec_text} {result:?}");
    }

    #[test]
    fn cases() {
        check("", Ok(vec!["10.0.0.5"]), true);
        check("", Err("not found"), false);
        check("", Ok(vec![]), false);
        check("resolves = false", Err("not found"), true);
        // No answer is not "does not resolve": it fails, saying why.
        check("resolves = false", Err("no answer before the deadline"), false);
        check("", Err("no answer before the deadline"), false);
        check("resolves = false", Ok(vec!["10.0.0.5"]), false);
        check(
            "addresses_include = [\"10.0.0.5\"]",
            Ok(vec!["10.0.0.5", "::1"]),
            true,
        );
        check(
            "addresses_include = [\"10.0.0.6\"]",
            Ok(vec!["10.0.0.5"]),
            false,
        );
        check("min_addresses = 2", Ok(vec!["10.0.0.5"]), false);
    }
}
