//! Sends the request of a `[check.http]` table within the deadline and
//! records the answer (status, headers, up to `MAX_BODY` of the body) or
//! why there was none, with the latency.

use std::time::Instant;

use super::judge::Facts;
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::checks::via::{self, Route};
use crate::error::error_chain;

/// Bodies are read up to this size.
pub const MAX_BODY: usize = 1 << 20;

async fn client(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Result<reqwest::Client, String> {
    if !route.is_direct() && !spec.resolve.is_empty() {
        return Err(RESOLVE_THROUGH_TUNNEL.into());
    }
    let mut builder = via::http_client_builder(route, spec.ca_file.as_deref(), ctx.deadline)
        .await?
        .timeout(ctx.remaining())
        .connect_timeout(ctx.remaining())
        .danger_accept_invalid_certs(spec.insecure)
        .redirect(if spec.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .user_agent(crate::web::USER_AGENT);
    for (host, ip) in &spec.resolve {
        let port = reqwest::Url::parse(&spec.url)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(443);
        builder = builder.resolve(host, std::net::SocketAddr::new(*ip, port));
    }
    builder.build().map_err(|e| error_chain(&e))
}

/// Why `resolve` and a tunnel do not mix.
pub const RESOLVE_THROUGH_TUNNEL: &str = "`resolve` pins addresses for connections from this machine, but this check connects from its host (via = \"host\"), where names are resolved by the host: remove `resolve`, or set via = \"direct\"";

/// The answer, or an empty `Facts` with the `error` that prevented one.
pub async fn probe(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Facts {
    let started = Instant::now();
    match gather(spec, ctx, route).await {
        Ok(mut f) => {
            f.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            f
        }
        Err(error) => Facts {
            error: Some(error),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            ..Facts::default()
        },
    }
}

async fn gather(spec: &Spec, ctx: &ProbeContext, route: &Route) -> Result<Facts, String> {
    let method = spec.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let client = client(spec, ctx, route).await?;
    let mut request = client.request(method, &spec.url);
    for (k, v) in &spec.headers {
        request = request.header(k, v);
    }
    if let Some(body) = &spec.body {
        request = request.body(body.clone());
    }
    let work = async {
        let mut response = request.send().await.map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let version = format!("{:?}", response.version());
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() > room {
                truncated = true;
                break;
            }
        }
        Ok::<Facts, String>(Facts {
            status: Some(status),
            version,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            body_truncated: truncated,
            ..Facts::default()
        })
    };
    match tokio::time::timeout(ctx.remaining(), work).await {
        Ok(r) => r,
        Err(_) => Err("no complete answer before the deadline".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::run;
    use super::*;
    use crate::checks::testutil::{self, http_response};
    use std::time::Duration;

    fn spec(text: &str) -> Spec {
        toml::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn status_body_and_json_of_a_real_server() {
        let addr = testutil::serve(
            http_response(
                "200 OK",
                "application/json",
                r#"{"status":"ok","db":{"ok":true}}"#,
            ),
            Duration::ZERO,
            None,
        )
        .await;
        let ctx = ProbeContext::for_tests(5);
        let url = format!("http://{addr}/health");
        let v = run(&spec(&format!("url = \"{url}\"\njson = {{ \"/status\" = \"ok\", \"/db/ok\" = true }}\nheader_contains = {{ \"content-type\" = \"json\" }}")), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.metrics.contains_key("latency_ms"));
        let v = run(
            &spec(&format!(
                "url = \"{url}\"\njson = {{ \"/status\" = \"degraded\" }}"
            )),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("\"ok\""), "{v:?}");
        let v = run(&spec(&format!("url = \"{url}\"\nstatus = 503")), &ctx).await;
        assert!(!v.pass && v.found.contains("200"), "{v:?}");
        let v = run(
            &spec(&format!("url = \"{url}\"\nbody_contains = [\"missing\"]")),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.evidence.contains("HTTP/1.1 200"), "{v:?}");
    }

    #[tokio::test]
    async fn refused_and_slow_servers_fail_with_the_reason() {
        let ctx = ProbeContext::for_tests(5);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = l.local_addr().unwrap();
        drop(l);
        let v = run(&spec(&format!("url = \"http://{closed}/\"")), &ctx).await;
        assert!(!v.pass && v.found.contains("refused"), "{v:?}");
        let slow = testutil::serve(
            http_response("200 OK", "text/plain", "late"),
            Duration::from_secs(30),
            None,
        )
        .await;
        let mut ctx = ProbeContext::for_tests(5);
        ctx.deadline = std::time::Instant::now() + Duration::from_millis(400);
        let v = run(&spec(&format!("url = \"http://{slow}/\"")), &ctx).await;
        assert!(!v.pass, "{v:?}");
        assert!(
            v.found.contains("timed out") || v.found.contains("deadline"),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn https_needs_the_right_ca() {
        let ca = testutil::ca();
        let addr = testutil::serve(
            http_response("200 OK", "text/plain", "secure"),
            Duration::ZERO,
            Some(testutil::leaf(&ca, &["rave.local"], 30)),
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).unwrap();
        let ctx = ProbeContext::for_tests(5);
        let url = format!("https://rave.local:{}/", addr.port());
        let with_ca = format!("url = \"{url}\"\nca_file = \"{}\"\nresolve = {{ \"rave.local\" = \"127.0.0.1\" }}\nbody_contains = [\"secure\"]", ca_file.display());
        let v = run(&spec(&with_ca), &ctx).await;
        assert!(v.pass, "{v:?}");
        let without = format!("url = \"{url}\"\nresolve = {{ \"rave.local\" = \"127.0.0.1\" }}");
        let v = run(&spec(&without), &ctx).await;
        assert!(
            !v.pass && v.found.to_lowercase().contains("certificate"),
            "{v:?}"
        );
    }

    /// The URL's name resolves only on the host: the request, and the
    /// redirect it follows, go through the tunnel's SOCKS proxy; directly
    /// the name does not resolve; a refusing tunnel fails with its reason,
    /// and `resolve` with a tunnel is refused.
    #[tokio::test]
    async fn via_host_requests_through_the_tunnels_socks_proxy() {
        let target = testutil::serve(
            http_response("200 OK", "text/plain", "from the host"),
            Duration::ZERO,
            None,
        )
        .await;
        let redirect = testutil::serve(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: http://web.host-only.invalid:{}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                target.port()
            ),
            Duration::ZERO,
            None,
        )
        .await;
        let tunnel = std::sync::Arc::new(
            testutil::RelayTunnel::new().map_name("web.host-only.invalid", "127.0.0.1"),
        );
        let mut ctx = ProbeContext::for_tests(5);
        ctx.tunnel = Some(tunnel.clone());
        ctx.via_host = true;
        let start = format!("http://web.host-only.invalid:{}/start", redirect.port());
        let table = format!(
            "url = \"{start}\"\nfollow_redirects = true\nbody_contains = [\"from the host\"]"
        );
        let v = run(&spec(&table), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.starts_with("via ssh relay@test-host:22 (forwarded)"), "{v:?}");
        assert_eq!(tunnel.connections(), 2, "the request and its redirect");
        let v = run(&spec(&format!("{table}\nvia = \"direct\"")), &ctx).await;
        assert!(!v.pass && v.found.contains("dns error"), "{v:?}");
        let v = run(
            &spec(&format!("{table}\nresolve = {{ \"web.host-only.invalid\" = \"127.0.0.1\" }}")),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("remove `resolve`"), "{v:?}");
        tunnel.refuse();
        let v = run(&spec(&table), &ctx).await;
        assert!(
            !v.pass && v.found.contains("no SOCKS proxy through ssh relay@test-host:22"),
            "{v:?}"
        );
    }
}
