//! The verdict of one attempt, and how property verdicts combine.

use std::collections::BTreeMap;

/// The judgement of one attempt: what was expected, what was found and the
/// evidence behind it. The runner bounds and redacts the text fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    pub pass: bool,
    pub expected: String,
    pub found: String,
    pub evidence: String,
    /// Numbers worth keeping in `performance_metrics` (e.g. `latency_ms`).
    pub metrics: BTreeMap<String, f64>,
}

impl Verdict {
    pub fn pass(expected: impl Into<String>, found: impl Into<String>) -> Verdict {
        Verdict {
            pass: true,
            expected: expected.into(),
            found: found.into(),
            ..Verdict::default()
        }
    }
    pub fn fail(expected: impl Into<String>, found: impl Into<String>) -> Verdict {
        Verdict {
            pass: false,
            expected: expected.into(),
            found: found.into(),
            ..Verdict::default()
        }
    }
    /// A probe could not gather its facts (connection refused, timeout...).
    pub fn probe_error(expected: impl Into<String>, error: impl std::fmt::Display) -> Verdict {
        Verdict::fail(expected, format!("error: {error}"))
    }
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Verdict {
        self.evidence = evidence.into();
        self
    }
    pub fn with_metric(mut self, name: &str, value: f64) -> Verdict {
        self.metrics.insert(name.to_string(), value);
        self
    }
}

/// Combines several property verdicts of one check: it passes when all
/// pass; expected/found list each property, failures first.
pub fn all_of(parts: Vec<Verdict>) -> Verdict {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let pass = parts.iter().all(|p| p.pass);
    let mut ordered: Vec<&Verdict> = parts.iter().filter(|p| !p.pass).collect();
    if pass {
        ordered = parts.iter().collect();
    }
    let mut expected = String::new();
    let mut found = String::new();
    let mut evidence = String::new();
    let mut metrics = BTreeMap::new();
    for p in &ordered {
        join(&mut expected, &p.expected);
        join(&mut found, &p.found);
    }
    for p in &parts {
        if !p.evidence.is_empty() && !evidence.contains(&p.evidence) {
            if !evidence.is_empty() {
                evidence.push('\n');
            }
            evidence.push_str(&p.evidence);
        }
        metrics.extend(p.metrics.clone());
    }
    Verdict {
        pass,
        expected,
        found,
        evidence,
        metrics,
    }
}

fn join(into: &mut String, part: &str) {
    if part.is_empty() {
        return;
    }
    if !into.is_empty() {
        into.push_str("; ");
    }
    into.push_str(part);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_of_lists_failures_first_and_passes_only_when_all_pass() {
        let v = all_of(vec![
            Verdict::pass("status 200", "status 200"),
            Verdict::fail("body contains `ok`", "body without `ok`"),
        ]);
        assert!(!v.pass);
        assert_eq!(v.expected, "body contains `ok`");
        let v = all_of(vec![Verdict::pass("a", "a"), Verdict::pass("b", "b")]);
        assert!(v.pass);
        assert_eq!(v.expected, "a; b");
    }
}
