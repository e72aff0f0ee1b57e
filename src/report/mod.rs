//! Reporters that write files: the signed boot transcript (JSON), the same
//! result as a DSSE-wrapped in-toto statement, and JUnit XML. They render a
//! finished `RunReport`; they never judge or choose an exit code.
//!
//! **Invariant:** every string passes the redactor before it is written, and
//! the transcript gets a last redaction pass over the whole document before
//! it is signed.

pub mod dsse;
pub mod junit;
pub mod transcript;

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::UserError;
use crate::model::CheckResult;
use crate::redact::Redactor;
use crate::run::report::RunReport;
use crate::sign::{self, SigningMaterial};
use crate::sysinfo::SystemInfo;

/// The image under test (`--image`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub path: PathBuf,
    /// File name, the in-toto subject name.
    pub name: String,
    /// `sha256:<hex>` from `digest::sha256_file`.
    pub digest: String,
}

impl ImageInfo {
    /// Streams the image's digest; the error names the file and the fix.
    pub fn from_path(path: &Path) -> Result<ImageInfo, UserError> {
        let digest = crate::digest::sha256_file(path).map_err(|e| {
            UserError::new(format!("cannot read the image to digest it: {e}"))
                .in_file(path)
                .hint("pass --image with the path of the built qcow2/raw image")
        })?;
        Ok(ImageInfo {
            path: path.to_path_buf(),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            digest,
        })
    }
}

/// Run-level facts that are not check results.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub rave_version: String,
    pub target_name: String,
    pub profiles: Vec<crate::profile::Source>,
    /// `Profiles::digest()`.
    pub profiles_digest: String,
    pub image: Option<ImageInfo>,
    pub system_info: SystemInfo,
    /// `env!("CARGO_PKG_VERSION")`.
    pub tool_version: String,
    /// Where the run can be seen (e.g. GitLab's `CI_JOB_URL`); the in-toto `url`.
    pub job_url: Option<String>,
}

/// The files `write_all` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `boot_transcript_YYYYMMDD-HHMMSS.json`
    pub transcript: PathBuf,
    /// `boot_transcript_YYYYMMDD-HHMMSS.intoto.json`
    pub envelope: PathBuf,
    /// `boot_transcript_YYYYMMDD-HHMMSS.junit.xml`
    pub junit: PathBuf,
    pub key_id: String,
}

/// `boot_transcript_YYYYMMDD-HHMMSS` for a run started at `started_at`.
pub fn file_stem(started_at: chrono::DateTime<chrono::Utc>) -> String {
    format!("boot_transcript_{}", started_at.format("%Y%m%d-%H%M%S"))
}

/// Writes the signed transcript, the DSSE envelope and the JUnit XML into
/// `out_dir` (created when missing), each atomically.
pub fn write_all(
    out_dir: &Path,
    report: &RunReport,
    info: &RunInfo,
    key: &SigningMaterial,
    redactor: &Redactor,
) -> Result<Written, UserError> {
    std::fs::create_dir_all(out_dir).map_err(|e| unwritable(out_dir, &e))?;
    let redacted = RunReport {
        results: report
            .results
            .iter()
            .map(|r| redact_result(redactor, r))
            .collect(),
        abort_reason: report.abort_reason.as_deref().map(|s| redactor.redact(s)),
        ..report.clone()
    };
    let stem = file_stem(report.started_at);

    let transcript_bytes = render_signed_transcript(&redacted, info, key, redactor);
    let transcript_path = out_dir.join(format!("{stem}.json"));
    write_atomically(&transcript_path, &transcript_bytes).map_err(|e| unwritable(out_dir, &e))?;

    let transcript_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&transcript_bytes));
    let image = info
        .image
        .as_ref()
        .map(|i| (i.name.as_str(), crate::digest::hex_part(&i.digest)));
    let statement = dsse::build_statement(
        &redacted.results,
        dsse::StatementInputs {
            status: report.status,
            image,
            transcript_sha256: &transcript_sha256,
            profiles: info
                .profiles
                .iter()
                .map(|p| (p.name.as_str(), p.sha256.as_str()))
                .collect(),
            url: info.job_url.clone(),
        },
    );
    let envelope = dsse::seal(&statement, key);
    let envelope_path = out_dir.join(format!("{stem}.intoto.json"));
    write_atomically(&envelope_path, &render_json(&envelope))
        .map_err(|e| unwritable(out_dir, &e))?;

    let junit_path = out_dir.join(format!("{stem}.junit.xml"));
    write_atomically(&junit_path, junit::render(&redacted).as_bytes())
        .map_err(|e| unwritable(out_dir, &e))?;

    Ok(Written {
        transcript: transcript_path,
        envelope: envelope_path,
        junit: junit_path,
        key_id: key.key_id(),
    })
}

/// The transcript's final bytes: built, redacted as a whole, signed over its
/// JCS form, then rendered in the layout `render_json` defines.
pub fn render_signed_transcript(
    report: &RunReport,
    info: &RunInfo,
    key: &SigningMaterial,
    redactor: &Redactor,
) -> Vec<u8> {
    let transcript = transcript::build(report, info, key.ephemeral);
    let mut document = serde_json::to_value(&transcript).expect("transcripts always serialise");
    redactor.redact_json(&mut document);
    let signature = sign::sign_document(&document, key);
    document
        .as_object_mut()
        .expect("a transcript is a JSON object")
        .insert(
            "signature".to_string(),
            serde_json::to_value(signature).expect("signatures always serialise"),
        );
    render_json(&document)
}

/// The one on-disk layout of every JSON file written here: pretty-printed
/// with two-space indent, keys in sorted order, and a final newline. `verify`
/// re-renders a parsed file and requires the same bytes, so any edit, even
/// to whitespace, is detected.
pub fn render_json(value: &impl Serialize) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("reports always serialise");
    let mut bytes = serde_json::to_vec_pretty(&value).expect("a Value always serialises");
    bytes.push(b'\n');
    bytes
}

/// A copy of `result` with every free-text field redacted.
pub fn redact_result(redactor: &Redactor, result: &CheckResult) -> CheckResult {
    let mut r = result.clone();
    r.description = redactor.redact(&r.description);
    r.expected = redactor.redact(&r.expected);
    r.found = redactor.redact(&r.found);
    r.evidence = redactor.redact(&r.evidence);
    r.hint = r.hint.as_deref().map(|s| redactor.redact(s));
    r.skip_reason = r.skip_reason.as_deref().map(|s| redactor.redact(s));
    for attempt in &mut r.attempts {
        attempt.error = attempt.error.as_deref().map(|s| redactor.redact(s));
    }
    r
}

fn unwritable(out_dir: &Path, e: &std::io::Error) -> UserError {
    UserError::new(format!("cannot write reports into the output directory: {e}"))
        .in_file(out_dir)
        .hint(format!(
            "pass --out-dir with a writable directory, or make this one writable (mkdir -p {0} && chmod u+w {0})",
            out_dir.display()
        ))
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory,
/// fsync, rename over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
