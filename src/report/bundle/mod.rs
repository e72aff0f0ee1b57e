//! Proof bundles: one tar.gz holding a run's artifact set (transcript, DSSE
//! envelope, JUnit report, console log), the evidence files its transcript
//! names (VM serial consoles in the artifacts directory), and a manifest of
//! every member's SHA-256 and size, signed as an in-toto statement in a
//! DSSE envelope with the run's own key. `verify` checks a bundle whole:
//! the manifest's signature, every member against it (changed, missing,
//! extra), then the transcript and envelope inside as files of their own.

pub mod archive;
pub mod manifest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::UserError;
use crate::redact::Redactor;
use crate::sign::verify::{
    envelope_statement, render, verify_bytes, Signer, VerifyError, VerifyReport,
};
use crate::sign::SigningMaterial;

use self::manifest::{Manifest, Problem, MANIFEST, MANIFEST_ENVELOPE};

/// The files of one run's artifact set, by suffix after the stem.
const SET: [&str; 4] = [".json", ".intoto.json", ".junit.xml", ".console.log"];

/// A member's name and bytes.
pub type Member = (String, Vec<u8>);

/// What `write` put into the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundled {
    pub path: PathBuf,
    pub manifest: Manifest,
}

/// `boot_transcript_X.json` -> `boot_transcript_X`.
fn stem_of(transcript: &Path) -> Result<(PathBuf, String), UserError> {
    let name = transcript
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".json")
        .filter(|s| !s.ends_with(".intoto") && !s.is_empty())
        .ok_or_else(|| {
            UserError::new(format!(
                "{} is not a transcript (boot_transcript_*.json)",
                transcript.display()
            ))
            .field("TRANSCRIPT")
            .hint("pass the transcript a run wrote, not its .intoto.json envelope")
        })?;
    let dir = transcript
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir.to_path_buf(), stem.to_string()))
}

/// Reads `path` if it is a regular file (never through a symbolic link).
fn read_regular(path: &Path) -> Result<Vec<u8>, UserError> {
    let meta = path.symlink_metadata().map_err(|e| {
        UserError::new(format!("cannot read {}: {e}", path.display()))
            .in_file(path)
            .hint("bundle the transcript in the directory its run wrote it to, with the rest of its artifact set")
    })?;
    if !meta.is_file() {
        return Err(UserError::new(format!(
            "{} is not a regular file; a bundle takes no links",
            path.display()
        ))
        .in_file(path));
    }
    if meta.len() > archive::MAX_BYTES {
        return Err(UserError::new(format!(
            "{} is larger than a bundle may be ({} bytes)",
            path.display(),
            archive::MAX_BYTES
        ))
        .in_file(path));
    }
    std::fs::read(path)
        .map_err(|e| UserError::new(format!("cannot read {}: {e}", path.display())).in_file(path))
}

/// The members of the bundle of `transcript`: its artifact set, then the
/// evidence files beside it that it names (redacted as text once more).
/// The transcript must be intact and signed by `key`.
pub fn collect(
    transcript: &Path,
    key: &SigningMaterial,
) -> Result<(String, Vec<Member>), UserError> {
    let (dir, stem) = stem_of(transcript)?;
    let mut members = Vec::new();
    for suffix in SET {
        let name = format!("{stem}{suffix}");
        let bytes = read_regular(&dir.join(&name)).map_err(|e| {
            if suffix == ".console.log" {
                e.hint("runs of this version write <stem>.console.log; bundle a transcript of such a run")
            } else {
                e
            }
        })?;
        members.push((name, bytes));
    }
    let transcript_name = format!("{stem}.json");
    let document = verify_bytes(&members[0].1, Signer::TrustEmbedded, None, None)
        .map(|(_, doc)| doc)
        .map_err(|e| {
            UserError::new(format!("{} does not verify: {e}", transcript.display()))
                .in_file(transcript)
        })?;
    let signer = document
        .pointer("/signature/key_id")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    if document.pointer("/signing/ephemeral") == Some(&serde_json::Value::Bool(true)) {
        return Err(UserError::new(format!(
            "{} was signed with an EPHEMERAL key, which is gone: its bundle cannot be signed by the run's signer",
            transcript.display()
        ))
        .in_file(transcript)
        .hint("run with --key (or SPINUP_SIGNING_KEY), then bundle that run with the same key"));
    }
    if signer != key.key_id() {
        return Err(UserError::new(format!(
            "the key (key id {}) did not sign {} (key id {signer})",
            key.key_id(),
            transcript.display()
        ))
        .field("--key")
        .hint("pass the key the run signed with (--key or SPINUP_SIGNING_KEY)"));
    }
    let mut candidates = Vec::new();
    let listing = std::fs::read_dir(&dir)
        .map_err(|e| UserError::new(format!("cannot list {}: {e}", dir.display())).in_file(&dir))?;
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        let plain = manifest::safe_name(&name).is_ok() && !name.starts_with('.');
        if regular && plain && !name.starts_with("boot_transcript_") {
            candidates.push(name);
        }
    }
    // Files a probe or QEMU wrote skipped the redactor: they pass it here.
    let redactor = Redactor::new(Vec::new());
    let mut total: u64 = members.iter().map(|(_, b)| b.len() as u64).sum();
    for name in manifest::referenced(&document, &candidates) {
        let bytes = read_regular(&dir.join(name))?;
        let text = redactor.redact(&String::from_utf8_lossy(&bytes));
        total += text.len() as u64;
        if total > archive::MAX_BYTES / 2 {
            return Err(UserError::new(format!(
                "the artifact set and its evidence exceed {} bytes",
                archive::MAX_BYTES / 2
            ))
            .in_file(&dir));
        }
        members.push((name.to_string(), text.into_bytes()));
    }
    Ok((transcript_name, members))
}

/// Writes the bundle of `transcript` to `out`, its manifest signed by `key`.
pub fn write(transcript: &Path, out: &Path, key: &SigningMaterial) -> Result<Bundled, UserError> {
    let (transcript_name, members) = collect(transcript, key)?;
    let manifest = manifest::build(&transcript_name, &members);
    let manifest_json = render(&serde_json::to_value(&manifest).unwrap_or_default());
    let envelope = render(&crate::report::dsse::envelope(
        &manifest::statement(&manifest),
        key,
    ));
    let mut all = vec![
        (MANIFEST.to_string(), manifest_json.into_bytes()),
        (MANIFEST_ENVELOPE.to_string(), envelope.into_bytes()),
    ];
    all.extend(members);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cannot = |e: &dyn std::fmt::Display| {
        UserError::new(format!("cannot write the bundle {}: {e}", out.display()))
            .field("--out")
            .hint("pass --out with a path in a writable directory")
    };
    let bytes = archive::pack(&all, now).map_err(|e| cannot(&e))?;
    crate::report::write_atomic(out, &bytes).map_err(|e| cannot(&e))?;
    Ok(Bundled {
        path: out.to_path_buf(),
        manifest,
    })
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// Not a readable bundle, or a member no bundle may hold.
    Archive(archive::ReadError),
    /// The manifest or its signature.
    Manifest(String),
    /// Members that disagree with the signed manifest.
    Members(Vec<(String, Problem)>),
    /// A member that does not verify as a file of its own.
    Member { name: String, error: VerifyError },
    /// Intact, but no key was pinned.
    NotPinned { key_id: String },
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::Archive(e) => write!(f, "{e}"),
            BundleError::Manifest(why) => write!(f, "{why}"),
            BundleError::Members(problems) => {
                let parts: Vec<String> = problems
                    .iter()
                    .map(|(name, p)| format!("member `{name}`: {p}"))
                    .collect();
                write!(f, "{}", parts.join("; "))
            }
            BundleError::Member { name, error } => write!(f, "member `{name}`: {error}"),
            BundleError::NotPinned { key_id } => write!(
                f,
                "{}",
                VerifyError::NotPinned {
                    key_id: key_id.clone()
                }
            ),
        }
    }
}

impl BundleError {
    /// The members it names, for `verify --format json`.
    pub fn members(&self) -> Vec<String> {
        match self {
            BundleError::Archive(archive::ReadError::Member { name, .. }) => vec![name.clone()],
            BundleError::Archive(_) | BundleError::NotPinned { .. } => Vec::new(),
            BundleError::Manifest(_) => vec![MANIFEST_ENVELOPE.to_string()],
            BundleError::Members(problems) => problems.iter().map(|(n, _)| n.clone()).collect(),
            BundleError::Member { name, .. } => vec![name.clone()],
        }
    }
}

/// What a bundle that verified holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// The transcript inside, verified.
    pub transcript: VerifyReport,
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

/// Verifies the bundle at `path`: whose signature counts follows `signer`
/// as for a transcript; with `image`, its digest must be the one signed.
pub fn verify(
    path: &Path,
    signer: Signer<'_>,
    image: Option<&Path>,
) -> Result<BundleReport, BundleError> {
    let file = std::fs::File::open(path).map_err(|e| {
        BundleError::Archive(archive::ReadError::Archive(format!(
            "cannot read {}: {e}",
            path.display()
        )))
    })?;
    let mut members =
        archive::unpack(std::io::BufReader::new(file)).map_err(BundleError::Archive)?;
    let missing = |name: &str| BundleError::Members(vec![(name.to_string(), Problem::Missing)]);
    let envelope_bytes = members
        .remove(MANIFEST_ENVELOPE)
        .ok_or_else(|| missing(MANIFEST_ENVELOPE))?;
    let manifest_bytes = members.remove(MANIFEST).ok_or_else(|| missing(MANIFEST))?;
    let manifest = signed_manifest(&envelope_bytes, &members, signer)?;
    if manifest_bytes != render(&serde_json::to_value(&manifest).unwrap_or_default()).as_bytes() {
        return Err(BundleError::Manifest(format!(
            "{MANIFEST} is not the manifest {MANIFEST_ENVELOPE} signs: it was changed"
        )));
    }
    let problems = manifest::check(&manifest, &members);
    if !problems.is_empty() {
        return Err(BundleError::Members(problems));
    }
    let inner = match signer {
        Signer::Pinned(p) => Signer::Pinned(p),
        Signer::TrustEmbedded | Signer::Unpinned => Signer::TrustEmbedded,
    };
    let transcript_bytes = &members[&manifest.transcript];
    let (report, document) =
        verify_bytes(transcript_bytes, inner, image, None).map_err(|error| {
            BundleError::Member {
                name: manifest.transcript.clone(),
                error,
            }
        })?;
    let envelope_name = manifest
        .transcript
        .strip_suffix(".json")
        .map(|stem| format!("{stem}.intoto.json"))
        .unwrap_or_default();
    if let Some(bytes) = members.get(&envelope_name) {
        verify_bytes(bytes, inner, image, Some(&document)).map_err(|error| {
            BundleError::Member {
                name: envelope_name.clone(),
                error,
            }
        })?;
    }
    if matches!(signer, Signer::Unpinned) {
        return Err(BundleError::NotPinned {
            key_id: report.key_id,
        });
    }
    let warnings = report.warnings.clone();
    Ok(BundleReport {
        transcript: report,
        manifest,
        warnings,
    })
}

/// The manifest `envelope` signs, with the same key rules as a transcript:
/// the pinned key, else the key of the transcript the manifest names.
fn signed_manifest(
    envelope: &[u8],
    members: &BTreeMap<String, Vec<u8>>,
    signer: Signer<'_>,
) -> Result<Manifest, BundleError> {
    let bad = |why: String| BundleError::Manifest(format!("{MANIFEST_ENVELOPE}: {why}"));
    let unverified: serde_json::Value =
        serde_json::from_slice(envelope).map_err(|e| bad(format!("not JSON: {e}")))?;
    // Only to find the transcript whose key may verify it; the signature decides.
    let transcript = envelope_statement(&unverified)
        .ok()
        .and_then(|s| {
            s.pointer("/predicate/transcript")?
                .as_str()
                .map(str::to_string)
        })
        .and_then(|name| members.get(&name))
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok());
    let manifest_key = unverified
        .pointer("/signatures/0/keyid")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    let transcript_key = transcript
        .as_ref()
        .and_then(|t| t.pointer("/signature/key_id")?.as_str())
        .unwrap_or_default();
    let pinned = match signer {
        Signer::Pinned(p) => Signer::Pinned(p),
        Signer::TrustEmbedded | Signer::Unpinned => {
            if manifest_key != transcript_key {
                return Err(bad(format!(
                    "signed by key id {manifest_key}, not by the transcript's signer (key id {transcript_key})"
                )));
            }
            Signer::TrustEmbedded
        }
    };
    let (_, verified) = verify_bytes(envelope, pinned, None, transcript.as_ref())
        .map_err(|e| bad(e.to_string()))?;
    let statement = envelope_statement(&verified).map_err(|e| bad(e.to_string()))?;
    manifest::from_statement(&statement).map_err(bad)
}
