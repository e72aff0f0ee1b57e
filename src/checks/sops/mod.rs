//! `[check.sops]`: each listed file is sops-encrypted: sops metadata with a
//! MAC, `lastmodified` and at least one recipient (age, PGP or a KMS), and
//! every value `ENC[...]` (no plaintext leaf; the key path of one is named,
//! never its value).

pub mod judge;
pub mod probe;
pub mod spec;

use crate::check::{ProbeContext, Verdict};
pub use spec::Spec;

/// Reads the files, then judges each one's encryption.
pub async fn run(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    match probe::probe(spec, ctx).await {
        Ok(facts) => judge::judge(spec, &facts),
        Err(e) => Verdict::probe_error("the sops files can be read", e),
    }
}
