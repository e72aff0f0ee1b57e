//! Connects once to the address on the check's route, bounded by the
//! deadline; a refused or timed-out connection is a fact, not a probe error.
//!
//! Through a tunnel the local end of the forward always accepts; a far end
//! that refuses shows as the forward closing the connection at once. So a
//! tunnelled connection counts as open only when it is still open (or has
//! sent data) after `SETTLE`.

use std::time::{Duration, Instant};

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};

/// How long a tunnelled connection must stay open to count as accepted.
pub const SETTLE: Duration = Duration::from_millis(300);

pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let started = Instant::now();
    let elapsed = || started.elapsed().as_secs_f64() * 1000.0;
    let failed = |error: String| Facts {
        connected: false,
        peer: None,
        error: Some(error),
        elapsed_ms: elapsed(),
    };
    let address = match route {
        Route::Direct => spec.address.clone(),
        Route::Tunnel(_) => {
            let forwarded = match via::split_host_port(&spec.address) {
                Ok((host, port)) => via::tcp_endpoint(route, &host, port, ctx.deadline).await,
                Err(e) => Err(e),
            };
            match forwarded {
                Ok(local) => local,
                Err(e) => return failed(e),
            }
        }
    };
    let result = tokio::time::timeout(
        ctx.remaining(),
        tokio::net::TcpStream::connect(address.as_str()),
    )
    .await;
    let stream = match result {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(_) => return failed("connect timed out at the check's deadline".into()),
    };
    if !route.is_direct() {
        let settle = SETTLE.min(ctx.remaining());
        let mut byte = [0u8; 1];
        match tokio::time::timeout(settle, stream.peek(&mut byte)).await {
            Ok(Ok(0)) => {
                return failed(format!(
                    "the host closed the forwarded connection to {} at once (refused on the host's side)",
                    spec.address
                ))
            }
            Ok(Err(e)) => return failed(format!("the forwarded connection failed: {e}")),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    Facts {
        connected: true,
        peer: match route {
            Route::Direct => stream.peer_addr().ok().map(|a| a.to_string()),
            Route::Tunnel(_) => Some(format!("{} (as the host sees it)", spec.address)),
        },
        error: None,
        elapsed_ms: elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tcp::run;
    use crate::checks::testutil::RelayTunnel;
    use std::sync::Arc;

    #[tokio::test]
    async fn connects_to_a_real_listener_and_fails_when_it_is_gone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let spec = Spec {
            address: address.clone(),
            open: true,
            via: None,
        };
        let v = run(&spec, &ProbeContext::for_tests(5)).await;
        assert!(v.pass, "{v:?}");
        drop(listener);
        let v = run(&spec, &ProbeContext::for_tests(5)).await;
        assert!(!v.pass);
        assert!(v.found.contains("refused"), "{v:?}");
        let closed = Spec {
            address,
            open: false,
            via: None,
        };
        assert!(run(&closed, &ProbeContext::for_tests(5)).await.pass);
    }

    fn spec(text: &str) -> Spec {
        toml::from_str(text).unwrap()
    }

    /// A service reachable only "from the host" (its name resolves only
    /// there) passes through the tunnel, not directly; a refused far end
    /// and a refusing tunnel fail with their reasons.
    #[tokio::test]
    async fn via_host_connects_through_the_tunnel() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnel = Arc::new(RelayTunnel::new().map_name("db.host-only.invalid", "127.0.0.1"));
        let mut ctx = ProbeContext::for_tests(5);
        ctx.tunnel = Some(tunnel.clone());
        let address = format!("db.host-only.invalid:{port}");

        let v = run(&spec(&format!("address = \"{address}\"\nvia = \"host\"")), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert_eq!(tunnel.connections(), 1);
        assert!(
            v.evidence.contains("via ssh relay@test-host:22 (forwarded)"),
            "{v:?}"
        );
        // The host's default applies without the field; `direct` overrides it.
        ctx.via_host = true;
        assert!(run(&spec(&format!("address = \"{address}\"")), &ctx).await.pass);
        assert_eq!(tunnel.connections(), 2);
        let v = run(&spec(&format!("address = \"{address}\"\nvia = \"direct\"")), &ctx).await;
        assert!(!v.pass && v.evidence.is_empty(), "{v:?}");
        assert_eq!(tunnel.connections(), 2);

        // Nothing listens on the host's side: the forward closes at once.
        drop(listener);
        let v = run(&spec(&format!("address = \"{address}\"")), &ctx).await;
        assert!(!v.pass && v.found.contains("refused on the host's side"), "{v:?}");
        assert!(
            run(&spec(&format!("address = \"{address}\"\nopen = false")), &ctx)
                .await
                .pass
        );

        tunnel.refuse();
        let v = run(&spec(&format!("address = \"{address}\"")), &ctx).await;
        assert!(
            !v.pass
                && v.found.contains("cannot forward to db.host-only.invalid")
                && v.found.contains("connection to the host is down"),
            "{v:?}"
        );
    }
}
