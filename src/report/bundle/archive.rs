//! The bundle on disk: a gzip-compressed tar of regular files with plain
//! relative names. Reading never extracts: every member is read into memory,
//! within a size cap, and an archive with a link, a directory, a device, an
//! unsafe or a repeated name is refused with that member's name.

use std::collections::BTreeMap;
use std::io::Read;

use super::manifest::safe_name;

/// The most a bundle may hold, uncompressed (members and tar headers).
pub const MAX_BYTES: u64 = 512 * 1024 * 1024;

/// gzip's magic number: how `verify` tells a bundle from a JSON file.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// The tar.gz of `members` (name, bytes), in this order.
pub fn pack(members: &[(String, Vec<u8>)], mtime: u64) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, name, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

/// Why an archive cannot be read as a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not gzip, not tar, truncated, or over the cap.
    Archive(String),
    /// A member that no bundle may hold.
    Member { name: String, why: String },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Archive(why) => write!(f, "not a readable bundle: {why}"),
            ReadError::Member { name, why } => write!(f, "member `{name}`: {why}"),
        }
    }
}

/// Every member of the tar.gz read from `input`, by name.
pub fn unpack(input: impl Read) -> Result<BTreeMap<String, Vec<u8>>, ReadError> {
    unpack_within(input, MAX_BYTES)
}

/// `unpack`, refusing more than `cap` bytes uncompressed.
fn unpack_within(input: impl Read, cap: u64) -> Result<BTreeMap<String, Vec<u8>>, ReadError> {
    // One byte past the cap tells "over the cap" from "exactly the cap".
    let capped = flate2::read::GzDecoder::new(input).take(cap + 1);
    let mut archive = tar::Archive::new(capped);
    let entries = archive
        .entries()
        .map_err(|e| ReadError::Archive(format!("not a tar.gz: {e}")))?;
    let mut members = BTreeMap::new();
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(&e, total, cap))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |why: String| ReadError::Member {
            name: name.clone(),
            why,
        };
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular {
            return Err(refuse(format!(
                "{} (a bundle holds regular files only)",
                kind_name(kind)
            )));
        }
        if std::str::from_utf8(&entry.path_bytes()).is_err() {
            return Err(refuse("a path that is not UTF-8".into()));
        }
        safe_name(&name).map_err(|why| refuse(format!("unsafe path: {why}")))?;
        let size = entry.size();
        total = total.saturating_add(size);
        if total > cap {
            return Err(over_cap(cap));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| archive_error(&e, total, cap))?;
        if bytes.len() as u64 != size {
            return Err(refuse("truncated".into()));
        }
        if members.insert(name.clone(), bytes).is_some() {
            return Err(refuse("appears twice".into()));
        }
    }
    Ok(members)
}

fn over_cap(cap: u64) -> ReadError {
    ReadError::Archive(format!("more than {cap} bytes uncompressed"))
}

fn archive_error(e: &std::io::Error, total: u64, cap: u64) -> ReadError {
    if total >= cap {
        over_cap(cap)
    } else {
        ReadError::Archive(format!("cannot read the archive: {e}"))
    }
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "a symbolic link".into(),
        tar::EntryType::Link => "a hard link".into(),
        tar::EntryType::Directory => "a directory".into(),
        tar::EntryType::Char | tar::EntryType::Block => "a device".into(),
        tar::EntryType::Fifo => "a FIFO".into(),
        other => format!("an entry of type {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_member(name: &[u8], kind: tar::EntryType, data: &[u8]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        tar.append(&header, data).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn members_come_back_as_packed() {
        let packed = pack(
            &[
                ("a.json".into(), b"{}".to_vec()),
                ("b.log".into(), Vec::new()),
            ],
            0,
        )
        .unwrap();
        assert!(is_gzip(&packed));
        let members = unpack(packed.as_slice()).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members["a.json"], b"{}");
        assert_eq!(members["b.log"], b"");
    }

    #[test]
    fn crafted_members_are_refused_by_name() {
        use tar::EntryType::*;
        for (name, kind, expect) in [
            (&b"../evil"[..], Regular, "unsafe path: a path with `..`"),
            (b"/etc/cron.d/x", Regular, "unsafe path: an absolute path"),
            (b"a/../../x", Regular, "unsafe path: a path with `..`"),
            (b"link", Symlink, "a symbolic link"),
            (b"hard", Link, "a hard link"),
            (b"dir/", Directory, "a directory"),
            (b"dev", Char, "a device"),
        ] {
            let err = unpack(raw_member(name, kind, b"x").as_slice()).unwrap_err();
            let text = err.to_string();
            let shown = String::from_utf8_lossy(name);
            assert!(
                text.starts_with(&format!("member `{shown}`")) && text.contains(expect),
                "{shown}: {text}"
            );
        }
    }

    #[test]
    fn more_than_the_cap_is_refused() {
        let packed = pack(&[("big".into(), vec![b'x'; 4096])], 0).unwrap();
        assert!(unpack_within(packed.as_slice(), 1 << 20).is_ok());
        let err = unpack_within(packed.as_slice(), 2048).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a readable bundle: more than 2048 bytes uncompressed"
        );
    }

    #[test]
    fn a_name_twice_and_garbage_are_refused() {
        let twice = pack(
            &[("a".into(), b"1".to_vec()), ("a".into(), b"2".to_vec())],
            0,
        )
        .unwrap();
        assert_eq!(
            unpack(twice.as_slice()).unwrap_err().to_string(),
            "member `a`: appears twice"
        );
        let err = unpack(&b"{\"not\": \"a bundle\"}"[..]).unwrap_err();
        assert!(matches!(err, ReadError::Archive(_)), "{err}");
    }
}
