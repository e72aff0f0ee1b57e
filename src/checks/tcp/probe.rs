//! `[check.tcp]`: connect to an address; optionally expect it closed.

use std::time::Instant;

use serde::Deserialize;

use super::judge;
use super::judge::Facts;
use crate::check::ProbeContext;
use crate::check::Verdict;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `host:port` (names are resolved).
    pub address: String,
    /// `true` (default): expect a connection; `false`: expect it refused.
    #[serde(default = "yes")]
    pub open: bool,
}

fn yes() -> bool {
    true
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let started = Instant::now();
    let result = tokio::time::timeout(
        ctx.remaining(),
        tokio::net::TcpStream::connect(spec.address.as_str()),
    )
    .await;
    let facts = match result {
        Ok(Ok(stream)) => Facts {
            connected: true,
            peer: stream.peer_addr().ok().map(|a| a.to_string()),
            error: None,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
        Ok(Err(e)) => Facts {
            connected: false,
            peer: None,
            error: Some(e.to_string()),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
        Err(_) => Facts {
            connected: false,
            peer: None,
            error: Some("connect timed out at the check's deadline".into()),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
    };
    judge::judge(spec, &facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_to_a_real_listener_and_fails_when_it_is_gone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let spec = Spec {
            address: address.clone(),
            open: true,
        };
        let v = probe(&spec, &ProbeContext::for_tests(5)).await;
        assert!(v.pass, "{v:?}");
        drop(listener);
        let v = probe(&spec, &ProbeContext::for_tests(5)).await;
        assert!(!v.pass);
        assert!(v.found.contains("refused"), "{v:?}");
        let closed = Spec {
            address,
            open: false,
        };
        assert!(probe(&closed, &ProbeContext::for_tests(5)).await.pass);
    }
}
