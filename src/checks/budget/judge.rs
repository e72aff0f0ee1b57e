//! Judges a measured quantity against its budget.

use super::spec::Spec;
use crate::check::Verdict;

#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
}

/// MemTotal - MemAvailable, in KiB.
pub fn used_memory_kib(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some(field("MemTotal:")?.saturating_sub(field("MemAvailable:")?))
}

pub fn judge(spec: &Spec, measured: &Result<Measured, String>) -> Verdict {
    match measured {
        Err(e) => Verdict::fail(format!("a measurement within {}", spec.max), e.clone()),
        Ok(m) => {
            let expected = format!("{} at most {}{}", m.what, spec.max, m.unit);
            let found = format!("{} = {:.2}{}", m.what, m.value, m.unit);
            let v = if m.value <= spec.max {
                Verdict::pass(expected, found)
            } else {
                Verdict::fail(expected, found)
            };
            v.with_metric("measured", m.value)
                .with_metric("budget", spec.max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_limits() {
        assert_eq!(
            used_memory_kib("MemTotal: 1000 kB\nMemFree: 1 kB\nMemAvailable: 400 kB\n"),
            Some(600)
        );
        assert_eq!(used_memory_kib("MemTotal: 1000 kB\n"), None);
        let spec: Spec = toml::from_str("host_memory = true\nmax = 8").unwrap();
        let m = |v| {
            Ok(Measured {
                what: "mem".into(),
                value: v,
                unit: " GiB",
            })
        };
        assert!(judge(&spec, &m(7.9)).pass);
        assert!(judge(&spec, &m(8.0)).pass);
        let v = judge(&spec, &m(8.1));
        assert!(!v.pass && v.found == "mem = 8.10 GiB", "{v:?}");
        assert!(!judge(&spec, &Err("x".into())).pass);
    }
}
