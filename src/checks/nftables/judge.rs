//! Reads the ruleset of `nft -j list ruleset` (JSON) and judges the input
//! hook: it drops by default and accepts new TCP connections only on the
//! allowed ports.
//!
//! A port is admitted by a chain when a rule whose verdict is `accept`
//! matches it, directly or through `jump`/`goto` and verdict maps (`vmap`),
//! following chains of the same table. Rules that accept only loopback
//! traffic (`iif`/`iifname "lo"`), only `ct state established,related`
//! or only another protocol (udp, icmp...) open no TCP port. A rule that
//! accepts without a `tcp dport` match (`ip saddr 10.0.0.0/8 accept`)
//! opens every port. Ports a rule drops before a later accept are still
//! counted as admitted: the judge may see more than the kernel lets in,
//! never less. Every base chain on the input hook must accept a packet for
//! it to get through, so the admitted ports are those every input chain
//! with policy drop admits.

use std::collections::BTreeMap;

use serde_json::Value;

use super::spec::Spec;
use crate::check::{all_of, excerpt, Verdict};

/// What `nft -j list ruleset` printed, or why it printed nothing usable.
pub use crate::checks::ran::Ran as Facts;

/// Inclusive port ranges, sorted and merged.
pub type Ports = Vec<(u16, u16)>;

/// Every TCP port.
const ALL: (u16, u16) = (0, u16::MAX);

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub family: String,
    pub table: String,
    pub name: String,
    pub hook: Option<String>,
    pub policy: Option<String>,
    pub rules: Vec<Rule>,
}

impl Chain {
    pub fn label(&self) -> String {
        format!("{} {} {}", self.family, self.table, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub handle: u64,
    pub expr: Vec<Value>,
}

/// The parts of a ruleset the judge reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
    /// Named sets: (family, table, name) -> elements.
    pub sets: BTreeMap<(String, String, String), Vec<Value>>,
}

/// Parses `nft -j list ruleset` output.
pub fn parse(json: &str) -> Result<Ruleset, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("no `nftables` array in the JSON")?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut rs = Ruleset::default();
    let mut rules = Vec::new();
    for item in items {
        if let Some(c) = item.get("chain") {
            rs.chains.push(Chain {
                family: text(c, "family").unwrap_or_default(),
                table: text(c, "table").unwrap_or_default(),
                name: text(c, "name").unwrap_or_default(),
                hook: text(c, "hook"),
                policy: text(c, "policy"),
                rules: Vec::new(),
            });
        } else if let Some(s) = item.get("set").or_else(|| item.get("map")) {
            let key = (
                text(s, "family").unwrap_or_default(),
                text(s, "table").unwrap_or_default(),
                text(s, "name").unwrap_or_default(),
            );
            let elem = match s.get("elem") {
                Some(Value::Array(a)) => a.clone(),
                Some(other) => vec![other.clone()],
                None => Vec::new(),
            };
            rs.sets.insert(key, elem);
        } else if let Some(r) = item.get("rule") {
            rules.push(r.clone());
        }
    }
    for r in rules {
        let (family, table, chain) = (
            text(&r, "family").unwrap_or_default(),
            text(&r, "table").unwrap_or_default(),
            text(&r, "chain").unwrap_or_default(),
        );
        if let Some(c) = rs
            .chains
            .iter_mut()
            .find(|c| c.family == family && c.table == table && c.name == chain)
        {
            c.rules.push(Rule {
                handle: r.get("handle").and_then(Value::as_u64).unwrap_or(0),
                expr: r
                    .get("expr")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }
    Ok(rs)
}

// ---- port ranges ----

fn normalize(mut p: Ports) -> Ports {
    p.sort();
    let mut out: Ports = Vec::new();
    for (a, b) in p {
        let (a, b) = (a.min(b), a.max(b));
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn intersect(x: &Ports, y: &Ports) -> Ports {
    let mut out = Vec::new();
    for &(a, b) in x {
        for &(c, d) in y {
            let (lo, hi) = (a.max(c), b.min(d));
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    }
    normalize(out)
}

fn complement(x: &Ports) -> Ports {
    let mut out = Vec::new();
    let mut next: u32 = 0;
    for &(a, b) in &normalize(x.clone()) {
        if (a as u32) > next {
            out.push((next as u16, a - 1));
        }
        next = b as u32 + 1;
    }
    if next <= u16::MAX as u32 {
        out.push((next as u16, u16::MAX));
    }
    out
}

fn subtract(x: &Ports, y: &Ports) -> Ports {
    intersect(x, &complement(y))
}

/// "22, 3002, 9000-9010"; "every TCP port"; "every TCP port except 22".
pub fn show(p: &Ports) -> String {
    if p.as_slice() == [ALL] {
        return "every TCP port".into();
    }
    let count: u32 = p.iter().map(|&(a, b)| b as u32 - a as u32 + 1).sum();
    if count > 1 << 15 {
        return format!("every TCP port except {}", list(&complement(p)));
    }
    list(p)
}

fn list(p: &Ports) -> String {
    p.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- rule analysis ----

/// What one `match` expression means for new TCP connections.
enum Match {
    /// Only loopback traffic.
    Loopback,
    /// Only packets of connections already admitted.
    EstablishedOnly,
    /// Only another protocol than TCP.
    NotTcp,
    /// Only these TCP destination ports.
    Dport(Ports),
    /// Something else (addresses, flags): no bound on the ports.
    Other,
}

/// The strings or numbers of a match's right side (a value, a list, a set).
fn values(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.iter().flat_map(values).collect(),
        Value::Object(o) if o.contains_key("set") => values(&o["set"]),
        other => vec![other.clone()],
    }
}

fn is_str(v: &Value, s: &str) -> bool {
    v.as_str() == Some(s)
}

struct Scope<'a> {
    rs: &'a Ruleset,
    family: &'a str,
    table: &'a str,
}

impl Scope<'_> {
    /// The ports a right-hand side names; `None` when it names something
    /// this judge cannot read (then it is taken for every port).
    fn ports_of(&self, v: &Value) -> Option<Ports> {
        let mut out = Vec::new();
        for item in values(v) {
            match &item {
                Value::Number(n) => {
                    let p = u16::try_from(n.as_u64()?).ok()?;
                    out.push((p, p));
                }
                Value::String(s) if s.starts_with('@') => {
                    let key = (
                        self.family.to_string(),
                        self.table.to_string(),
                        s[1..].to_string(),
                    );
                    let elems = self.rs.sets.get(&key)?;
                    out.extend(self.ports_of(&Value::Array(elems.clone()))?);
                }
                Value::String(s) => {
                    let p: u16 = s.parse().ok()?;
                    out.push((p, p));
                }
                Value::Object(o) if o.contains_key("range") => {
                    let r = o["range"].as_array()?;
                    let a = u16::try_from(r.first()?.as_u64()?).ok()?;
                    let b = u16::try_from(r.get(1)?.as_u64()?).ok()?;
                    out.push((a, b));
                }
                Value::Object(o) if o.contains_key("elem") => {
                    out.extend(self.ports_of(o["elem"].get("val")?)?);
                }
                _ => return None,
            }
        }
        Some(normalize(out))
    }

    fn classify(&self, m: &Value) -> Match {
        let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
        let positive = op == "==" || op == "in";
        let (Some(left), Some(right)) = (m.get("left"), m.get("right")) else {
            return Match::Other;
        };
        let right_values = values(right);
        if let Some(meta) = left.get("meta").and_then(|m| m.get("key")).and_then(Value::as_str)
        {
            return match meta {
                "iif" | "iifname" if positive && right_values.iter().all(|v| is_str(v, "lo")) => {
                    Match::Loopback
                }
                "l4proto" => l4proto(positive, &right_values),
                _ => Match::Other,
            };
        }
        if left.get("ct").and_then(|c| c.get("key")).and_then(Value::as_str) == Some("state") {
            let only_old = right_values
                .iter()
                .all(|v| is_str(v, "established") || is_str(v, "related"));
            return if positive && only_old {
                Match::EstablishedOnly
            } else {
                Match::Other
            };
        }
        if let Some(payload) = left.get("payload") {
            let protocol = payload.get("protocol").and_then(Value::as_str).unwrap_or("");
            let field = payload.get("field").and_then(Value::as_str).unwrap_or("");
            return match (protocol, field) {
                ("tcp" | "th", "dport") => {
                    let ports = self.ports_of(right).unwrap_or_else(|| vec![ALL]);
                    match op {
                        "==" | "in" => Match::Dport(ports),
                        "!=" => Match::Dport(complement(&ports)),
                        // <, >, <= ...: no bound this judge reads.
                        _ => Match::Dport(vec![ALL]),
                    }
                }
                ("ip", "protocol") | ("ip6", "nexthdr") => l4proto(positive, &right_values),
                ("tcp" | "th" | "ip" | "ip6" | "ether" | "vlan", _) => Match::Other,
                // udp, icmp, icmpv6, sctp...: a header TCP packets lack.
                _ => Match::NotTcp,
            };
        }
        Match::Other
    }
}

fn l4proto(positive: bool, values: &[Value]) -> Match {
    let tcp = values
        .iter()
        .any(|v| is_str(v, "tcp") || v.as_u64() == Some(6));
    if positive != tcp {
        Match::NotTcp
    } else {
        Match::Other
    }
}

/// One rule's accept of some ports, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Admit {
    pub ports: Ports,
    /// "inet nixos-fw input-allow handle 12"
    pub rule: String,
}

const VERDICTS: &[&str] = &["accept", "drop", "reject", "jump", "goto", "return", "vmap", "queue"];

struct Walker<'a> {
    scope: Scope<'a>,
    admitted: Vec<Admit>,
}

impl Walker<'_> {
    fn walk(&mut self, chain: &Chain, within: &Ports, depth: usize) {
        // nft refuses loops; the bound keeps a malformed ruleset finite.
        if depth > 16 {
            return;
        }
        for rule in &chain.rules {
            let mut ports = within.clone();
            let mut opens_nothing = false;
            let mut verdict = None;
            for e in &rule.expr {
                if let Some(m) = e.get("match") {
                    match self.scope.classify(m) {
                        Match::Loopback | Match::EstablishedOnly | Match::NotTcp => {
                            opens_nothing = true
                        }
                        Match::Dport(p) => ports = intersect(&ports, &p),
                        Match::Other => {}
                    }
                } else if let Some(obj) = e.as_object() {
                    if obj.keys().any(|k| VERDICTS.contains(&k.as_str())) {
                        verdict = Some(e);
                    }
                }
            }
            if opens_nothing || ports.is_empty() {
                continue;
            }
            let at = format!("{} handle {}", chain.label(), rule.handle);
            if let Some(v) = verdict {
                self.apply(v, &ports, &at, depth);
            }
        }
    }

    fn apply(&mut self, verdict: &Value, ports: &Ports, at: &str, depth: usize) {
        if verdict.get("accept").is_some() {
            let admit = Admit {
                ports: ports.clone(),
                rule: at.to_string(),
            };
            // Reached twice (`new` and `untracked` jump to the same chain).
            if !self.admitted.contains(&admit) {
                self.admitted.push(admit);
            }
        } else if let Some(target) = verdict
            .get("jump")
            .or_else(|| verdict.get("goto"))
            .and_then(|j| j.get("target"))
            .and_then(Value::as_str)
        {
            let rs = self.scope.rs;
            if let Some(next) = rs.chains.iter().find(|c| {
                c.family == self.scope.family && c.table == self.scope.table && c.name == target
            }) {
                self.walk(next, ports, depth + 1);
            }
        } else if let Some(vmap) = verdict.get("vmap") {
            self.vmap(vmap, ports, at, depth);
        }
    }

    fn vmap(&mut self, vmap: &Value, ports: &Ports, at: &str, depth: usize) {
        let key = vmap.get("key").cloned().unwrap_or(Value::Null);
        let entries: Vec<Value> = match vmap.get("data") {
            Some(Value::Object(o)) if o.contains_key("set") => {
                o["set"].as_array().cloned().unwrap_or_default()
            }
            Some(Value::String(name)) if name.starts_with('@') => self
                .scope
                .rs
                .sets
                .get(&(
                    self.scope.family.to_string(),
                    self.scope.table.to_string(),
                    name[1..].to_string(),
                ))
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for entry in entries {
            let Some([k, v]) = entry.as_array().map(Vec::as_slice) else {
                continue;
            };
            // The entry is the match `key == k`.
            let m = serde_json::json!({ "op": "==", "left": key, "right": k });
            let entry_ports = match self.scope.classify(&m) {
                Match::Loopback | Match::NotTcp => continue,
                // Established packets may be accepted; a jump still sees them.
                Match::EstablishedOnly if v.get("accept").is_some() => continue,
                Match::Dport(p) => intersect(ports, &p),
                _ => ports.clone(),
            };
            if !entry_ports.is_empty() {
                self.apply(v, &entry_ports, at, depth);
            }
        }
    }
}

/// The TCP ports each accept rule reachable from `chain` admits.
pub fn admitted(rs: &Ruleset, chain: &Chain) -> Vec<Admit> {
    let mut w = Walker {
        scope: Scope {
            rs,
            family: &chain.family,
            table: &chain.table,
        },
        admitted: Vec::new(),
    };
    w.walk(chain, &vec![ALL], 0);
    w.admitted
}

/// Input-hook base chains of the IP families, within the spec's scope.
fn input_chains<'a>(spec: &Spec, rs: &'a Ruleset) -> Vec<&'a Chain> {
    rs.chains
        .iter()
        .filter(|c| c.hook.as_deref() == Some("input"))
        .filter(|c| ["inet", "ip", "ip6"].contains(&c.family.as_str()))
        .filter(|c| spec.family.as_ref().is_none_or(|f| *f == c.family))
        .filter(|c| spec.table.as_ref().is_none_or(|t| *t == c.table))
        .filter(|c| spec.chain.as_ref().is_none_or(|n| *n == c.name))
        .collect()
}

pub fn judge(spec: &Spec, f: &Facts) -> Verdict {
    let asked = format!("`{}` on {}", f.command, f.place);
    let readable = format!("the nftables ruleset ({asked})");
    if let Some(e) = &f.error {
        return Verdict::fail(
            readable,
            format!("nft did not run: {e} (is nftables installed there?)"),
        );
    }
    if f.exit_code != Some(0) {
        let code = f
            .exit_code
            .map_or("killed by a signal".to_string(), |c| format!("exit code {c}"));
        return Verdict::fail(
            readable,
            format!(
                "nft failed ({code}): {} (listing the ruleset needs root)",
                excerpt(f.stderr.trim(), 300)
            ),
        );
    }
    let rs = match parse(&f.stdout) {
        Ok(rs) => rs,
        Err(e) => {
            return Verdict::fail(
                readable,
                format!(
                    "nft -j printed no ruleset: {e}: {}",
                    excerpt(f.stdout.trim(), 200)
                ),
            )
        }
    };
    let chains = input_chains(spec, &rs);
    let allowed = normalize(spec.allowed_tcp.iter().map(|&p| (p, p)).collect());
    let scope = spec.scope();
    if chains.is_empty() {
        return Verdict::fail(
            format!("an nftables input chain ({scope}) with policy drop"),
            format!(
                "no input chain ({scope}): the ruleset has {} chain(s), none on the input hook; it is empty or was flushed",
                rs.chains.len()
            ),
        )
        .with_evidence(asked);
    }
    let per_chain: Vec<(&Chain, Vec<Admit>)> =
        chains.iter().map(|c| (*c, admitted(&rs, c))).collect();
    let mut evidence = vec![format!("{asked}: input chains:")];
    for (c, admits) in &per_chain {
        let all = normalize(admits.iter().flat_map(|a| a.ports.clone()).collect());
        evidence.push(format!(
            "{}: policy {}, {} rule(s), admits TCP {}",
            c.label(),
            c.policy.as_deref().unwrap_or("accept"),
            c.rules.len(),
            if all.is_empty() {
                "none".to_string()
            } else {
                show(&all)
            }
        ));
    }
    let dropping: Vec<&(&Chain, Vec<Admit>)> = per_chain
        .iter()
        .filter(|(c, _)| c.policy.as_deref() == Some("drop"))
        .collect();
    let policies = per_chain
        .iter()
        .map(|(c, _)| format!("{} policy {}", c.label(), c.policy.as_deref().unwrap_or("accept")))
        .collect::<Vec<_>>()
        .join("; ");
    let policy_expected = format!("an input chain ({scope}) with policy drop");
    let mut parts = vec![if dropping.is_empty() {
        Verdict::fail(policy_expected, policies)
    } else {
        Verdict::pass(policy_expected, policies)
    }];
    let ports_expected = format!("new TCP connections admitted only on {}", show(&allowed));
    if dropping.is_empty() {
        parts.push(Verdict::fail(
            ports_expected,
            "no input chain drops by default: every TCP port no rule drops is admitted",
        ));
    } else {
        // A packet passes only when every dropping chain accepts it.
        let mut effective = vec![ALL];
        for (_, admits) in &dropping {
            let all = normalize(admits.iter().flat_map(|a| a.ports.clone()).collect());
            effective = intersect(&effective, &all);
        }
        let extra = subtract(&effective, &allowed);
        if extra.is_empty() {
            parts.push(Verdict::pass(
                ports_expected,
                format!(
                    "admitted: {}",
                    if effective.is_empty() {
                        "none".to_string()
                    } else {
                        show(&effective)
                    }
                ),
            ));
        } else {
            let mut culprits = Vec::new();
            for (_, admits) in &dropping {
                for a in admits {
                    let p = intersect(&a.ports, &extra);
                    if !p.is_empty() {
                        culprits.push(format!("TCP {} ({} accepts)", show(&p), a.rule));
                    }
                }
            }
            let chain_names = dropping
                .iter()
                .map(|(c, _)| c.label())
                .collect::<Vec<_>>()
                .join(", ");
            parts.push(Verdict::fail(
                ports_expected,
                format!(
                    "input chain {chain_names} admits extra ports: {}",
                    culprits.join("; ")
                ),
            ));
        }
    }
    all_of(parts).with_evidence(evidence.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NixOS firewall as `nft -j list ruleset` prints it (nftables
    /// 1.0.6): loopback and established accepted in `input`, new
    /// connections sent through a verdict map to `input-allow`.
    const NIXOS: &str = r#"{"nftables": [
{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
{"table": {"family": "inet", "name": "nixos-fw", "handle": 1}},
{"chain": {"family": "inet", "table": "nixos-fw", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
{"chain": {"family": "inet", "table": "nixos-fw", "name": "input-allow", "handle": 2}},
{"chain": {"family": "inet", "table": "nixos-fw", "name": "rpfilter", "handle": 3, "type": "filter", "hook": "prerouting", "prio": -310, "policy": "accept"}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input", "handle": 4, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input", "handle": 6, "expr": [{"vmap": {"key": {"ct": {"key": "state"}}, "data": {"set": [["invalid", {"drop": null}], ["established", {"accept": null}], ["related", {"accept": null}], ["new", {"jump": {"target": "input-allow"}}], ["untracked", {"jump": {"target": "input-allow"}}]]}}}]}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input", "handle": 9, "expr": [{"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["fin", "syn", "rst", "ack"]]}, "right": "syn"}}, {"log": {"prefix": "refused connection: ", "level": "info"}}]}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input-allow", "handle": 10, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input-allow", "handle": 11, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 3002}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input-allow", "handle": 12, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "icmp", "field": "type"}}, "right": "echo-request"}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input-allow", "handle": 13, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "ipv6-icmp"}}, {"accept": null}]}},
{"rule": {"family": "inet", "table": "nixos-fw", "chain": "input-allow", "handle": 14, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {"accept": null}]}}
RULES
]}"#;

    /// NIXOS with more rules appended to `input-allow`; each a JSON `expr`.
    fn nixos_with(exprs: &[&str]) -> String {
        let mut rules = String::new();
        for (i, e) in exprs.iter().enumerate() {
            rules.push_str(&format!(
                ",\n{{\"rule\": {{\"family\": \"inet\", \"table\": \"nixos-fw\", \"chain\": \"input-allow\", \"handle\": {}, \"expr\": {e}}}}}",
                100 + i
            ));
        }
        NIXOS.replace("\nRULES", &rules)
    }

    fn facts(stdout: &str) -> Facts {
        Facts {
            command: "nft -j list ruleset".into(),
            place: "local".into(),
            exit_code: Some(0),
            stdout: stdout.into(),
            ..Facts::default()
        }
    }

    fn check(spec_text: &str, ruleset: &str, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(&format!("allowed_tcp = [22, 3002]\n{spec_text}")).unwrap();
        let v = judge(&spec, &facts(ruleset));
        assert_eq!(v.pass, pass, "{spec_text} {ruleset}: {v:?}");
        assert!(v.found.contains(found), "{spec_text}: {:?}", v.found);
    }

    const TCP_DPORT: &str = r#"{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": RIGHT}}"#;

    fn dport(right: &str, verdict: &str) -> String {
        format!("[{}, {verdict}]", TCP_DPORT.replace("RIGHT", right))
    }

    #[test]
    fn the_nixos_firewall_admits_its_two_ports() {
        check("", &nixos_with(&[]), true, "admitted: 22, 3002");
        check(
            "family = \"inet\"\ntable = \"nixos-fw\"\nchain = \"input\"",
            &nixos_with(&[]),
            true,
            "inet nixos-fw input policy drop",
        );
    }

    #[test]
    fn every_way_to_open_a_port_is_seen() {
        let accept = r#"{"accept": null}"#;
        let cases: &[(String, &str)] = &[
            (dport("8080", accept), "TCP 8080 (inet nixos-fw input-allow handle 100 accepts)"),
            (dport(r#"{"set": [3002, {"range": [8000, 8010]}]}"#, accept), "TCP 8000-8010"),
            (dport(r#"{"range": [20, 25]}"#, accept), "TCP 20-21, 23-25"),
            (dport("22", r#"{"counter": null}, {"accept": null}"#), ""),
            // `tcp dport != 22 accept`: everything but 22.
            (
                format!("[{}, {accept}]", TCP_DPORT.replace("\"==\"", "\"!=\"").replace("RIGHT", "22")),
                "TCP every TCP port except 22, 3002 (",
            ),
            // No port match at all: every port, for these sources.
            (
                format!("[{}, {accept}]", r#"{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}}"#),
                "TCP every TCP port",
            ),
            (
                format!("[{}]", r#"{"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": {"set": [[5000, {"accept": null}], [22, {"drop": null}]]}}}"#),
                "TCP 5000",
            ),
            (
                format!("[{}, {accept}]", r#"{"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": 7000}}"#),
                "TCP 7000",
            ),
        ];
        for (expr, found) in cases {
            let rs = nixos_with(&[expr]);
            let pass = found.is_empty();
            check("", &rs, pass, if pass { "admitted: 22, 3002" } else { found });
        }
    }

    #[test]
    fn named_sets_and_jumps_are_followed() {
        let rs = nixos_with(&[
            &dport("\"@extra\"", r#"{"accept": null}"#),
        ])
        .replace(
            "{\"chain\": {\"family\": \"inet\", \"table\": \"nixos-fw\", \"name\": \"input-allow\"",
            "{\"set\": {\"family\": \"inet\", \"name\": \"extra\", \"table\": \"nixos-fw\", \"type\": \"inet_service\", \"flags\": [\"interval\"], \"elem\": [8443, {\"range\": [9000, 9010]}]}},\n{\"chain\": {\"family\": \"inet\", \"table\": \"nixos-fw\", \"name\": \"input-allow\"",
        );
        check("", &rs, false, "TCP 8443, 9000-9010 (inet nixos-fw input-allow handle 100 accepts)");
        // A jump from a rule bounded to 8000-8100 into a chain that accepts all.
        let rs = nixos_with(&[&dport(r#"{"range": [8000, 8100]}"#, r#"{"jump": {"target": "extra-chain"}}"#)])
            .replace(
                "\n]}",
                ",\n{\"chain\": {\"family\": \"inet\", \"table\": \"nixos-fw\", \"name\": \"extra-chain\", \"handle\": 50}},\n{\"rule\": {\"family\": \"inet\", \"table\": \"nixos-fw\", \"chain\": \"extra-chain\", \"handle\": 51, \"expr\": [{\"accept\": null}]}}\n]}",
            );
        check("", &rs, false, "TCP 8000-8100 (inet nixos-fw extra-chain handle 51 accepts)");
    }

    #[test]
    fn loopback_established_and_other_protocols_open_nothing() {
        for expr in [
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}}, {"accept": null}]"#,
            r#"[{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]"#,
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}}, {"accept": null}]"#,
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "icmp"}}, {"accept": null}]"#,
            r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}, {"drop": null}]"#,
        ] {
            check("", &nixos_with(&[expr]), true, "admitted: 22, 3002");
        }
        // ...but `ct state new` and `iifname "eth0"` are no such bound.
        for expr in [
            r#"[{"match": {"op": "==", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"accept": null}]"#,
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"accept": null}]"#,
            r#"[{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"accept": null}]"#,
        ] {
            check("", &nixos_with(&[expr]), false, "every TCP port");
        }
    }

    #[test]
    fn policy_and_missing_chains() {
        let open = nixos_with(&[]).replace("\"policy\": \"drop\"", "\"policy\": \"accept\"");
        check("", &open, false, "inet nixos-fw input policy accept");
        check("", &open, false, "no input chain drops by default");
        let flushed = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}"#;
        check("", flushed, false, "no input chain (any table)");
        check("table = \"filter\"", &nixos_with(&[]), false, "no input chain (table filter)");
        // Another table's accepting input chain does not open ports the
        // dropping chain refuses; a second dropping chain narrows them.
        let docker = nixos_with(&[&dport("8080", r#"{"accept": null}"#)]).replace(
            "\n]}",
            ",\n{\"chain\": {\"family\": \"ip\", \"table\": \"filter\", \"name\": \"INPUT\", \"handle\": 1, \"type\": \"filter\", \"hook\": \"input\", \"prio\": 0, \"policy\": \"accept\"}}\n]}",
        );
        check("", &docker, false, "TCP 8080");
        let narrowed = docker.replace("\"policy\": \"accept\"}}\n]}", "\"policy\": \"drop\"}},\n{\"rule\": {\"family\": \"ip\", \"table\": \"filter\", \"chain\": \"INPUT\", \"handle\": 2, \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\": {\"set\": [22, 3002]}}}, {\"accept\": null}]}}\n]}");
        check("", &narrowed, true, "admitted: 22, 3002");
    }

    #[test]
    fn nft_that_cannot_answer_fails_saying_so() {
        let spec: Spec = toml::from_str("allowed_tcp = [22]").unwrap();
        let v = judge(
            &spec,
            &Facts {
                exit_code: Some(1),
                stdout: String::new(),
                stderr: "Error: Operation not permitted".into(),
                ..facts("")
            },
        );
        assert!(!v.pass && v.found.contains("nft failed (exit code 1): Error: Operation not permitted"), "{v:?}");
        let v = judge(&spec, &facts("table inet x {"));
        assert!(!v.pass && v.found.contains("not JSON"), "{v:?}");
        let v = judge(
            &spec,
            &Facts {
                exit_code: None,
                error: Some("could not start: `nft`: No such file or directory".into()),
                ..facts("")
            },
        );
        assert!(!v.pass && v.found.contains("nft did not run"), "{v:?}");
    }

    #[test]
    fn port_ranges() {
        assert_eq!(complement(&vec![(22, 22)]), vec![(0, 21), (23, 65535)]);
        assert_eq!(complement(&vec![ALL]), vec![]);
        assert_eq!(normalize(vec![(5, 9), (1, 4), (20, 20)]), vec![(1, 9), (20, 20)]);
        assert_eq!(subtract(&vec![(20, 25)], &vec![(22, 22)]), vec![(20, 21), (23, 25)]);
        assert_eq!(show(&vec![(22, 22), (8000, 8010)]), "22, 8000-8010");
    }
}
