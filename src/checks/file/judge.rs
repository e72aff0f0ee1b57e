//! Judges file facts; also the pure /etc/passwd and /etc/group lookups.

use super::spec::{Kind, Spec, MAX_CONTENT};
use crate::check::{all_of, Verdict};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub exists: bool,
    /// The type of what the path points to (links followed).
    pub kind: Option<Kind>,
    pub is_symlink: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner_name: Option<String>,
    pub group_name: Option<String>,
    pub size: u64,
    pub sha256: Option<String>,
    pub content: Option<String>,
    pub content_truncated: bool,
    /// Reading failed (permission denied...).
    pub error: Option<String>,
    /// /etc/passwd and /etc/group text, to resolve names in the spec.
    pub users: String,
    pub groups: String,
    /// The type of the filesystem holding the path (`stat -f -c %T`), or
    /// why it could not be read; `None` when `filesystem` is not asked.
    pub filesystem: Option<Result<String, String>>,
}

/// The name of `id` in passwd/group text (`name:x:id:...`).
pub fn name_of_id(table: &str, id: u32) -> Option<String> {
    table.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next()?;
        (f.next()?.parse::<u32>().ok()? == id).then(|| name.to_string())
    })
}

/// The id of `name` (or `name` itself when numeric).
pub fn id_of_name(table: &str, name: &str) -> Option<u32> {
    if let Ok(id) = name.parse() {
        return Some(id);
    }
    table.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        let _ = f.next()?;
        f.next()?.parse().ok()
    })
}

/// "0640" -> 0o640; None when not octal.
pub fn parse_mode(text: &str) -> Option<u32> {
    let t = text.trim().trim_start_matches("0o");
    if t.is_empty() || t.len() > 5 {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|m| *m <= 0o7777)
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Directory => "directory",
        Kind::Symlink => "symlink",
    }
}

pub fn judge(spec: &Spec, f: &Facts) -> Verdict {
    let path = spec.path.display();
    if !spec.exists {
        let e = format!("{path} does not exist");
        return if f.exists {
            Verdict::fail(e, format!("{path} exists"))
        } else {
            Verdict::pass(e.clone(), e)
        };
    }
    if !f.exists {
        let found = match &f.error {
            Some(e) => format!("{path} cannot be inspected: {e}"),
            None => format!("{path} does not exist"),
        };
        return Verdict::fail(format!("{path} exists"), found);
    }
    let mut parts = vec![Verdict::pass(
        format!("{path} exists"),
        format!("{path} exists"),
    )];
    let mode_text = format!("{:04o}", f.mode);
    if let Some(want) = spec.kind {
        let found = if f.is_symlink && want == Kind::Symlink {
            "symlink"
        } else {
            f.kind
                .map(kind_name)
                .unwrap_or("special file (socket, fifo or device) or a dangling link")
        };
        let v = format!("{path} is a {}", kind_name(want));
        let ok = match want {
            Kind::Symlink => f.is_symlink,
            other => f.kind == Some(other),
        };
        parts.push(if ok {
            Verdict::pass(v.clone(), v)
        } else {
            Verdict::fail(v, format!("{path} is a {found}"))
        });
    }
    // A dangling link: only `exists` and `kind` can be judged; every
    // property of the (missing) target fails instead of reading zeros.
    if f.is_symlink && f.kind.is_none() && f.error.is_some() {
        let asks_target = spec.mode.is_some()
            || spec.mode_max.is_some()
            || spec.owner.is_some()
            || spec.group.is_some()
            || spec.min_size.is_some()
            || spec.sha256.is_some()
            || !spec.contains.is_empty()
            || !spec.not_contains.is_empty();
        if asks_target {
            parts.push(Verdict::fail(
                format!("{path} points at something to inspect"),
                format!(
                    "{path} is a dangling symlink: {}",
                    f.error.as_deref().unwrap_or("")
                ),
            ));
        }
        return all_of(parts).with_evidence(format!("{path}: dangling symlink"));
    }
    if let Some(m) = &spec.mode {
        parts.push(match parse_mode(m) {
            None => Verdict::fail(
                format!("mode {m}"),
                format!("`{m}` is not an octal mode such as \"0600\""),
            ),
            Some(want) if want == f.mode => {
                Verdict::pass(format!("mode {want:04o}"), format!("mode {mode_text}"))
            }
            Some(want) => Verdict::fail(format!("mode {want:04o}"), format!("mode {mode_text}")),
        });
    }
    if let Some(m) = &spec.mode_max {
        parts.push(match parse_mode(m) {
            None => Verdict::fail(
                format!("mode at most {m}"),
                format!("`{m}` is not an octal mode such as \"0640\""),
            ),
            Some(max) if f.mode & !max == 0 => Verdict::pass(
                format!("mode at most {max:04o}"),
                format!("mode {mode_text}"),
            ),
            Some(max) => Verdict::fail(
                format!("mode at most {max:04o}"),
                format!("mode {mode_text} (extra bits {:04o})", f.mode & !max),
            ),
        });
    }
    for (what, want, id, name, table) in [
        ("owner", &spec.owner, f.uid, &f.owner_name, &f.users),
        ("group", &spec.group, f.gid, &f.group_name, &f.groups),
    ] {
        if let Some(want) = want {
            let found = format!("{what} {} ({id})", name.as_deref().unwrap_or("?"));
            parts.push(match id_of_name(table, want) {
                Some(want_id) if want_id == id => Verdict::pass(format!("{what} {want}"), found),
                Some(_) => Verdict::fail(format!("{what} {want}"), found),
                None => Verdict::fail(
                    format!("{what} {want}"),
                    format!("no {what} named `{want}` on this host; {found}"),
                ),
            });
        }
    }
    if let Some(allowed) = &spec.filesystem {
        let e = format!("{path} on a filesystem of type {}", allowed.join(" or "));
        parts.push(match &f.filesystem {
            Some(Ok(fs)) if allowed.iter().any(|a| a == fs) => {
                Verdict::pass(e, format!("{path} is on {fs}"))
            }
            Some(Ok(fs)) => Verdict::fail(e, format!("{path} is on {fs}")),
            Some(Err(why)) => Verdict::fail(e, format!("filesystem type unknown: {why}")),
            None => Verdict::fail(e, "filesystem type not read"),
        });
    }
    if let Some(min) = spec.min_size {
        let v = format!("size at least {min} bytes");
        parts.push(if f.size >= min {
            Verdict::pass(v, format!("{} bytes", f.size))
        } else {
            Verdict::fail(v, format!("{} bytes", f.size))
        });
    }
    if let Some(want) = &spec.sha256 {
        let want = want
            .trim()
            .trim_start_matches("sha256:")
            .to_ascii_lowercase();
        let found = f.sha256.clone().unwrap_or_else(|| {
            f.error
                .clone()
                .unwrap_or_else(|| "not a regular file".into())
        });
        parts.push(if f.sha256.as_deref() == Some(want.as_str()) {
            Verdict::pass(format!("sha256 {want}"), format!("sha256 {found}"))
        } else {
            Verdict::fail(format!("sha256 {want}"), format!("sha256 {found}"))
        });
    }
    let content = f.content.as_deref();
    for (needle, want) in spec
        .contains
        .iter()
        .map(|n| (n, true))
        .chain(spec.not_contains.iter().map(|n| (n, false)))
    {
        let e = if want {
            format!("content contains {needle:?}")
        } else {
            format!("content does not contain {needle:?}")
        };
        parts.push(match content {
            None => Verdict::fail(
                e,
                f.error
                    .clone()
                    .unwrap_or_else(|| "content not readable (not a regular file)".into()),
            ),
            Some(text) => {
                let has = text.contains(needle.as_str());
                let found = if has {
                    format!("content contains {needle:?}")
                } else {
                    format!("content lacks {needle:?}")
                };
                if has == want {
                    Verdict::pass(e, found)
                } else {
                    Verdict::fail(e, found)
                }
            }
        });
    }
    let mut evidence = format!(
        "{path}: {} mode {mode_text} owner {}({}) group {}({}) size {}",
        f.kind.map(kind_name).unwrap_or("?"),
        f.owner_name.as_deref().unwrap_or("?"),
        f.uid,
        f.group_name.as_deref().unwrap_or("?"),
        f.gid,
        f.size
    );
    if let Some(Ok(fs)) = &f.filesystem {
        evidence.push_str(&format!(" filesystem {fs}"));
    }
    if f.content_truncated {
        evidence.push_str(&format!("\n(content read up to {MAX_CONTENT} bytes)"));
    }
    all_of(parts).with_evidence(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\npostgres:x:105:110::/var/lib/postgresql:/bin/bash\n";

    #[test]
    fn lookups() {
        assert_eq!(name_of_id(PASSWD, 105).as_deref(), Some("postgres"));
        assert_eq!(name_of_id(PASSWD, 7), None);
        assert_eq!(id_of_name(PASSWD, "root"), Some(0));
        assert_eq!(id_of_name(PASSWD, "1000"), Some(1000));
        assert_eq!(id_of_name(PASSWD, "nobody"), None);
        assert_eq!(parse_mode("0640"), Some(0o640));
        assert_eq!(parse_mode("640"), Some(0o640));
        assert_eq!(parse_mode("0999"), None);
        assert_eq!(parse_mode("rw-"), None);
    }

    fn facts(mode: u32, uid: u32) -> Facts {
        Facts {
            exists: true,
            kind: Some(Kind::File),
            mode,
            uid,
            owner_name: name_of_id(PASSWD, uid),
            users: PASSWD.into(),
            ..Facts::default()
        }
    }

    fn check(spec_text: &str, f: Facts, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(&format!("path = \"/x\"\n{spec_text}")).unwrap();
        let v = judge(&spec, &f);
        assert_eq!(v.pass, pass, "{spec_text}: {v:?}");
        assert!(v.found.contains(found), "{spec_text}: {:?}", v.found);
    }

    #[test]
    fn cases() {
        check("mode_max = \"0600\"", facts(0o400, 0), true, "0400");
        check(
            "mode_max = \"0600\"",
            facts(0o640, 0),
            false,
            "extra bits 0040",
        );
        check("mode = \"0600\"", facts(0o600, 0), true, "");
        check("mode = \"rw\"", facts(0o600, 0), false, "not an octal mode");
        check("owner = \"postgres\"", facts(0o600, 105), true, "postgres");
        check(
            "owner = \"root\"",
            facts(0o600, 105),
            false,
            "owner postgres (105)",
        );
        check(
            "owner = \"ghost\"",
            facts(0o600, 0),
            false,
            "no owner named `ghost`",
        );
        check("kind = \"directory\"", facts(0o600, 0), false, "is a file");
        check("", Facts::default(), false, "does not exist");
        check("exists = false", Facts::default(), true, "");
        let on = |fs: Result<&str, &str>| Facts {
            filesystem: Some(fs.map(str::to_string).map_err(str::to_string)),
            ..facts(0o400, 0)
        };
        let memory = "filesystem = [\"tmpfs\", \"ramfs\"]";
        check(memory, on(Ok("ramfs")), true, "/x is on ramfs");
        check(memory, on(Ok("tmpfs")), true, "/x is on tmpfs");
        check(memory, on(Ok("ext2/ext3")), false, "/x is on ext2/ext3");
        check(
            memory,
            on(Err("stat: cannot read file system information")),
            false,
            "filesystem type unknown: stat: cannot",
        );
    }
}
