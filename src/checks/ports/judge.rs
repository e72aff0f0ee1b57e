//! Judges listening sockets; parses /proc/net/{tcp,udp}[6] and the socket
//! owners (`ls -l /proc/*/fd` and `/proc/*/comm`).

use std::collections::{BTreeMap, BTreeSet};

// The address value types from `core`, which has no sockets.
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::spec::Spec;
use crate::check::{all_of, Verdict};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub address: IpAddr,
    pub port: u16,
    /// The socket's inode (what /proc/<pid>/fd links name).
    pub inode: u64,
    /// The processes holding it, when they could be found.
    pub owners: Vec<Owner>,
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub comm: String,
}

impl Socket {
    pub fn loopback_only(&self) -> bool {
        self.address.is_loopback()
    }
    /// "0.0.0.0:8080", "[::]:8080".
    pub fn endpoint(&self) -> String {
        match self.address {
            IpAddr::V4(a) => format!("{a}:{}", self.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
        }
    }
}

/// The sockets and, when they could be read, who holds them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub sockets: Vec<Socket>,
    /// Why the owners could not be read (`None`: they were).
    pub owners_error: Option<String>,
}

/// Socket inode -> pids, from `ls -l /proc/[0-9]*/fd` (a `/proc/<pid>/fd:`
/// line before each process's links, `... -> socket:[<inode>]`).
pub fn parse_fd_links(text: &str) -> BTreeMap<u64, BTreeSet<u32>> {
    let mut owners: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
    let mut pid = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("/proc/") {
            pid = rest
                .strip_suffix("/fd:")
                .and_then(|p| p.parse::<u32>().ok());
        } else if let (Some(pid), Some((_, target))) = (pid, line.rsplit_once(" -> ")) {
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            {
                owners.entry(inode).or_default().insert(pid);
            }
        }
    }
    owners
}

/// pid -> command name, from `grep -s "" /proc/[0-9]*/comm`
/// (`/proc/<pid>/comm:<name>`).
pub fn parse_comms(text: &str) -> BTreeMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("/proc/")?;
            let (pid, name) = rest.split_once("/comm:")?;
            Some((pid.parse().ok()?, name.to_string()))
        })
        .collect()
}

/// Fills each socket's owners from the two tables above.
pub fn attach_owners(sockets: &mut [Socket], fd_links: &str, comms: &str) {
    let links = parse_fd_links(fd_links);
    let names = parse_comms(comms);
    for s in sockets.iter_mut() {
        s.owners = links
            .get(&s.inode)
            .into_iter()
            .flatten()
            .map(|&pid| Owner {
                pid,
                comm: names.get(&pid).cloned().unwrap_or_else(|| "?".into()),
            })
            .collect();
    }
}

/// Listening sockets of a /proc/net table: TCP state 0A (LISTEN), or UDP
/// state 07 (bound, unconnected).
pub fn parse_proc_net(text: &str, tcp: bool) -> Vec<Socket> {
    let want_state = if tcp { "0A" } else { "07" };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let _slot = f.next()?;
            let local = f.next()?;
            let _remote = f.next()?;
            let state = f.next()?;
            if state != want_state {
                return None;
            }
            // tx:rx queue, tr:when, retrnsmt, uid, timeout, then the inode.
            let inode = f.nth(5).and_then(|i| i.parse().ok()).unwrap_or(0);
            let (addr, port) = local.split_once(':')?;
            Some(Socket {
                address: parse_hex_addr(addr)?,
                port: u16::from_str_radix(port, 16).ok()?,
                inode,
                owners: Vec::new(),
            })
        })
        .collect()
}

/// Kernel hex: IPv4 one little-endian word; IPv6 four little-endian words.
fn parse_hex_addr(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(hex, 16).ok()?.swap_bytes(),
        ))),
        32 => {
            let mut bytes = [0u8; 16];
            for word in 0..4 {
                let w = u32::from_str_radix(&hex[word * 8..word * 8 + 8], 16)
                    .ok()?
                    .swap_bytes();
                bytes[word * 4..word * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

fn list(ports: &BTreeSet<u16>) -> String {
    if ports.is_empty() {
        "none".into()
    } else {
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// "0.0.0.0:8080 (pid 123 python3)" for each socket on one of `ports`.
fn named(sockets: &[&Socket], ports: &BTreeSet<u16>, owners_error: &Option<String>) -> String {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in sockets.iter().filter(|s| ports.contains(&s.port)) {
        let who = if !s.owners.is_empty() {
            s.owners
                .iter()
                .map(|o| format!("pid {} {}", o.pid, o.comm))
                .collect::<Vec<_>>()
                .join(", ")
        } else if let Some(e) = owners_error {
            format!("owner unknown: {e}")
        } else {
            "no process holds it (a kernel socket, or not visible to this user)".into()
        };
        let line = format!("{} ({who})", s.endpoint());
        if seen.insert(line.clone()) {
            out.push(line);
        }
    }
    out.join(", ")
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let sockets = facts.sockets.as_slice();
    let all: BTreeSet<u16> = sockets.iter().map(|s| s.port).collect();
    let exposed: BTreeSet<u16> = sockets
        .iter()
        .filter(|s| spec.include_loopback || !s.loopback_only())
        .map(|s| s.port)
        .collect();
    let mut parts = Vec::new();
    let want: BTreeSet<u16> = spec.listening.iter().copied().collect();
    if !want.is_empty() {
        let missing: BTreeSet<u16> = want.difference(&all).copied().collect();
        let e = format!("listening on {}", list(&want));
        parts.push(if missing.is_empty() {
            Verdict::pass(e, "all listening")
        } else {
            Verdict::fail(e, format!("not listening: {}", list(&missing)))
        });
    }
    let banned: BTreeSet<u16> = spec.not_listening.iter().copied().collect();
    if !banned.is_empty() {
        let present: BTreeSet<u16> = banned.intersection(&all).copied().collect();
        let e = format!("not listening on {}", list(&banned));
        parts.push(if present.is_empty() {
            Verdict::pass(e, "none of them listening")
        } else {
            let holders: Vec<&Socket> = sockets.iter().collect();
            Verdict::fail(
                e,
                format!(
                    "listening: {}: {}",
                    list(&present),
                    named(&holders, &present, &facts.owners_error)
                ),
            )
        });
    }
    if let Some(allowed) = &spec.allowed {
        let allowed: BTreeSet<u16> = allowed.iter().copied().collect();
        let extra: BTreeSet<u16> = exposed.difference(&allowed).copied().collect();
        let scope = if spec.include_loopback {
            ""
        } else {
            " (loopback-only sockets ignored)"
        };
        let e = format!("only {} listening{scope}", list(&allowed));
        parts.push(if extra.is_empty() {
            Verdict::pass(e, format!("listening: {}", list(&exposed)))
        } else {
            let counted: Vec<&Socket> = sockets
                .iter()
                .filter(|s| spec.include_loopback || !s.loopback_only())
                .collect();
            Verdict::fail(
                e,
                format!(
                    "unexpected listening ports: {}: {}",
                    list(&extra),
                    named(&counted, &extra, &facts.owners_error)
                ),
            )
        });
    }
    if parts.is_empty() {
        parts.push(Verdict::fail(
            "an expectation",
            "give `listening`, `not_listening` or `allowed`",
        ));
    }
    let mut evidence: Vec<String> = sockets
        .iter()
        .map(|s| {
            let who: Vec<String> = s
                .owners
                .iter()
                .map(|o| format!("pid {} {}", o.pid, o.comm))
                .collect();
            if who.is_empty() {
                s.endpoint()
            } else {
                format!("{} ({})", s.endpoint(), who.join(", "))
            }
        })
        .collect();
    evidence.sort();
    evidence.dedup();
    all_of(parts).with_evidence(format!("listening sockets:\n{}", evidence.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 21424 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19080 1 0000000000000000 100 0 0 10 0
   2: 0100007F:C350 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 0 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0BBA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1
";

    fn sockets() -> Vec<Socket> {
        let mut s = parse_proc_net(TCP, true);
        s.extend(parse_proc_net(TCP6, true));
        s
    }

    #[test]
    fn parses_v4_and_v6_listeners_only() {
        let s = sockets();
        assert_eq!(s.len(), 4, "{s:?}");
        let at = |s: &Socket| (s.address, s.port, s.inode);
        assert_eq!(at(&s[0]), ("127.0.0.1".parse().unwrap(), 5432, 21424));
        assert_eq!(at(&s[1]), ("0.0.0.0".parse().unwrap(), 22, 19080));
        assert_eq!(at(&s[2]), ("::".parse().unwrap(), 3002, 1));
        assert_eq!(at(&s[3]), ("::1".parse().unwrap(), 80, 7));
    }

    const FD_LINKS: &str = "/proc/1/fd:
lrwx------ 1 root root 64 Dec  2 01:00 3 -> socket:[19080]
lr-x------ 1 root root 64 Dec  2 01:00 4 -> /dev/null

/proc/812/fd:
lrwx------ 1 root root 64 Dec  2 01:00 5 -> socket:[1]
lrwx------ 1 root root 64 Dec  2 01:00 6 -> socket:[19080]
";
    const COMMS: &str = "/proc/1/comm:sshd\n/proc/812/comm:python3\n";

    #[test]
    fn owners_are_found_by_inode() {
        let mut s = sockets();
        attach_owners(&mut s, FD_LINKS, COMMS);
        let names = |s: &Socket| {
            s.owners
                .iter()
                .map(|o| format!("{} {}", o.pid, o.comm))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&s[1]), ["1 sshd", "812 python3"]);
        assert_eq!(names(&s[2]), ["812 python3"]);
        assert!(s[0].owners.is_empty());
    }

    fn check(spec_text: &str, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(spec_text).unwrap();
        let mut sockets = sockets();
        attach_owners(&mut sockets, FD_LINKS, COMMS);
        let facts = Facts {
            sockets,
            owners_error: None,
        };
        let v = judge(&spec, &facts);
        assert_eq!(v.pass, pass, "{spec_text}: {v:?}");
        assert!(v.found.contains(found), "{spec_text}: {:?}", v.found);
    }

    #[test]
    fn cases() {
        check("allowed = [22, 3002]", true, "listening: 22, 3002");
        check(
            "allowed = [22]",
            false,
            "unexpected listening ports: 3002: [::]:3002 (pid 812 python3)",
        );
        check(
            "allowed = [22, 3002]\ninclude_loopback = true",
            false,
            "unexpected listening ports: 80, 5432: 127.0.0.1:5432 (no process holds it",
        );
        check("listening = [22, 443]", false, "not listening: 443");
        check("not_listening = [23]", true, "");
        check(
            "not_listening = [22]",
            false,
            "listening: 22: 0.0.0.0:22 (pid 1 sshd, pid 812 python3)",
        );
        check("", false, "give `listening`");
    }

    #[test]
    fn unreadable_owners_are_said_so() {
        let spec: Spec = toml::from_str("allowed = [22]").unwrap();
        let facts = Facts {
            sockets: sockets(),
            owners_error: Some("ls: permission denied".into()),
        };
        let v = judge(&spec, &facts);
        assert!(
            v.found
                .contains("[::]:3002 (owner unknown: ls: permission denied)"),
            "{v:?}"
        );
    }
}
