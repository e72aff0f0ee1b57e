//! How a network check reaches its service: the `via` field of tcp, tls,
//! postgres, http, prometheus, matrix and oidc. `via = "direct"` connects
//! from this machine; `via = "host"` connects from the check's host, through
//! its tunnel (`ProbeContext::tunnel`), so services that listen only on the
//! host's loopback are reachable. Without the field the host's default
//! (`ProbeContext::via_host`) applies. A host without a tunnel is this
//! machine: `via = "host"` then connects directly.
//!
//! Each probe asks one function: `tcp_endpoint` (tcp, tls, postgres) or
//! `http_client_builder` (HTTP kinds: the client connects through the
//! tunnel's SOCKS5 proxy, `socks5h`, so redirects, discovery links and names
//! are resolved on the host).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use crate::check::{ProbeContext, Verdict};
use crate::os::Tunnel;

/// The `via` field as written in a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Connect from this machine.
    Direct,
    /// Connect from the check's host (through its tunnel, if it has one).
    Host,
}

impl<'de> Deserialize<'de> for Via {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Via, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "direct" => Ok(Via::Direct),
            "host" => Ok(Via::Host),
            other => Err(serde::de::Error::custom(format!(
                "`via = {other:?}` is not a route: write `via = \"direct\"` (connect from this machine) or `via = \"host\"` (connect from the check's host, through its ssh connection)"
            ))),
        }
    }
}

/// The route one attempt takes.
#[derive(Clone)]
pub enum Route {
    /// From this machine.
    Direct,
    /// Through the check host's tunnel.
    Tunnel(Arc<dyn Tunnel>),
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Direct => f.write_str("Direct"),
            Route::Tunnel(t) => write!(f, "Tunnel({})", t.describe()),
        }
    }
}

impl Route {
    /// The evidence line of a tunnelled attempt ("via ssh rave@p6:22 (forwarded)").
    pub fn note(&self) -> Option<String> {
        match self {
            Route::Direct => None,
            Route::Tunnel(t) => Some(format!("via {} (forwarded)", t.describe())),
        }
    }
    pub fn is_direct(&self) -> bool {
        matches!(self, Route::Direct)
    }
}

/// The route of a check with `via` (else the host's default) in `ctx`.
pub fn route(via: Option<Via>, ctx: &ProbeContext) -> Route {
    let from_host = match via {
        Some(Via::Host) => true,
        Some(Via::Direct) => false,
        None => ctx.via_host,
    };
    match (&ctx.tunnel, from_host) {
        (Some(tunnel), true) => Route::Tunnel(tunnel.clone()),
        _ => Route::Direct,
    }
}

/// Adds the route to a verdict's evidence (first line) when it was tunnelled.
pub fn annotate(mut verdict: Verdict, route: &Route) -> Verdict {
    if let Some(note) = route.note() {
        verdict.evidence = if verdict.evidence.is_empty() {
            note
        } else {
            format!("{note}\n{}", verdict.evidence)
        };
    }
    verdict
}

/// Splits `host:port` (`[v6]:port` too) into the host and the port.
pub fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("`{address}` has no port: write host:port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("`{address}`: `{port}` is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("`{address}` has no host: write host:port"));
    }
    Ok((host.to_string(), port))
}

/// Where to connect for `host:port` on this route: the same address when
/// direct, else a local forward that reaches it as the host sees it.
pub async fn tcp_endpoint(
    route: &Route,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<String, String> {
    match route {
        Route::Direct => Ok(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }),
        Route::Tunnel(tunnel) => {
            let work = tunnel.forward_tcp(host, port, deadline);
            let local = within(deadline, work).await.map_err(|e| {
                format!(
                    "cannot forward to {host}:{port} through {}: {e}",
                    tunnel.describe()
                )
            })?;
            Ok(local.to_string())
        }
    }
}

/// Where to connect for the unix socket `path` on this route: the path
/// itself when direct, else a local forward of the host's socket.
pub async fn unix_endpoint(
    route: &Route,
    path: &Path,
    deadline: Instant,
) -> Result<PathBuf, String> {
    match route {
        Route::Direct => Ok(path.to_path_buf()),
        Route::Tunnel(tunnel) => {
            let text = path.display().to_string();
            let work = tunnel.forward_unix(&text, deadline);
            within(deadline, work)
                .await
                .map_err(|e| format!("cannot forward {text} through {}: {e}", tunnel.describe()))
        }
    }
}

/// An HTTP client builder (`web::client_builder`: no redirect followed, the
/// CA of `ca_file` trusted) that connects on this route: through the
/// tunnel's SOCKS5 proxy with names resolved on the host (`socks5h`).
pub async fn http_client_builder(
    route: &Route,
    ca_file: Option<&Path>,
    deadline: Instant,
) -> Result<reqwest::ClientBuilder, String> {
    let builder = crate::web::client_builder(ca_file)?;
    match socks_proxy(route, deadline).await? {
        None => Ok(builder),
        Some(proxy) => crate::web::through_socks_proxy(builder, proxy),
    }
}

/// The SOCKS5 proxy an HTTP client on this route goes through (`None`:
/// direct), bounded by the deadline.
pub async fn socks_proxy(
    route: &Route,
    deadline: Instant,
) -> Result<Option<std::net::SocketAddr>, String> {
    match route {
        Route::Direct => Ok(None),
        Route::Tunnel(tunnel) => within(deadline, tunnel.socks_proxy(deadline))
            .await
            .map(Some)
            .map_err(|e| format!("no SOCKS proxy through {}: {e}", tunnel.describe())),
    }
}

/// Runs a tunnel step, bounded by the deadline.
async fn within<T>(
    deadline: Instant,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), work).await {
        Ok(result) => result,
        Err(_) => Err("the tunnel did not answer before the check's deadline".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::RelayTunnel;

    #[derive(Debug, Deserialize)]
    struct Table {
        #[allow(dead_code)]
        via: Via,
    }

    #[test]
    fn via_parses_and_a_typo_names_both_routes() {
        for (text, via) in [("direct", Via::Direct), ("host", Via::Host)] {
            let t: Table = toml::from_str(&format!("via = \"{text}\"")).unwrap();
            assert_eq!(t.via, via);
        }
        let e = toml::from_str::<Table>("via = \"ssh\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`via = \"ssh\"` is not a route") && e.contains("via = \"host\""),
            "{e}"
        );
    }

    #[test]
    fn the_field_wins_over_the_hosts_default_and_no_tunnel_is_direct() {
        let mut ctx = ProbeContext::for_tests(5);
        assert!(route(Some(Via::Host), &ctx).is_direct(), "this machine");
        ctx.tunnel = Some(Arc::new(RelayTunnel::new()));
        assert!(!route(Some(Via::Host), &ctx).is_direct());
        assert!(route(Some(Via::Direct), &ctx).is_direct());
        assert!(route(None, &ctx).is_direct(), "default direct");
        ctx.via_host = true;
        assert!(!route(None, &ctx).is_direct(), "default from the host");
        assert!(route(Some(Via::Direct), &ctx).is_direct());
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(split_host_port("db:5432").unwrap(), ("db".into(), 5432));
        assert_eq!(split_host_port("[::1]:443").unwrap(), ("::1".into(), 443));
        assert!(split_host_port("db").unwrap_err().contains("no port"));
        assert!(split_host_port("db:x").unwrap_err().contains("not a port"));
        assert!(split_host_port(":1").unwrap_err().contains("no host"));
    }
}
