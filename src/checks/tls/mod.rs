//! `[check.tls]`: a real TLS handshake; chain, expiry, names, key, protocol.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Shakes hands on the check's route and records the chain (and, for
/// `min_version`, how the server answers older versions), then judges it.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    let mut facts = probe::probe(spec, ctx, &route).await;
    if facts.error.is_none() && spec.min_version.is_some() {
        // openssl offers the older versions from this machine: through the
        // same forward as the handshake when the route is the host's.
        let address = match &route {
            via::Route::Direct => Ok(spec.address.clone()),
            via::Route::Tunnel(_) => match via::split_host_port(&spec.address) {
                Ok((host, port)) => via::tcp_endpoint(&route, &host, port, ctx.deadline).await,
                Err(e) => Err(e),
            },
        };
        match address {
            Ok(address) => facts.older = probe::older_versions(spec, &address, ctx).await,
            Err(e) => facts.error = Some(e),
        }
    }
    via::annotate(judge::judge(spec, &facts), &route)
}
