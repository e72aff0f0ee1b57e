//! Reporters render a finished run (and `tree` the plan before one); they
//! never decide anything. `write_all` writes the artifacts of a run as one
//! atomic set (all of them or none): the signed transcript, its DSSE/in-toto
//! attestation and the JUnit report, and with `write_run` the console log
//! too. `bundle` packs a set and its evidence into a signed proof bundle.

pub mod bundle;
pub mod compare;
pub mod console;
pub mod dsse;
pub mod junit;
pub mod metrics;
#[cfg(any(test, feature = "testkit"))]
pub mod sample;
pub mod soak;
pub mod transcript;
pub mod tree;

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
    /// `<stem>.console.log`: what the console printed (`write_run` only).
    pub console_log: Option<PathBuf>,
}

/// Renders, redacts, signs and writes the run's artifacts into `out_dir`.
pub fn write_all(
    out_dir: &Path,
    report: &RunReport,
    info: &RunInfo,
    key: &SigningMaterial,
    redactor: &Redactor,
) -> Result<Written, UserError> {
    write_set_of_run(out_dir, report, info, key, redactor, None)
}

/// `write_all`, with `console` (what the console printed, redacted again
/// here) as `<stem>.console.log` in the same atomic set.
pub fn write_run(
    out_dir: &Path,
    report: &RunReport,
    info: &RunInfo,
    key: &SigningMaterial,
    redactor: &Redactor,
    console: &str,
) -> Result<Written, UserError> {
    write_set_of_run(out_dir, report, info, key, redactor, Some(console))
}

fn write_set_of_run(
    out_dir: &Path,
    report: &RunReport,
    info: &RunInfo,
    key: &SigningMaterial,
    redactor: &Redactor,
    console: Option<&str>,
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
        console_log: console.map(|_| out_dir.join(format!("{stem}.console.log"))),
    };

    let mut document = transcript::build(report, info, key.ephemeral);
    redact_strings(&mut document, redactor);
    crate::sign::sign_document(&mut document, key)
        .map_err(|e| UserError::new(format!("cannot sign the transcript: {e}")))?;
    let text = crate::sign::verify::render(&document);

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
    let attestation = crate::sign::verify::render(&envelope);
    let junit = redactor.redact(&junit::render(report));

    let console = console.map(|c| redactor.redact(c));

    // The transcript is published last: once it is there, so are the others.
    let mut set: Vec<(&Path, &[u8])> = vec![
        (paths.attestation.as_path(), attestation.as_bytes()),
        (paths.junit.as_path(), junit.as_bytes()),
    ];
    if let (Some(path), Some(text)) = (&paths.console_log, &console) {
        set.push((path.as_path(), text.as_bytes()));
    }
    set.push((paths.transcript.as_path(), text.as_bytes()));
    write_set(&set).map_err(|e| unwritable(out_dir, &e))?;
    Ok(paths)
}

fn unwritable(dir: &Path, e: &dyn std::fmt::Display) -> UserError {
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
    write_set(&[(path, bytes)]).map_err(|e| e.source)
}

/// A set of files that could not be written, and what is left of it.
#[derive(Debug)]
pub struct SetError {
    /// What failed, e.g. `cannot write X` or `cannot publish X`.
    pub step: String,
    pub source: std::io::Error,
    /// Files of the set that still exist (a clean-up that failed too).
    pub left: Vec<PathBuf>,
    /// How many files the set has.
    pub total: usize,
}

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}; ", self.step, self.source)?;
        if self.left.is_empty() {
            write!(f, "none of the {} files was written", self.total)
        } else {
            let left: Vec<String> = self.left.iter().map(|p| p.display().to_string()).collect();
            write!(f, "left behind (remove by hand): {}", left.join(", "))
        }
    }
}

/// Writes every `(path, bytes)` or none of them: each to a temp file in its
/// directory (fsync), then every temp file renamed to its name and the
/// directories fsynced. When a step fails, what was written is removed.
pub fn write_set(files: &[(&Path, &[u8])]) -> Result<(), SetError> {
    let mut temps: Vec<PathBuf> = Vec::new();
    let mut published: Vec<PathBuf> = Vec::new();
    let fail = |step: String, source: std::io::Error, temps: &[PathBuf], published: &[PathBuf]| {
        let left = temps
            .iter()
            .chain(published)
            .filter(|p| std::fs::remove_file(p).is_err() && p.symlink_metadata().is_ok())
            .cloned()
            .collect();
        SetError {
            step,
            source,
            left,
            total: files.len(),
        }
    };
    for (path, bytes) in files {
        let tmp = temp_name(path);
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            temps.push(tmp.clone());
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let step = format!("cannot write {}", tmp.display());
            return Err(fail(step, e, &temps, &published));
        }
    }
    for (path, tmp) in files.iter().map(|(p, _)| *p).zip(temps.clone()) {
        if let Err(e) = std::fs::rename(&tmp, path) {
            temps.retain(|t| *t != tmp);
            let step = format!("cannot publish {}", path.display());
            let mut unpublished = temps.clone();
            unpublished.push(tmp);
            return Err(fail(step, e, &unpublished, &published));
        }
        temps.retain(|t| *t != tmp);
        published.push(path.to_path_buf());
    }
    let mut dirs: Vec<&Path> = files.iter().map(|(p, _)| parent_dir(p)).collect();
    dirs.dedup();
    for dir in dirs {
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            let step = format!("cannot sync {}", dir.display());
            return Err(fail(step, e, &[], &published));
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `.NAME.tmp-PID` beside `path`.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests;
