//! `[check.http]`: an HTTP(S) request with a deadline; judges status,
//! headers, body and JSON values of the answer.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;

use super::judge;
use super::judge::Facts;
use crate::check::ProbeContext;
use crate::check::Verdict;

/// Bodies are read up to this size.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub url: String,
    /// GET (default), POST, PUT, DELETE, HEAD, PATCH, OPTIONS.
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// PEM file of CA certificates to trust (besides the system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (default false; prefer `ca_file`).
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub follow_redirects: bool,
    /// Connect these host names to these addresses (like curl --resolve).
    #[serde(default)]
    pub resolve: BTreeMap<String, IpAddr>,
    /// Expected status: one code or a list (default 200).
    #[serde(default)]
    pub status: Option<StatusSet>,
    /// Response header name -> substring its value must contain.
    #[serde(default)]
    pub header_contains: BTreeMap<String, String>,
    #[serde(default)]
    pub body_contains: Vec<String>,
    #[serde(default)]
    pub body_not_contains: Vec<String>,
    /// JSON pointer -> expected value, e.g. `json = { "/status" = "ok" }`.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    /// JSON pointers that must exist.
    #[serde(default)]
    pub json_exists: Vec<String>,
}

/// `status = 200` or `status = [200, 302]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<u16>);

impl<'de> Deserialize<'de> for StatusSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StatusSet;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an HTTP status code (e.g. 200) or a list of them")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusSet, E> {
                code(v).map(|c| StatusSet(vec![c]))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusSet, E> {
                self.visit_i64(v as i64)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StatusSet, A::Error> {
                let mut codes = Vec::new();
                while let Some(v) = seq.next_element::<i64>()? {
                    codes.push(code(v)?);
                }
                if codes.is_empty() {
                    return Err(serde::de::Error::custom("status list is empty"));
                }
                Ok(StatusSet(codes))
            }
        }
        fn code<E: serde::de::Error>(v: i64) -> Result<u16, E> {
            if (100..=599).contains(&v) {
                Ok(v as u16)
            } else {
                Err(E::custom(format!(
                    "{v} is not an HTTP status code (100-599)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

pub use crate::error::error_chain;

fn client(spec: &Spec, ctx: &ProbeContext) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(ctx.remaining())
        .connect_timeout(ctx.remaining())
        .danger_accept_invalid_certs(spec.insecure)
        .redirect(if spec.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .user_agent(concat!("spinup-smoke/", env!("CARGO_PKG_VERSION")));
    builder = crate::web::trust_ca_file(builder, spec.ca_file.as_deref())?;
    for (host, ip) in &spec.resolve {
        let port = reqwest::Url::parse(&spec.url)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(443);
        builder = builder.resolve(host, std::net::SocketAddr::new(*ip, port));
    }
    builder.build().map_err(|e| error_chain(&e))
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let started = Instant::now();
    let facts = match gather(spec, ctx).await {
        Ok(mut f) => {
            f.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            f
        }
        Err(error) => Facts {
            error: Some(error),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            ..Facts::default()
        },
    };
    judge::judge(spec, &facts)
}

async fn gather(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let method = spec.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let client = client(spec, ctx)?;
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
        let v = probe(&spec(&format!("url = \"{url}\"\njson = {{ \"/status\" = \"ok\", \"/db/ok\" = true }}\nheader_contains = {{ \"content-type\" = \"json\" }}")), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.metrics.contains_key("latency_ms"));
        let v = probe(
            &spec(&format!(
                "url = \"{url}\"\njson = {{ \"/status\" = \"degraded\" }}"
            )),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("\"ok\""), "{v:?}");
        let v = probe(&spec(&format!("url = \"{url}\"\nstatus = 503")), &ctx).await;
        assert!(!v.pass && v.found.contains("200"), "{v:?}");
        let v = probe(
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
        let v = probe(&spec(&format!("url = \"http://{closed}/\"")), &ctx).await;
        assert!(!v.pass && v.found.contains("refused"), "{v:?}");
        let slow = testutil::serve(
            http_response("200 OK", "text/plain", "late"),
            Duration::from_secs(30),
            None,
        )
        .await;
        let mut ctx = ProbeContext::for_tests(5);
        ctx.deadline = std::time::Instant::now() + Duration::from_millis(400);
        let v = probe(&spec(&format!("url = \"http://{slow}/\"")), &ctx).await;
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
        let v = probe(&spec(&with_ca), &ctx).await;
        assert!(v.pass, "{v:?}");
        let without = format!("url = \"{url}\"\nresolve = {{ \"rave.local\" = \"127.0.0.1\" }}");
        let v = probe(&spec(&without), &ctx).await;
        assert!(
            !v.pass && v.found.to_lowercase().contains("certificate"),
            "{v:?}"
        );
    }

    #[test]
    fn status_accepts_a_code_or_a_list() {
        assert_eq!(
            spec("url = \"x\"\nstatus = 204").status,
            Some(StatusSet(vec![204]))
        );
        assert_eq!(
            spec("url = \"x\"\nstatus = [200, 302]").status,
            Some(StatusSet(vec![200, 302]))
        );
        let e = toml::from_str::<Spec>("url = \"x\"\nstatus = 99")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an HTTP status code"), "{e}");
    }
}
