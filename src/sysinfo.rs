//! Facts about the host the validator runs on, for `system_info`: read
//! from /proc and uname, with the Nix version when `nix` is installed.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemInfo {
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub os: String,
    pub cpu_cores: String,
    pub memory_gb: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nix_version: Option<String>,
    pub kvm_available: bool,
}

impl SystemInfo {
    pub fn gather() -> SystemInfo {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let mem_kib = parse_meminfo_total(&read("/proc/meminfo")).unwrap_or(0);
        SystemInfo {
            hostname: read("/proc/sys/kernel/hostname"),
            kernel: read("/proc/sys/kernel/osrelease"),
            arch: std::env::consts::ARCH.to_string(),
            os: parse_os_release(&read("/etc/os-release"))
                .unwrap_or_else(|| std::env::consts::OS.to_string()),
            cpu_cores: std::thread::available_parallelism()
                .map(|n| n.get().to_string())
                .unwrap_or_else(|_| "1".into()),
            memory_gb: format!("{:.1}", mem_kib as f64 / 1024.0 / 1024.0),
            nix_version: nix_version(),
            kvm_available: std::path::Path::new("/dev/kvm").exists(),
        }
    }
}

/// `MemTotal:  24567890 kB` -> KiB.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The PRETTY_NAME of /etc/os-release.
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

fn nix_version() -> Option<String> {
    let mut nix = std::process::Command::new("nix");
    nix.arg("--version");
    // A wedged store daemon must not hold up the transcript.
    let out = crate::os::process::output_within(nix, std::time::Duration::from_secs(5)).ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.rsplit(' ')
        .next()
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       24567890 kB\nMemFree: 1 kB"),
            Some(24_567_890)
        );
        assert_eq!(parse_meminfo_total("nothing"), None);
        assert_eq!(
            parse_os_release("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
                .as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn gathers_real_values_here() {
        let info = SystemInfo::gather();
        assert!(!info.kernel.is_empty());
        assert!(info.cpu_cores.parse::<u32>().unwrap() >= 1);
        assert!(info.memory_gb.parse::<f64>().unwrap() > 0.0);
    }
}
