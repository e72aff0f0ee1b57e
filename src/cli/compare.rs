//! `spinup-smoke compare OLD NEW`: both transcripts verified first (against
//! the pinned key), then compared check by check; the success criteria
//! decide the exit code (0 met, 1 not met or a file did not verify, 2 bad
//! arguments).

use std::path::PathBuf;

use crate::exit;
use crate::report::compare::{self, Criteria, Side, Slower};

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The earlier transcript (`boot_transcript_*.json`), e.g. the last one from main.
    pub old: PathBuf,
    /// The later transcript.
    pub new: PathBuf,
    /// The public key both must be signed with (SubjectPublicKeyInfo PEM).
    #[arg(long, value_name = "PUB")]
    pub pubkey: Option<PathBuf>,
    /// Accept the keys the files carry: proves they are intact, not who signed them.
    #[arg(long, conflicts_with = "pubkey")]
    pub trust_embedded_key: bool,
    /// What NEW must achieve: all-pass, threshold=<0..1> (share of checks
    /// passed) or improvement (nothing newly fails, no passing check
    /// vanished, at least as many pass).
    #[arg(long, default_value = "improvement", value_parser = parse_criteria)]
    pub criteria: Criteria,
    /// A check is slower when it takes at least this many times as long ...
    #[arg(long, default_value_t = 1.5, value_name = "FACTOR")]
    pub slower_factor: f64,
    /// ... and at least this many milliseconds more.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub slower_ms: u64,
    /// `human` (default) or `json` (the comparison and the verdict).
    #[arg(long, default_value = "human", value_parser = ["human", "json"])]
    pub format: String,
}

fn parse_criteria(text: &str) -> Result<Criteria, String> {
    text.parse()
}

pub fn compare(args: &CompareArgs) -> i32 {
    use crate::sign::verify::{verify_and_read, Signer};
    let signer = || match (&args.pubkey, args.trust_embedded_key) {
        (Some(pubkey), _) => Signer::Pinned(pubkey),
        (None, true) => Signer::TrustEmbedded,
        (None, false) => Signer::Unpinned,
    };
    let mut sides = Vec::new();
    for path in [&args.old, &args.new] {
        let doc = match verify_and_read(path, signer(), None) {
            Ok((_, doc)) => doc,
            Err(e) => {
                eprintln!("{}: NOT VERIFIED: {e}; nothing compared", path.display());
                return exit::CHECK_FAILED;
            }
        };
        if doc.get("payloadType").is_some() {
            eprintln!(
                "error: {} is a DSSE envelope; compare takes the transcripts (boot_transcript_*.json)",
                path.display()
            );
            return exit::USAGE;
        }
        match Side::from_transcript(&doc) {
            Ok(side) => sides.push(side),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return exit::USAGE;
            }
        }
    }
    let (old, new) = (&sides[0], &sides[1]);
    let slower = Slower {
        factor: args.slower_factor,
        min_ms: args.slower_ms,
    };
    let cmp = compare::compare(old, new, slower);
    let verdict = compare::judge(args.criteria, old, new, &cmp);
    if args.format == "json" {
        let doc = serde_json::json!({
            "old": { "path": args.old, "session": old.session, "overall_status": old.overall },
            "new": { "path": args.new, "session": new.session, "overall_status": new.overall },
            "comparison": cmp,
            "criteria_met": verdict.0,
            "verdict": verdict.1,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
    } else {
        print!("{}", compare::render(old, new, &cmp, &verdict));
    }
    if verdict.0 {
        exit::SUCCESS
    } else {
        exit::CHECK_FAILED
    }
}
