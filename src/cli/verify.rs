//! `spinup-smoke verify`: checks a signed transcript or DSSE envelope
//! (exit 0 valid, 1 invalid with the reason).

use std::path::PathBuf;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A `boot_transcript_*.json` or its `*.intoto.json` DSSE envelope.
    pub file: PathBuf,
    /// The expected public key (SubjectPublicKeyInfo PEM); pins the key id.
    #[arg(long, value_name = "PUB")]
    pub pubkey: Option<PathBuf>,
    /// The image; its digest must equal the one signed.
    #[arg(long, value_name = "IMG")]
    pub image: Option<PathBuf>,
}

pub fn verify(args: &VerifyArgs) -> i32 {
    match crate::sign::verify::verify_file(
        &args.file,
        args.pubkey.as_deref(),
        args.image.as_deref(),
    ) {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}: valid ({})", args.file.display(), report.summary());
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: INVALID: {e}", args.file.display());
            exit::CHECK_FAILED
        }
    }
}
