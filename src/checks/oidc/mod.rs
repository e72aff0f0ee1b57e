//! `[check.oidc]`: an OpenID Connect provider: its discovery document, a
//! sign-in (authorization code + PKCE + nonce; the ID token's signature,
//! iss, aud, exp and nonce verified; userinfo's `sub` matches), and a wrong
//! password, a foreign redirect_uri and tampered tokens refused.

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Gathers the facts and judges them.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    judge::judge(spec, &probe::probe(spec, ctx).await)
}
