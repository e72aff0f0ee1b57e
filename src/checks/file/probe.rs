//! Inspects a path on this host (metadata, owner names, digest, content),
//! off the async runtime and bounded by the deadline.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use sha2::{Digest, Sha256};

use super::judge;
use super::judge::Facts;
use super::spec::{Kind, Spec, MAX_CONTENT};
use crate::check::ProbeContext;

/// The facts, or why they could not be gathered (the blocking task failed,
/// or it did not finish before the deadline).
pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let spec2 = spec.clone();
    let gathered = tokio::time::timeout(
        ctx.remaining(),
        tokio::task::spawn_blocking(move || gather(&spec2)),
    )
    .await;
    match gathered {
        Ok(Ok(facts)) => Ok(facts),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("reading the file did not finish before the deadline".into()),
    }
}

fn gather(spec: &Spec) -> Facts {
    let is_symlink =
        std::fs::symlink_metadata(&spec.path).is_ok_and(|m| m.file_type().is_symlink());
    // Everything but `kind = "symlink"` is about what a link points to.
    let meta = match std::fs::metadata(&spec.path) {
        Ok(m) => m,
        // A dangling link exists (as a link) though what it names does not.
        Err(_) if is_symlink => {
            return Facts {
                exists: true,
                is_symlink,
                error: Some("the symlink's target does not exist".into()),
                ..Facts::default()
            };
        }
        Err(e) => {
            return Facts {
                exists: false,
                // Absent: not found, or a path component is not a directory.
                error: (e.kind() != std::io::ErrorKind::NotFound
                    && e.raw_os_error() != Some(libc::ENOTDIR))
                .then(|| e.to_string()),
                ..Facts::default()
            };
        }
    };
    // Sockets, fifos and devices are neither: `kind` stays unknown and
    // their content is never read (a fifo would block).
    let kind = if meta.is_dir() {
        Some(Kind::Directory)
    } else if meta.is_file() {
        Some(Kind::File)
    } else {
        None
    };
    let users = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let mut facts = Facts {
        exists: true,
        kind,
        is_symlink,
        mode: meta.permissions().mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        owner_name: judge::name_of_id(&users, meta.uid()),
        group_name: judge::name_of_id(&groups, meta.gid()),
        size: meta.len(),
        users,
        groups,
        ..Facts::default()
    };
    let wants_content = !spec.contains.is_empty() || !spec.not_contains.is_empty();
    if (spec.sha256.is_some() || wants_content) && kind == Some(Kind::File) {
        match read_content(spec, wants_content) {
            Ok((digest, content, truncated)) => {
                facts.sha256 = digest;
                facts.content = content;
                facts.content_truncated = truncated;
            }
            Err(e) => facts.error = Some(format!("cannot read: {e}")),
        }
    }
    facts
}

fn read_content(
    spec: &Spec,
    keep: bool,
) -> std::io::Result<(Option<String>, Option<String>, bool)> {
    let mut file = std::fs::File::open(&spec.path)?;
    let mut hasher = Sha256::new();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut truncated = false;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if keep {
            let room = (MAX_CONTENT as usize).saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
            truncated |= n > room;
        }
        if spec.sha256.is_none() && truncated {
            break;
        }
    }
    let digest = spec.sha256.as_ref().map(|_| hex::encode(hasher.finalize()));
    let content = keep.then(|| String::from_utf8_lossy(&kept).into_owned());
    Ok((digest, content, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::file::run;

    fn spec(text: &str) -> Spec {
        toml::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn a_real_file_passes_and_fails_for_each_property() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "token: abc\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = path.display();
        let ctx = ProbeContext::for_tests(5);
        let v = run(
            &spec(&format!(
                "path = \"{p}\"\nkind = \"file\"\nowner = \"root\"\ncontains = [\"token\"]"
            )),
            &ctx,
        )
        .await;
        assert!(v.pass, "{v:?}");
        let v = run(&spec(&format!("path = \"{p}\"\nmode_max = \"0600\"")), &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("0644"), "{v:?}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            run(&spec(&format!("path = \"{p}\"\nmode = \"0600\"")), &ctx)
                .await
                .pass
        );
        let digest = "e4d6d3e3e1b1d0c2"; // wrong on purpose
        let v = run(
            &spec(&format!("path = \"{p}\"\nsha256 = \"{digest}\"")),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("sha256"), "{v:?}");
        let v = run(
            &spec(&format!("path = \"{p}\"\nnot_contains = [\"token\"]")),
            &ctx,
        )
        .await;
        assert!(!v.pass, "{v:?}");
        let v = run(&spec(&format!("path = \"{p}/nope\"")), &ctx).await;
        assert!(!v.pass && v.found.contains("does not exist"), "{v:?}");
        assert!(
            run(
                &spec(&format!("path = \"{p}.absent\"\nexists = false")),
                &ctx
            )
            .await
            .pass
        );
        let v = run(
            &spec(&format!(
                "path = \"{}\"\nkind = \"file\"",
                dir.path().display()
            )),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("directory"), "{v:?}");
    }

    #[tokio::test]
    async fn dangling_links_and_special_files_are_not_taken_for_files() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("gone"), &link).unwrap();
        let ctx = ProbeContext::for_tests(5);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        let l = link.display();
        assert!(
            run(&spec(&format!("path = \"{l}\"\nkind = \"symlink\"")), &ctx)
                .await
                .pass
        );
        let v = run(&spec(&format!("path = \"{l}\"\nowner = \"root\"")), &ctx).await;
        assert!(!v.pass && v.found.contains("dangling symlink"), "{v:?}");
        let v = run(&spec("path = \"/dev/null\"\nkind = \"file\""), &ctx).await;
        assert!(!v.pass && v.found.contains("special file"), "{v:?}");
        // A fifo is never opened for content (it would block until the deadline).
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let v = run(
            &spec(&format!(
                "path = \"{}\"\ncontains = [\"x\"]",
                fifo.display()
            )),
            &ctx,
        )
        .await;
        assert!(!v.pass && v.found.contains("not a regular file"), "{v:?}");
    }
}
