//! `[check.ports]`: which sockets listen on this host, from /proc/net
//! (tcp, tcp6, udp, udp6), against an expected set or an allow-list.

use serde::Deserialize;

use crate::judge::{self, Verdict};
use crate::probe::ProbeContext;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Ports that must be listening.
    #[serde(default)]
    pub listening: Vec<u16>,
    /// Ports that must not be listening.
    #[serde(default)]
    pub not_listening: Vec<u16>,
    /// When set, no other port may listen (the allow-list).
    #[serde(default)]
    pub allowed: Option<Vec<u16>>,
    /// Count sockets bound only to loopback for `allowed` (default false).
    #[serde(default)]
    pub include_loopback: bool,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let protocol = spec.protocol;
    let read = tokio::task::spawn_blocking(move || {
        let names = match protocol {
            Protocol::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
            Protocol::Udp => ["/proc/net/udp", "/proc/net/udp6"],
        };
        let mut sockets = Vec::new();
        let mut read_any = false;
        for name in names {
            if let Ok(text) = std::fs::read_to_string(name) {
                read_any = true;
                sockets.extend(judge::ports::parse_proc_net(
                    &text,
                    protocol == Protocol::Tcp,
                ));
            }
        }
        read_any.then_some(sockets)
    });
    match tokio::time::timeout(ctx.remaining(), read).await {
        Ok(Ok(Some(sockets))) => judge::ports::judge(spec, &sockets),
        Ok(Ok(None)) => Verdict::probe_error(
            "listening sockets can be read",
            "cannot read /proc/net (is /proc mounted?)",
        ),
        _ => Verdict::probe_error(
            "listening sockets can be read",
            "reading /proc/net did not finish before the deadline",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sees_a_real_listener_and_its_absence() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ctx = ProbeContext::for_tests(5);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        assert!(
            probe(&spec(&format!("listening = [{port}]")), &ctx)
                .await
                .pass
        );
        let v = probe(&spec(&format!("not_listening = [{port}]")), &ctx).await;
        assert!(!v.pass && v.found.contains(&port.to_string()), "{v:?}");
        // Loopback listeners count against the allow-list only when asked.
        let v = probe(&spec("allowed = []\ninclude_loopback = true"), &ctx).await;
        assert!(!v.pass && v.found.contains(&format!("{port}")), "{v:?}");
        drop(listener);
        let v = probe(&spec(&format!("listening = [{port}]")), &ctx).await;
        assert!(!v.pass, "{v:?}");
    }
}
