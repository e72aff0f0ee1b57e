//! Inspects a path on the check's host (metadata, owner names, digest,
//! content), bounded by the deadline: on this machine directly, off the
//! async runtime; on another host through its executor (`stat`, `cat
//! /etc/passwd /etc/group`, `sha256sum`, `head -c`), with the same facts.
//! The filesystem type always comes through the executor (`stat -f`).

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
    let mut facts = if ctx.executor.is_local() {
        let spec2 = spec.clone();
        let gathered = tokio::time::timeout(
            ctx.remaining(),
            tokio::task::spawn_blocking(move || gather(&spec2)),
        )
        .await;
        match gathered {
            Ok(Ok(facts)) => facts,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("reading the file did not finish before the deadline".into()),
        }
    } else {
        gather_remote(spec, ctx).await?
    };
    if spec.filesystem.is_some() && facts.exists {
        facts.filesystem = Some(filesystem_type(spec, ctx).await);
    }
    Ok(facts)
}

/// `stat -f -c %T <path>` on the checked host: "tmpfs", "ramfs", "ext2/ext3".
async fn filesystem_type(spec: &Spec, ctx: &ProbeContext) -> Result<String, String> {
    let path = spec.path.display().to_string();
    let command = crate::os::CommandSpec::new("stat", &["-f", "-c", "%T", &path]);
    match ctx.executor.run(&command, ctx.deadline).await {
        Ok(out) if out.exit_code == Some(0) && !out.stdout_text().trim().is_empty() => {
            Ok(out.stdout_text().trim().to_string())
        }
        Ok(out) => Err(format!(
            "`{}` on {}: {}",
            command.display(),
            ctx.executor.describe(),
            crate::check::excerpt(out.stderr_text().trim(), 200)
        )),
        Err(e) => Err(format!(
            "`{}` on {}: {e}",
            command.display(),
            ctx.executor.describe()
        )),
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

/// Prints `ok|err <is-link> <stat or its error>`, then /etc/passwd, a
/// separator and /etc/group. `%f` is the raw mode in hex.
const STAT_SCRIPT: &str = r#"p="$1"
if [ -h "$p" ]; then l=1; else l=0; fi
if s=$(LC_ALL=C stat -L -c '%f %u %g %s' -- "$p" 2>&1); then echo "ok $l $s"; else echo "err $l $(printf '%s' "$s" | head -n 1)"; fi
cat /etc/passwd 2>/dev/null; echo "@@spinup-smoke-group@@"; cat /etc/group 2>/dev/null
"#;

/// The same facts as `gather`, read through the host's executor.
async fn gather_remote(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    let path = spec.path.display().to_string();
    let stat = run_remote(ctx, "sh", &["-c", STAT_SCRIPT, "sh", &path]).await?;
    let (first, rest) = stat.split_once('\n').unwrap_or((&stat, ""));
    let (users, groups) = rest.split_once("@@spinup-smoke-group@@\n").unwrap_or((rest, ""));
    let mut words = first.splitn(3, ' ');
    let (status, link, detail) = (words.next(), words.next(), words.next().unwrap_or(""));
    let is_symlink = link == Some("1");
    if status != Some("ok") {
        let missing = detail.contains("No such file or directory") || detail.contains("Not a directory");
        return Ok(match (missing, is_symlink) {
            (true, true) => Facts {
                exists: true,
                is_symlink,
                error: Some("the symlink's target does not exist".into()),
                ..Facts::default()
            },
            (true, false) => Facts::default(),
            (false, _) => Facts {
                exists: false,
                error: Some(if detail.is_empty() { "cannot stat the path".into() } else { detail.to_string() }),
                ..Facts::default()
            },
        });
    }
    let fields: Vec<&str> = detail.split_whitespace().collect();
    let parsed = match fields.as_slice() {
        [mode, uid, gid, size] => u32::from_str_radix(mode, 16)
            .ok()
            .zip(uid.parse::<u32>().ok())
            .zip(gid.parse::<u32>().ok())
            .zip(size.parse::<u64>().ok())
            .map(|(((m, u), g), s)| (m, u, g, s)),
        _ => None,
    };
    let Some((raw_mode, uid, gid, size)) = parsed else {
        return Err(format!("unexpected `stat` output on {}: {first}", ctx.executor.describe()));
    };
    let kind = match raw_mode & 0o170000 {
        0o040000 => Some(Kind::Directory),
        0o100000 => Some(Kind::File),
        _ => None,
    };
    let mut facts = Facts {
        exists: true,
        kind,
        is_symlink,
        mode: raw_mode & 0o7777,
        uid,
        gid,
        owner_name: judge::name_of_id(users, uid),
        group_name: judge::name_of_id(groups, gid),
        size,
        users: users.to_string(),
        groups: groups.to_string(),
        ..Facts::default()
    };
    let wants_content = !spec.contains.is_empty() || !spec.not_contains.is_empty();
    if (spec.sha256.is_some() || wants_content) && kind == Some(Kind::File) {
        if spec.sha256.is_some() {
            match run_remote_output(ctx, "sha256sum", &["--", &path]).await? {
                (Some(0), out, _) => {
                    facts.sha256 = out.split_whitespace().next().map(str::to_string)
                }
                (_, _, err) => facts.error = Some(format!("cannot read: {}", err.trim())),
            }
        }
        if wants_content && facts.error.is_none() {
            let limit = MAX_CONTENT.to_string();
            match run_remote_bytes(ctx, "head", &["-c", &limit, "--", &path]).await? {
                (Some(0), mut bytes, _) => {
                    facts.content_truncated = size > MAX_CONTENT;
                    bytes.truncate(MAX_CONTENT as usize);
                    facts.content = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
                (_, _, err) => facts.error = Some(format!("cannot read: {}", err.trim())),
            }
        }
    }
    Ok(facts)
}

/// stdout of a command that must succeed on the host.
async fn run_remote(ctx: &ProbeContext, program: &str, args: &[&str]) -> Result<String, String> {
    match run_remote_output(ctx, program, args).await? {
        (Some(0), out, _) => Ok(out),
        (code, _, err) => Err(format!(
            "`{program}` on {} failed ({}): {}",
            ctx.executor.describe(),
            code.map_or("killed".to_string(), |c| format!("exit code {c}")),
            err.trim()
        )),
    }
}

async fn run_remote_output(
    ctx: &ProbeContext,
    program: &str,
    args: &[&str],
) -> Result<(Option<i32>, String, String), String> {
    let (code, out, err) = run_remote_bytes(ctx, program, args).await?;
    Ok((code, String::from_utf8_lossy(&out).into_owned(), err))
}

async fn run_remote_bytes(
    ctx: &ProbeContext,
    program: &str,
    args: &[&str],
) -> Result<(Option<i32>, Vec<u8>, String), String> {
    let spec = crate::os::CommandSpec::new(program, args);
    match ctx.executor.run(&spec, ctx.deadline).await {
        Ok(out) => {
            let err = out.stderr_text();
            Ok((out.exit_code, out.stdout, err))
        }
        Err(e) => Err(e.to_string()),
    }
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
    use crate::os::exec::ExecFuture;
    use crate::os::{CommandExecutor, CommandSpec, LocalExecutor};

    /// Runs here but is not local: the probe takes the executor's path.
    struct ThroughExecutor;
    impl CommandExecutor for ThroughExecutor {
        fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: std::time::Instant) -> ExecFuture<'a> {
            LocalExecutor.run(spec, deadline)
        }
        fn describe(&self) -> String {
            "through the executor".into()
        }
    }

    /// The executor's path reads the same facts as the direct one.
    #[tokio::test]
    async fn facts_through_an_executor_are_the_direct_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("file"), "token: abc\nmore\n").unwrap();
        std::fs::set_permissions(d.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::create_dir(d.join("dir")).unwrap();
        std::os::unix::fs::symlink(d.join("file"), d.join("link")).unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join("dangling")).unwrap();
        std::fs::write(d.join("it's a file"), "x").unwrap();
        let direct = ProbeContext::for_tests(10);
        let mut through = ProbeContext::for_tests(10);
        through.executor = std::sync::Arc::new(ThroughExecutor);
        for name in ["file", "dir", "link", "dangling", "absent", "file/below", "it's a file"] {
            let path = d.join(name);
            let spec: Spec = toml::from_str(&format!(
                "path = {:?}\nsha256 = \"00\"\ncontains = [\"token\"]",
                path.display().to_string()
            ))
            .unwrap();
            let want = probe(&spec, &direct).await.unwrap();
            let got = probe(&spec, &through).await.unwrap();
            assert_eq!(got, want, "{name}");
        }
        let spec: Spec = toml::from_str("path = \"/dev/null\"").unwrap();
        assert_eq!(probe(&spec, &through).await.unwrap(), probe(&spec, &direct).await.unwrap());
    }

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

    /// A secret on a tmpfs (/dev/shm) passes `filesystem`; a file in the
    /// checkout (on the disk) fails it, naming the filesystem.
    #[tokio::test]
    async fn a_secret_on_tmpfs_passes_and_on_disk_fails() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let disk = dir.path().join("secret");
        std::fs::write(&disk, "x").unwrap();
        let spec = |p: &std::path::Path| {
            toml::from_str::<Spec>(&format!(
                "path = \"{}\"\nfilesystem = [\"tmpfs\", \"ramfs\"]",
                p.display()
            ))
            .unwrap()
        };
        let ctx = ProbeContext::for_tests(10);
        let v = run(&spec(&disk), &ctx).await;
        assert!(!v.pass && v.found.contains("secret is on "), "{v:?}");
        assert!(!v.found.contains("tmpfs"), "{v:?}");
        // /dev/shm is a tmpfs on Linux.
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let memory = shm.path().join("secret");
        std::fs::write(&memory, "x").unwrap();
        let v = run(&spec(&memory), &ctx).await;
        assert!(v.pass && v.found.contains("is on tmpfs"), "{v:?}");
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
