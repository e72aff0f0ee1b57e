//! Judges a TCP connection attempt.

use super::spec::Spec;
use crate::check::Verdict;

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub connected: bool,
    pub peer: Option<String>,
    pub error: Option<String>,
    pub elapsed_ms: f64,
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let expected = if spec.open {
        format!("{} accepts TCP connections", spec.address)
    } else {
        format!("{} refuses TCP connections", spec.address)
    };
    let found = match (&facts.peer, &facts.error) {
        (_, Some(e)) => format!("connect failed: {e}"),
        (Some(peer), None) => format!("connected to {peer}"),
        (None, None) => "connected".to_string(),
    };
    let v = if facts.connected == spec.open {
        Verdict::pass(expected, found)
    } else {
        Verdict::fail(expected, found)
    };
    v.with_metric("connect_ms", facts.elapsed_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(open: bool, connected: bool, pass: bool) {
        let spec = Spec {
            address: "a:1".into(),
            open,
            via: None,
        };
        let facts = Facts {
            connected,
            peer: None,
            error: (!connected).then(|| "refused".to_string()),
            elapsed_ms: 1.0,
        };
        assert_eq!(
            judge(&spec, &facts).pass,
            pass,
            "open={open} connected={connected}"
        );
    }

    #[test]
    fn open_and_closed_expectations() {
        check(true, true, true);
        check(true, false, false);
        check(false, false, true);
        check(false, true, false);
    }
}
