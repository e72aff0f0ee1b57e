//! Judges listening sockets; parses /proc/net/{tcp,udp}[6].

use std::collections::BTreeSet;

// The address value types from `core`, which has no sockets.
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::spec::Spec;
use crate::check::{all_of, Verdict};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub address: IpAddr,
    pub port: u16,
}

impl Socket {
    pub fn loopback_only(&self) -> bool {
        self.address.is_loopback()
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
            let (addr, port) = local.split_once(':')?;
            Some(Socket {
                address: parse_hex_addr(addr)?,
                port: u16::from_str_radix(port, 16).ok()?,
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

pub fn judge(spec: &Spec, sockets: &[Socket]) -> Verdict {
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
            Verdict::fail(e, format!("listening: {}", list(&present)))
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
            Verdict::fail(e, format!("unexpected listening ports: {}", list(&extra)))
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
        .map(|s| format!("{}:{}", s.address, s.port))
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
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
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
        assert_eq!(
            s[0],
            Socket {
                address: "127.0.0.1".parse().unwrap(),
                port: 5432
            }
        );
        assert_eq!(s[1].port, 22);
        assert_eq!(
            s[2],
            Socket {
                address: "::".parse().unwrap(),
                port: 3002
            }
        );
        assert_eq!(
            s[3],
            Socket {
                address: "::1".parse().unwrap(),
                port: 80
            }
        );
    }

    fn check(spec_text: &str, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(spec_text).unwrap();
        let v = judge(&spec, &sockets());
        assert_eq!(v.pass, pass, "{spec_text}: {v:?}");
        assert!(v.found.contains(found), "{spec_text}: {:?}", v.found);
    }

    #[test]
    fn cases() {
        check("allowed = [22, 3002]", true, "listening: 22, 3002");
        check("allowed = [22]", false, "unexpected listening ports: 3002");
        check(
            "allowed = [22, 3002]\ninclude_loopback = true",
            false,
            "unexpected listening ports: 80, 5432",
        );
        check("listening = [22, 443]", false, "not listening: 443");
        check("not_listening = [23]", true, "");
        check("not_listening = [22]", false, "listening: 22");
        check("", false, "give `listening`");
    }
}
