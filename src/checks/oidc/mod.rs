//! `[check.oidc]`: an OpenID Connect provider: its discovery document, a
//! sign-in (authorization code + PKCE + nonce; the ID token's signature,
//! iss, aud, exp and nonce verified; userinfo's `sub` matches), and a wrong
//! password, a foreign redirect_uri and tampered tokens refused.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
use crate::checks::via;
pub use spec::Spec;

/// Gathers the facts on the check's route and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    let route = via::route(spec.via, ctx);
    via::annotate(
        judge::judge(spec, &probe::probe(spec, ctx, &route).await),
        &route,
    )
}
