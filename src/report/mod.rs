//! Reporters render a finished run; they never decide anything. `write_all`
//! writes the three artifacts of a run, each atomically: the signed
//! transcript, its DSSE/in-toto attestation and the JUnit report.

pub mod console;
pub mod dsse;
pub mod junit;
pub mod transcript;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::UserError;
use crate::profile::Source;
use crate::redact::Redactor;
use crate::run::RunReport;
use crate::sign::SigningMaterial;
use crate::sysinfo::SystemInfo;

/// The image under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub name: String,
    pub path: PathBuf,
    /// `sha256:<hex>`
    pub digest: String,
}

/// What the transcript says besides the results.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub rave_version: String,
    pub target_name: String,
    pub profiles: Vec<Source>,
    pub profiles_digest: String,
    pub image: Option<ImageInfo>,
    pub system_info: SystemInfo,
    pub tool_version: String,
    /// `sha256:<hex>` of the target file, when one was given.
    pub target_sha256: Option<String>,
    /// The target's `[stand_ins]`: service -> what answers instead.
    pub stand_ins: BTreeMap<String, String>,
}

/// The files a run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub transcript: PathBuf,
    pub attestation: PathBuf,
    pub junit: PathBuf,
}

/// Renders, redacts, signs and writes the run's artifacts into `out_dir`.
pub fn write_all(
    out_dir: &Path,
    report: &RunReport,
    info: &RunInfo,
    key: &SigningMaterial,
    redactor: &Redactor,
) -> Result<Written, UserError> {
    std::fs::create_dir_all(out_dir).map_err(|e| unwritable(out_dir, &e))?;
    let stem = unique_stem(
        out_dir,
        &format!(
            "boot_transcript_{}",
            report.started_at.format("%Y%m%d-%H%M%S")
        ),
    );
    let paths = Written {
        transcript: out_dir.join(format!("{stem}.json")),
        attestation: out_dir.join(format!("{stem}.intoto.json")),
        junit: out_dir.join(format!("{stem}.junit.xml")),
    };

    let mut document = transcript::build(report, info, key.ephemeral);
    redact_strings(&mut document, redactor);
    crate::sign::sign_document(&mut document, key)
        .map_err(|e| UserError::new(format!("cannot sign the transcript: {e}")))?;
    let text = crate::sign::verify::render(&document);
    write_atomic(&paths.transcript, text.as_bytes()).map_err(|e| unwritable(out_dir, &e))?;

    let name = paths
        .transcript
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut statement = dsse::statement(
        report,
        info,
        &name,
        &crate::digest::sha256_bytes(text.as_bytes()),
    );
    redact_strings(&mut statement, redactor);
    let envelope = dsse::envelope(&statement, key);
    write_atomic(
        &paths.attestation,
        crate::sign::verify::render(&envelope).as_bytes(),
    )
    .map_err(|e| unwritable(out_dir, &e))?;

    let junit = redactor.redact(&junit::render(report));
    write_atomic(&paths.junit, junit.as_bytes()).map_err(|e| unwritable(out_dir, &e))?;
    Ok(paths)
}

fn unwritable(dir: &Path, e: &std::io::Error) -> UserError {
    UserError::new(format!("cannot write artifacts to {}: {e}", dir.display()))
        .field("--out")
        .hint("pass --out with a writable directory")
}

/// `stem`, or `stem-2`, `stem-3`... when a run of the same second exists.
fn unique_stem(dir: &Path, stem: &str) -> String {
    let taken = |s: &str| dir.join(format!("{s}.json")).exists();
    if !taken(stem) {
        return stem.to_string();
    }
    (2..)
        .map(|n| format!("{stem}-{n}"))
        .find(|s| !taken(s))
        .unwrap_or_else(|| stem.to_string())
}

/// Final guard: every string of the document passes the redactor.
pub fn redact_strings(value: &mut serde_json::Value, redactor: &Redactor) {
    match value {
        serde_json::Value::String(s) => {
            let r = redactor.redact(s);
            if r != *s {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|v| redact_strings(v, redactor))
        }
        serde_json::Value::Object(map) => {
            map.values_mut().for_each(|v| redact_strings(v, redactor))
        }
        _ => {}
    }
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory,
/// fsync, rename over the target, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
