//! `spinup-smoke verify`: checks a signed transcript or DSSE envelope
//! (exit 0 valid, 1 invalid with the reason or its signer not pinned).

use std::path::PathBuf;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A `boot_transcript_*.json` or its `*.intoto.json` DSSE envelope.
    pub file: PathBuf,
    /// The expected public key (SubjectPublicKeyInfo PEM); pins the key id.
    /// Without it (or --trust-embedded-key) verify exits 1: signer not pinned.
    #[arg(long, value_name = "PUB")]
    pub pubkey: Option<PathBuf>,
    /// Accept the public key the file carries instead of --pubkey: proves the
    /// file is intact, not who signed it (verify warns).
    #[arg(long, conflicts_with = "pubkey")]
    pub trust_embedded_key: bool,
    /// The image; its digest must equal the one signed.
    #[arg(long, value_name = "IMG")]
    pub image: Option<PathBuf>,
}

pub fn verify(args: &VerifyArgs) -> i32 {
    use crate::sign::verify::{Signer, VerifyError};
    let signer = match (&args.pubkey, args.trust_embedded_key) {
        (Some(pubkey), _) => Signer::Pinned(pubkey),
        (None, true) => Signer::TrustEmbedded,
        (None, false) => Signer::Unpinned,
    };
    match crate::sign::verify::verify_file(&args.file, signer, args.image.as_deref()) {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}: valid ({})", args.file.display(), report.summary());
            exit::SUCCESS
        }
        Err(e @ VerifyError::NotPinned { .. }) => {
            eprintln!("{}: NOT VERIFIED: {e}", args.file.display());
            exit::CHECK_FAILED
        }
        Err(e) => {
            eprintln!("{}: INVALID: {e}", args.file.display());
            exit::CHECK_FAILED
        }
    }
}
