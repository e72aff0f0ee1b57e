//! Facts about the machine that ran the validation, for the transcript's
//! `system_info`: hostname, kernel and arch from uname(2), CPU count and
//! memory from /proc, and the Nix version when `nix --version` works.

use serde::{Deserialize, Serialize};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The seed's `system_info` object (counts are strings, as in the seed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_cores: String,
    pub memory_gb: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nix_version: Option<String>,
}

impl SystemInfo {
    /// Reads the real values of this machine. Never fails: an unreadable
    /// value is recorded as "unknown".
    pub fn gather() -> SystemInfo {
        let uname = uname();
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_meminfo_total_kib(&text));
        SystemInfo {
            hostname: uname.nodename,
            kernel: uname.release,
            arch: uname.machine,
            cpu_cores: std::thread::available_parallelism()
                .map(|n| n.get().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            memory_gb: memory_kib
                .map(format_gib)
                .unwrap_or_else(|| "unknown".into()),
            nix_version: nix_version(),
        }
    }
}

struct Uname {
    nodename: String,
    release: String,
    machine: String,
}

fn uname() -> Uname {
    // SAFETY: utsname is plain old data; uname(2) fills it or returns -1.
    let mut raw: libc::utsname = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::uname(&mut raw) } == 0;
    let field = |chars: &[libc::c_char]| -> String {
        if !ok {
            return "unknown".into();
        }
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Uname {
        nodename: field(&raw.nodename),
        release: field(&raw.release),
        machine: field(&raw.machine),
    }
}

/// `MemTotal:       24573812 kB` -> 24573812.
fn parse_meminfo_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// KiB -> whole GiB, rounded to nearest (the seed writes "16").
fn format_gib(kib: u64) -> String {
    ((kib as f64 / (1024.0 * 1024.0)).round() as u64).to_string()
}

/// `nix (Nix) 2.8.0` -> "2.8.0"; None when nix is absent or hangs (2 s cap).
fn nix_version() -> Option<String> {
    let mut child = Command::new("nix")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut out = String::new();
    use std::io::Read;
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    parse_nix_version(&out)
}

fn parse_nix_version(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .last()
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_real_values_of_this_machine() {
        let info = SystemInfo::gather();
        assert!(!info.hostname.is_empty() && info.hostname != "unknown");
        assert!(
            info.kernel.chars().next().unwrap().is_ascii_digit(),
            "{info:?}"
        );
        assert_eq!(info.arch, std::env::consts::ARCH);
        assert!(info.cpu_cores.parse::<u32>().unwrap() >= 1);
        assert!(info.memory_gb.parse::<u64>().is_ok(), "{info:?}");
    }

    #[test]
    fn parses_meminfo_and_nix_version() {
        let meminfo = "MemFree: 1 kB\nMemTotal:       24573812 kB\n";
        assert_eq!(parse_meminfo_total_kib(meminfo), Some(24573812));
        assert_eq!(format_gib(24573812), "23");
        assert_eq!(parse_meminfo_total_kib("garbage"), None);
        assert_eq!(parse_nix_version("nix (Nix) 2.8.0\n"), Some("2.8.0".into()));
        assert_eq!(parse_nix_version("error"), None);
    }
}
