//! Judges a disk image: readable, the expected format, large enough,
//! consistent (qcow2), and its digest (recorded; compared when expected).
//! The evidence's first line is the digest `sha256:<hex>`.

use super::spec::Spec;
use crate::check::{all_of, Verdict};
use crate::vm::ByteSize;

/// What `qemu-img info` reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageInfo {
    /// The format QEMU detects ("qcow2", "raw", ...).
    pub format: String,
    pub virtual_size: u64,
    pub actual_size: Option<u64>,
    /// qcow2's own "corrupt" flag.
    pub corrupt: Option<bool>,
    pub backing_file: Option<String>,
}

/// What `qemu-img check` reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckReport {
    pub check_errors: u64,
    pub corruptions: u64,
    pub leaks: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub path: String,
    /// The file's length; `None` when it cannot be read.
    pub file_bytes: Option<u64>,
    pub info: Result<ImageInfo, String>,
    pub check: Option<Result<CheckReport, String>>,
    /// `sha256:<hex>` of the file.
    pub digest: Result<String, String>,
    pub hash_seconds: f64,
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let want_format = spec.format.as_str();
    let mut evidence = match &facts.digest {
        Ok(d) => format!("{d}\n"),
        Err(_) => String::new(),
    };
    evidence.push_str(&format!("image: {}\n", facts.path));
    if facts.file_bytes.is_none() {
        return Verdict::fail(
            format!("{} is a readable {want_format} image", facts.path),
            format!(
                "{} does not exist or cannot be read; build the image first (see the build phase)",
                facts.path
            ),
        )
        .with_evidence(evidence);
    }
    let mut parts = Vec::new();
    let mut metrics = Vec::new();
    match &facts.info {
        Err(e) => parts.push(Verdict::fail(
            format!("qemu-img can open {} as {want_format}", facts.path),
            e.clone(),
        )),
        Ok(info) => {
            evidence.push_str(&format!(
                "qemu-img info: format {}, virtual size {} bytes, on disk {} bytes{}\n",
                info.format,
                info.virtual_size,
                info.actual_size
                    .map_or("unknown".to_string(), |s| s.to_string()),
                info.backing_file
                    .as_ref()
                    .map_or(String::new(), |b| format!(", backing file {b}"))
            ));
            metrics.push(("image_virtual_size_bytes", info.virtual_size as f64));
            let expected = format!("format {want_format}");
            let found = format!("format {}", info.format);
            parts.push(if info.format == want_format {
                Verdict::pass(expected, found)
            } else {
                Verdict::fail(expected, found)
            });
            if let Some(min) = spec.min_virtual_size {
                let expected = format!("virtual size >= {min}");
                let found = format!("virtual size {}", ByteSize(info.virtual_size));
                parts.push(if info.virtual_size >= min.0 {
                    Verdict::pass(expected, found)
                } else {
                    Verdict::fail(expected, found)
                });
            }
            if info.corrupt == Some(true) {
                parts.push(Verdict::fail(
                    "qcow2 not marked corrupt",
                    "the qcow2 header marks the image corrupt",
                ));
            }
            if let Some(backing) = &info.backing_file {
                parts.push(Verdict::fail(
                    "a standalone image (no backing file)",
                    format!("backed by {backing}; the digest would not cover the backing file"),
                ));
            }
        }
    }
    match &facts.check {
        None => {}
        Some(Err(e)) => parts.push(Verdict::fail("qemu-img check finds no errors", e.clone())),
        Some(Ok(c)) => {
            evidence.push_str(&format!(
                "qemu-img check: {} errors, {} corruptions, {} leaked clusters\n",
                c.check_errors, c.corruptions, c.leaks
            ));
            let expected = "qemu-img check: no errors or corruptions";
            let found = format!("{} errors, {} corruptions", c.check_errors, c.corruptions);
            parts.push(if c.check_errors == 0 && c.corruptions == 0 {
                Verdict::pass(expected, found)
            } else {
                Verdict::fail(expected, found)
            });
        }
    }
    match &facts.digest {
        Err(e) => parts.push(Verdict::fail("a SHA-256 digest of the image", e.clone())),
        Ok(digest) => match &spec.digest {
            Some(want) => {
                let expected = format!("digest {want}");
                let found = format!("digest {digest}");
                parts.push(if want.eq_ignore_ascii_case(digest) {
                    Verdict::pass(expected, found)
                } else {
                    Verdict::fail(expected, found)
                });
            }
            None => parts.push(Verdict::pass("digest recorded", digest.clone())),
        },
    }
    let mut verdict = all_of(parts).with_evidence(evidence.trim_end().to_string());
    if let Some(bytes) = facts.file_bytes {
        verdict = verdict.with_metric("image_file_bytes", bytes as f64);
    }
    for (name, value) in metrics {
        verdict = verdict.with_metric(name, value);
    }
    if facts.digest.is_ok() {
        verdict = verdict.with_metric("image_hash_seconds", facts.hash_seconds);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!("path = \"/i.qcow2\"\n{extra}")).unwrap()
    }

    fn facts() -> Facts {
        Facts {
            path: "/i.qcow2".into(),
            file_bytes: Some(1000),
            info: Ok(ImageInfo {
                format: "qcow2".into(),
                virtual_size: 3 << 30,
                actual_size: Some(900),
                corrupt: Some(false),
                backing_file: None,
            }),
            check: Some(Ok(CheckReport::default())),
            digest: Ok("sha256:ab".into()),
            hash_seconds: 0.5,
        }
    }

    fn check(spec_extra: &str, change: impl FnOnce(&mut Facts), pass: bool, found_has: &str) {
        let mut f = facts();
        change(&mut f);
        let v = judge(&spec(spec_extra), &f);
        assert_eq!(v.pass, pass, "{v:?}");
        assert!(v.found.contains(found_has), "`{found_has}` not in {v:?}");
    }

    #[test]
    fn each_property_can_fail_on_its_own() {
        check("", |_| {}, true, "sha256:ab");
        check("min_virtual_size = \"4GiB\"", |_| {}, false, "3.00 GiB");
        check("format = \"raw\"", |_| {}, false, "format qcow2");
        check("digest = \"sha256:cd\"", |_| {}, false, "digest sha256:ab");
        check("digest = \"SHA256:AB\"", |_| {}, true, "digest sha256:ab");
        check(
            "",
            |f| {
                f.check = Some(Ok(CheckReport {
                    corruptions: 2,
                    ..Default::default()
                }))
            },
            false,
            "2 corruptions",
        );
        check(
            "",
            |f| {
                if let Ok(i) = &mut f.info {
                    i.corrupt = Some(true)
                }
            },
            false,
            "corrupt",
        );
        check(
            "",
            |f| {
                if let Ok(i) = &mut f.info {
                    i.backing_file = Some("/base".into())
                }
            },
            false,
            "backed by /base",
        );
        check(
            "",
            |f| f.info = Err("Could not open".into()),
            false,
            "Could not open",
        );
        check("", |f| f.file_bytes = None, false, "build the image first");
    }

    #[test]
    fn the_digest_leads_the_evidence() {
        let v = judge(&spec(""), &facts());
        assert!(v.evidence.starts_with("sha256:ab\n"), "{}", v.evidence);
        assert_eq!(v.metrics["image_virtual_size_bytes"], (3u64 << 30) as f64);
    }
}
