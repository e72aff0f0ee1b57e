//! `spinup-smoke bundle TRANSCRIPT`: packs a run's artifact set and its
//! evidence into a proof bundle whose manifest the run's key signs
//! (`report::bundle`); `verify` checks it.

use std::path::PathBuf;

use crate::error::UserError;
use crate::exit;

use super::shared::report_user_errors;

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// The run's transcript (`boot_transcript_*.json`); the rest of its
    /// artifact set and the evidence it names are taken from beside it.
    pub transcript: PathBuf,
    /// The bundle to write (default: `<stem>.bundle.tar.gz` beside the transcript).
    #[arg(long, value_name = "FILE.tar.gz")]
    pub out: Option<PathBuf>,
    /// The key the run signed with (PKCS#8 PEM); it signs the manifest.
    #[arg(long, value_name = "PATH", env = "SPINUP_SIGNING_KEY")]
    pub key: Option<PathBuf>,
}

pub fn bundle(args: &BundleArgs) -> i32 {
    let Some(key_path) = &args.key else {
        return report_user_errors(
            &UserError::new("no signing key: the bundle's manifest is signed with the run's key")
                .field("--key")
                .hint("pass --key (or set SPINUP_SIGNING_KEY) with the key the run signed with")
                .into(),
        );
    };
    let key = match crate::sign::keys::load_signing_key(key_path) {
        Ok(k) => k,
        Err(e) => return report_user_errors(&e.into()),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let name = args
            .transcript
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name.strip_suffix(".json").unwrap_or(&name);
        args.transcript
            .with_file_name(format!("{stem}.bundle.tar.gz"))
    });
    match crate::report::bundle::write(&args.transcript, &out, &key) {
        Ok(bundled) => {
            for entry in &bundled.manifest.members {
                println!("{:>10}  {}  {}", entry.size, entry.sha256, entry.name);
            }
            println!(
                "bundle: {} ({} members and the manifest, signed by key id {})",
                bundled.path.display(),
                bundled.manifest.members.len(),
                key.key_id()
            );
            exit::SUCCESS
        }
        Err(e) => report_user_errors(&e.into()),
    }
}
