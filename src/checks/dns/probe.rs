//! `[check.dns]`: name resolution through the system resolver (getaddrinfo:
//! /etc/hosts, then DNS), bounded by the deadline.

use std::net::IpAddr;

use serde::Deserialize;

use super::judge;
use crate::check::ProbeContext;
use crate::check::Verdict;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    /// Expect the name to resolve (default) or not.
    #[serde(default = "yes")]
    pub resolves: bool,
    /// Addresses that must be among the answers.
    #[serde(default)]
    pub addresses_include: Vec<IpAddr>,
    #[serde(default)]
    pub min_addresses: Option<usize>,
}

fn yes() -> bool {
    true
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let lookup = tokio::net::lookup_host((spec.name.as_str(), 0));
    let result = match tokio::time::timeout(ctx.remaining(), lookup).await {
        Ok(Ok(addrs)) => {
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.sort();
            ips.dedup();
            Ok(ips)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer before the deadline".to_string()),
    };
    judge::judge(spec, &result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_and_invalid_names_do_not() {
        let ctx = ProbeContext::for_tests(10);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        let v = probe(
            &spec("name = \"localhost\"\naddresses_include = [\"127.0.0.1\"]"),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        let v = probe(&spec("name = \"no-such-host.invalid\""), &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(
            probe(
                &spec("name = \"no-such-host.invalid\"\nresolves = false"),
                &ctx
            )
            .await
            .pass
        );
    }
}
