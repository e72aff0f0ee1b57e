//! Reads the image's length, asks `qemu-img info` (and `qemu-img check`
//! for qcow2) through the check's executor, and streams the file through
//! SHA-256 on this host, bounded by the deadline. Unreadable files and
//! failing tools are facts for the judge.

use std::time::Instant;

use super::judge::CheckReport;
use super::judge::Facts;
use super::judge::ImageInfo;
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::os::CommandSpec;
use crate::vm::ImageFormat;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Facts {
    let path = spec.path.display().to_string();
    let file_bytes = std::fs::metadata(&spec.path).map(|m| m.len()).ok();
    let info = qemu_img_info(&path, ctx).await;
    let check = if spec.format == ImageFormat::Qcow2
        && spec.consistency_check
        && matches!(&info, Ok(i) if i.format == "qcow2")
    {
        Some(qemu_img_check(&path, ctx).await)
    } else {
        None
    };
    let hash_started = Instant::now();
    let digest = match file_bytes {
        None => Err(format!("{path} cannot be read")),
        Some(_) => {
            let file = spec.path.clone();
            let hashing = tokio::task::spawn_blocking(move || crate::digest::sha256_file(&file));
            match tokio::time::timeout(ctx.remaining(), hashing).await {
                Ok(Ok(Ok(d))) => Ok(d),
                Ok(Ok(Err(e))) => Err(format!("reading {path}: {e}")),
                Ok(Err(e)) => Err(format!("hashing task failed: {e}")),
                Err(_) => Err("hashing did not finish before the deadline".into()),
            }
        }
    };
    Facts {
        path,
        file_bytes,
        info,
        check,
        digest,
        hash_seconds: hash_started.elapsed().as_secs_f64(),
    }
}

async fn qemu_img_info(path: &str, ctx: &ProbeContext) -> Result<ImageInfo, String> {
    let cmd = CommandSpec::new("qemu-img", &["info", "--output=json", path]);
    let out = ctx
        .executor
        .run(&cmd, ctx.deadline)
        .await
        .map_err(|e| format!("`{}`: {e}", cmd.display()))?;
    if out.exit_code != Some(0) {
        return Err(format!(
            "`{}` failed: {}",
            cmd.display(),
            out.stderr_text().trim()
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`{}` printed no JSON: {e}", cmd.display()))?;
    Ok(ImageInfo {
        format: json["format"].as_str().unwrap_or("").to_string(),
        virtual_size: json["virtual-size"].as_u64().unwrap_or(0),
        actual_size: json["actual-size"].as_u64(),
        corrupt: json["format-specific"]["data"]["corrupt"].as_bool(),
        backing_file: json["backing-filename"].as_str().map(str::to_string),
    })
}

async fn qemu_img_check(path: &str, ctx: &ProbeContext) -> Result<CheckReport, String> {
    let cmd = CommandSpec::new("qemu-img", &["check", "-f", "qcow2", "--output=json", path]);
    let out = ctx
        .executor
        .run(&cmd, ctx.deadline)
        .await
        .map_err(|e| format!("`{}`: {e}", cmd.display()))?;
    // Exit 2 (corruptions) and 3 (leaks) still print the JSON report.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!(
            "`{}` failed (exit {:?}): {}",
            cmd.display(),
            out.exit_code,
            out.stderr_text().trim()
        )
    })?;
    let count = |key: &str| json[key].as_u64().unwrap_or(0);
    Ok(CheckReport {
        check_errors: count("check-errors"),
        corruptions: count("corruptions"),
        leaks: count("leaks"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::image::run;

    fn spec(path: &std::path::Path, extra: &str) -> Spec {
        toml::from_str(&format!("path = {:?}\n{extra}", path.display().to_string())).unwrap()
    }

    fn qemu_img(args: &[&str]) {
        let status = std::process::Command::new("qemu-img")
            .args(args)
            .status()
            .expect("qemu-img is installed");
        assert!(status.success(), "qemu-img {args:?}");
    }

    #[tokio::test]
    async fn a_real_qcow2_passes_with_its_digest_and_fails_a_larger_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.qcow2");
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            &image.display().to_string(),
            "64M",
        ]);
        let expected_digest = crate::digest::sha256_file(&image).unwrap();
        let ctx = ProbeContext::for_tests(30);
        let v = run(&spec(&image, "min_virtual_size = \"64MiB\""), &ctx).await;
        assert!(v.pass, "{v:?}");
        assert!(v.evidence.starts_with(&expected_digest), "{v:?}");
        assert_eq!(v.metrics["image_virtual_size_bytes"], (64u64 << 20) as f64);

        let v = run(&spec(&image, "min_virtual_size = \"1GiB\""), &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("64.0 MiB"), "{v:?}");

        let v = run(&spec(&image, "digest = \"sha256:00\""), &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains(&expected_digest), "{v:?}");
    }

    #[tokio::test]
    async fn corrupt_or_wrong_format_images_fail_for_the_right_reason() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ProbeContext::for_tests(30);
        // Random bytes: QEMU sees a raw image, not the qcow2 we expect.
        let random = dir.path().join("random.qcow2");
        let noise: Vec<u8> = (0..65536u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        std::fs::write(&random, noise).unwrap();
        let v = run(&spec(&random, ""), &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("format raw"), "{v:?}");
        // A qcow2 whose L1 table offset was overwritten cannot be opened.
        let broken = dir.path().join("broken.qcow2");
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            &broken.display().to_string(),
            "64M",
        ]);
        let mut bytes = std::fs::read(&broken).unwrap();
        bytes[40..48].copy_from_slice(&[0xff; 8]);
        std::fs::write(&broken, bytes).unwrap();
        let v = run(&spec(&broken, ""), &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("L1 table"), "{v:?}");
        // A missing file.
        let v = run(&spec(&dir.path().join("absent.qcow2"), ""), &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("absent.qcow2"), "{v:?}");
    }
}
