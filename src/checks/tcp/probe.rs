//! Connects once to the address, bounded by the deadline; a refused or
//! timed-out connection is a fact, not a probe error.

use std::time::Instant;

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    let started = Instant::now();
    let result = tokio::time::timeout(
        ctx.remaining(),
        tokio::net::TcpStream::connect(spec.address.as_str()),
    )
    .await;
    match result {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tcp::run;

    #[tokio::test]
    async fn connects_to_a_real_listener_and_fails_when_it_is_gone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let spec = Spec {
            address: address.clone(),
            open: true,
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
        };
        assert!(run(&closed, &ProbeContext::for_tests(5)).await.pass);
    }
}
