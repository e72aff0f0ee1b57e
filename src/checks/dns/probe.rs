//! Resolves the name through the system resolver (getaddrinfo: /etc/hosts,
//! then DNS), bounded by the deadline; no answer is a fact too.

use std::net::IpAddr;

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    let lookup = tokio::net::lookup_host((spec.name.as_str(), 0));
    match tokio::time::timeout(ctx.remaining(), lookup).await {
        Ok(Ok(addrs)) => {
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.sort();
            ips.dedup();
            Ok(ips)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer before the deadline".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::dns::run;

    #[tokio::test]
    async fn localhost_resolves_and_invalid_names_do_not() {
        let ctx = ProbeContext::for_tests(10);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        let v = run(
            &spec("name = \"localhost\"\naddresses_include = [\"127.0.0.1\"]"),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        let v = run(&spec("name = \"no-such-host.invalid\""), &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(
            run(
                &spec("name = \"no-such-host.invalid\"\nresolves = false"),
                &ctx
            )
            .await
            .pass
        );
    }
}
