//! Judges configuration values: `sum_at_most` (with units), `unique` (with
//! a range), `same_set`, `services_examined`.

use super::spec::{Assertion, Spec, Unit};
use crate::check::Verdict;

fn show(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v}") }
}

pub fn judge(spec: &Spec, values: &Result<Vec<(String, f64)>, String>) -> Verdict {
    let values = match values {
        Ok(v) if v.is_empty() => return Verdict::fail("values to judge", "`values` is empty"),
        Ok(v) => v,
        Err(e) => return Verdict::fail("numeric values", e.clone()),
    };
    match spec.assert {
        Assertion::SumAtMost => sum_at_most(spec, values),
        Assertion::Unique => unique(spec, values),
        Assertion::SameSet => same_set(spec, values),
        Assertion::ServicesExamined => Verdict::fail(
            "service names",
            "services_examined judges names, not numbers",
        ),
    }
}

/// Every service the facts list is the `service` of a loaded check.
pub fn services_examined(spec: &Spec, services: &Result<Vec<(String, String)>, String>) -> Verdict {
    let services = match services {
        Ok(v) if v.is_empty() => return Verdict::fail("services to look for", "`values` is empty"),
        Ok(v) => v,
        Err(e) => return Verdict::fail("service names", e.clone()),
    };
    let expected = format!("each of the {} services of the facts has a check in the loaded profiles", services.len());
    let show = |(name, service): &(String, String)| {
        if name == service { service.clone() } else { format!("{name} (service `{service}`)") }
    };
    let missing: Vec<String> = services
        .iter()
        .filter(|(_, service)| !spec.profile_services.contains(service))
        .map(show)
        .collect();
    let examined: Vec<String> = services.iter().filter(|(_, s)| spec.profile_services.contains(s)).map(show).collect();
    let evidence = format!(
        "services of the loaded checks: {}",
        if spec.profile_services.is_empty() { "none".to_string() } else { spec.profile_services.join(", ") }
    );
    let v = if missing.is_empty() {
        Verdict::pass(expected, format!("all examined: {}", examined.join(", ")))
    } else {
        Verdict::fail(
            expected,
            format!(
                "no check examines {}: load its profile (e.g. health-checks/<service>.toml), or give a check `service = \"<name>\"`",
                missing.join(", ")
            ),
        )
    };
    v.with_evidence(evidence)
}

fn sum_at_most(spec: &Spec, values: &[(String, f64)]) -> Verdict {
    let Some(max) = spec.max else {
        return Verdict::fail("a budget", "assert = \"sum_at_most\" needs `max`");
    };
    let (vu, mu) = match (spec.values_unit, spec.max_unit) {
        (Some(v), Some(m)) => (Some(v), Some(m)),
        (None, None) => (None, None),
        _ => return Verdict::fail("units", "give both `values_unit` and `max_unit`, or neither"),
    };
    let unit_name = |u: Option<Unit>| u.map(|u| format!(" {u:?}")).unwrap_or_default();
    let sum: f64 = values.iter().map(|(_, v)| v).sum();
    let scale = match (vu, mu) {
        (Some(v), Some(m)) => v.bytes() / m.bytes(),
        _ => 1.0,
    };
    let sum_in_max_unit = sum * scale;
    let expected = format!("the {} values sum to at most {}{}", values.len(), show(max), unit_name(mu));
    let mut largest: Vec<&(String, f64)> = values.iter().collect();
    largest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<String> = largest.iter().take(3).map(|(n, v)| format!("{n} {}", show(*v))).collect();
    let found = format!(
        "sum {}{} = {:.2}{} (largest: {})",
        show(sum),
        unit_name(vu),
        sum_in_max_unit,
        unit_name(mu),
        top.join(", ")
    );
    let v = if sum_in_max_unit <= max { Verdict::pass(expected, found) } else { Verdict::fail(expected, found) };
    v.with_metric("sum", sum).with_metric("max", max)
}

fn unique(spec: &Spec, values: &[(String, f64)]) -> Verdict {
    let range = match (spec.min, spec.max) {
        (Some(lo), Some(hi)) => format!(", each within {}..={}", show(lo), show(hi)),
        (Some(lo), None) => format!(", each at least {}", show(lo)),
        (None, Some(hi)) => format!(", each at most {}", show(hi)),
        (None, None) => String::new(),
    };
    let expected = format!("the {} values are distinct{range}", values.len());
    let mut problems = Vec::new();
    for (i, (name, v)) in values.iter().enumerate() {
        if let Some((other, _)) = values[..i].iter().find(|(_, w)| w == v) {
            problems.push(format!("{} is both `{other}` and `{name}`", show(*v)));
        }
        if spec.min.is_some_and(|lo| *v < lo) || spec.max.is_some_and(|hi| *v > hi) {
            problems.push(format!("`{name}` = {} is out of range", show(*v)));
        }
    }
    let all: Vec<String> = values.iter().map(|(n, v)| format!("{n} {}", show(*v))).collect();
    if problems.is_empty() {
        Verdict::pass(expected, all.join(", "))
    } else {
        Verdict::fail(expected, problems.join("; "))
    }
}

fn same_set(spec: &Spec, values: &[(String, f64)]) -> Verdict {
    let Some(expected_set) = &spec.expected else {
        return Verdict::fail("an expected set", "assert = \"same_set\" needs `expected`");
    };
    let list = |vs: &[f64]| vs.iter().map(|v| show(*v)).collect::<Vec<_>>().join(", ");
    let expected = format!("exactly [{}]", list(expected_set));
    let got: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
    let extra: Vec<f64> = got.iter().copied().filter(|v| !expected_set.contains(v)).collect();
    let missing: Vec<f64> = expected_set.iter().copied().filter(|v| !got.contains(v)).collect();
    let found = format!("[{}]", list(&got));
    if extra.is_empty() && missing.is_empty() {
        Verdict::pass(expected, found)
    } else {
        let mut why = vec![found];
        if !extra.is_empty() {
            why.push(format!("extra [{}]", list(&extra)));
        }
        if !missing.is_empty() {
            why.push(format!("missing [{}]", list(&missing)));
        }
        Verdict::fail(expected, why.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::facts::probe::{names, probe};

    fn check(table: &str, pass: bool, found_has: &str) {
        let spec: Spec = toml::from_str(table).unwrap();
        let v = judge(&spec, &probe(&spec));
        assert_eq!(v.pass, pass, "{table}\n{v:?}");
        assert!(v.found.contains(found_has), "`{found_has}` not in {v:?}");
    }

    #[test]
    fn sums_within_budgets_with_units() {
        let caps = "values = { gitlab = 2560, synapse = 1024, postgresql = 1024 }";
        check(&format!("assert = \"sum_at_most\"\n{caps}\nmax = 8\nvalues_unit = \"MiB\"\nmax_unit = \"GiB\""), true, "sum 4608 MiB = 4.50 GiB (largest: gitlab 2560");
        check(&format!("assert = \"sum_at_most\"\n{caps}\nmax = 4\nvalues_unit = \"MiB\"\nmax_unit = \"GiB\""), false, "= 4.50 GiB");
        check(&format!("assert = \"sum_at_most\"\n{caps}\nmax = 4608"), true, "sum 4608");
        check(&format!("assert = \"sum_at_most\"\n{caps}\nmax = 8\nmax_unit = \"GiB\""), false, "give both");
        check(&format!("assert = \"sum_at_most\"\n{caps}"), false, "needs `max`");
        check("assert = \"sum_at_most\"\nvalues = { a = \"x\" }\nmax = 1", false, "`a` is a string");
        check("assert = \"sum_at_most\"\nvalues = []\nmax = 1", false, "`values` is empty");
    }

    #[test]
    fn unique_in_range_and_same_set() {
        check("assert = \"unique\"\nvalues = { ssh = 22, https = 3002, grafana = 3000 }\nmin = 1\nmax = 65535", true, "ssh 22");
        check("assert = \"unique\"\nvalues = { ssh = 22, https = 3000, grafana = 3000 }", false, "3000 is both `grafana` and `https`");
        check("assert = \"unique\"\nvalues = { ssh = 22, bad = 70000 }\nmin = 1\nmax = 65535", false, "`bad` = 70000 is out of range");
        check("assert = \"same_set\"\nvalues = [22, 3002]\nexpected = [3002, 22]", true, "[22, 3002]");
        check("assert = \"same_set\"\nvalues = [22, 3002, 8008]\nexpected = [22, 3002]", false, "extra [8008]");
        check("assert = \"same_set\"\nvalues = [22]\nexpected = [22, 3002]", false, "missing [3002]");
        check("assert = \"same_set\"\nvalues = [22]", false, "needs `expected`");
    }

    #[test]
    fn services_examined_names_the_missing() {
        let mut spec: Spec = toml::from_str(
            "assert = \"services_examined\"\nvalues = { postgresql = \"postgres\", gitlab = \"gitlab\", synapse = \"synapse\" }",
        )
        .unwrap();
        spec.profile_services = vec!["config".into(), "gitlab".into(), "postgres".into(), "synapse".into()];
        let v = services_examined(&spec, &names(&spec));
        assert!(v.pass && v.found.contains("postgresql (service `postgres`)"), "{v:?}");
        spec.profile_services = vec!["config".into(), "postgres".into()];
        let v = services_examined(&spec, &names(&spec));
        assert!(!v.pass, "{v:?}");
        assert!(v.found.starts_with("no check examines gitlab, synapse:"), "{v:?}");
        assert!(v.evidence.contains("config, postgres"), "{v:?}");
        let spec: Spec = toml::from_str("assert = \"services_examined\"\nvalues = [22]").unwrap();
        let v = services_examined(&spec, &names(&spec));
        assert!(!v.pass && v.found.contains("not a service name"), "{v:?}");
    }
}
