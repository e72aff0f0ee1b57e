//! Judges a name lookup.

// The address value type from `core`, which has no sockets.
use core::net::IpAddr;

use super::spec::Spec;
use crate::check::{all_of, Verdict};

/// The resolver's answers (sorted, deduplicated), or why there are none.
pub type Facts = Result<Vec<IpAddr>, String>;

pub fn judge(spec: &Spec, result: &Facts) -> Verdict {
    let name = &spec.name;
    let addrs = match result {
        Ok(a) if !a.is_empty() => a,
        Ok(_) | Err(_) => {
            let why = match result {
                Err(e) => format!("{name} does not resolve: {e}"),
                Ok(_) => format!("{name} resolves to no address"),
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

    fn check(spec_text: &str, result: Result<Vec<&str>, &str>, pass: bool) {
        let spec: Spec = toml::from_str(&format!("name = \"db\"\n{spec_text}")).unwrap();
        let result = result
            .map(|v| v.iter().map(|a| a.parse().unwrap()).collect())
            .map_err(str::to_string);
        assert_eq!(judge(&spec, &result).pass, pass, "{spec_text} {result:?}");
    }

    #[test]
    fn cases() {
        check("", Ok(vec!["10.0.0.5"]), true);
        check("", Err("not found"), false);
        check("", Ok(vec![]), false);
        check("resolves = false", Err("not found"), true);
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
