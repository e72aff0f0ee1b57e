//! `spinup-smoke verify`: checks a signed transcript, DSSE envelope or proof
//! bundle (a gzip file: `report::bundle`) (exit 0 valid, 1 invalid with the
//! reason or its signer not pinned).

use std::path::PathBuf;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A `boot_transcript_*.json`, its `*.intoto.json` DSSE envelope, or a
    /// proof bundle (`spinup-smoke bundle`; told by its gzip content).
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
    /// `human` (default) or `json`: one object with `valid`, `pinned`, the
    /// file kind, status, key id, image digest, warnings and the error.
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    pub format: String,
}

pub fn verify(args: &VerifyArgs) -> i32 {
    use crate::sign::verify::{Signer, VerifyError};
    let signer = match (&args.pubkey, args.trust_embedded_key) {
        (Some(pubkey), _) => Signer::Pinned(pubkey),
        (None, true) => Signer::TrustEmbedded,
        (None, false) => Signer::Unpinned,
    };
    if is_bundle(&args.file) {
        return verify_bundle(args, signer);
    }
    let result = crate::sign::verify::verify_file(&args.file, signer, args.image.as_deref());
    let code = match &result {
        Ok(_) => exit::SUCCESS,
        Err(_) => exit::CHECK_FAILED,
    };
    if args.format == "json" {
        let doc = match &result {
            Ok(report) => serde_json::json!({
                "file": args.file,
                "valid": true,
                "pinned": args.pubkey.is_some(),
                "kind": match report.kind {
                    crate::sign::verify::FileKind::Transcript => "transcript",
                    crate::sign::verify::FileKind::Attestation => "dsse_attestation",
                },
                "status": report.status,
                "key_id": report.key_id,
                "image_digest": report.image_digest,
                "warnings": report.warnings,
                "error": null,
            }),
            Err(e) => serde_json::json!({
                "file": args.file,
                "valid": false,
                "pinned": args.pubkey.is_some(),
                "error": e.to_string(),
            }),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
        return code;
    }
    match result {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}: valid ({})", args.file.display(), report.summary());
        }
        Err(e @ VerifyError::NotPinned { .. }) => {
            eprintln!("{}: NOT VERIFIED: {e}", args.file.display());
        }
        Err(e) => {
            eprintln!("{}: INVALID: {e}", args.file.display());
        }
    }
    code
}

/// Whether `path` starts with gzip's magic number (a bundle, whatever its name).
fn is_bundle(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| crate::report::bundle::archive::is_gzip(&head))
}

fn verify_bundle(args: &VerifyArgs, signer: crate::sign::verify::Signer<'_>) -> i32 {
    use crate::report::bundle::BundleError;
    let result = crate::report::bundle::verify(&args.file, signer, args.image.as_deref());
    let code = match &result {
        Ok(_) => exit::SUCCESS,
        Err(_) => exit::CHECK_FAILED,
    };
    if args.format == "json" {
        let doc = match &result {
            Ok(report) => serde_json::json!({
                "file": args.file,
                "valid": true,
                "pinned": args.pubkey.is_some(),
                "kind": "bundle",
                "status": report.transcript.status,
                "key_id": report.transcript.key_id,
                "image_digest": report.transcript.image_digest,
                "transcript": report.manifest.transcript,
                "members": report.manifest.members,
                "warnings": report.warnings,
                "error": null,
            }),
            Err(e) => serde_json::json!({
                "file": args.file,
                "valid": false,
                "pinned": args.pubkey.is_some(),
                "kind": "bundle",
                "error": e.to_string(),
                "members": e.members(),
            }),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
        return code;
    }
    match result {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: valid (bundle: {} members and the signed manifest; {})",
                args.file.display(),
                report.manifest.members.len(),
                report.transcript.summary()
            );
        }
        Err(e @ BundleError::NotPinned { .. }) => {
            eprintln!("{}: NOT VERIFIED: {e}", args.file.display());
        }
        Err(e) => {
            eprintln!("{}: INVALID: {e}", args.file.display());
        }
    }
    code
}
