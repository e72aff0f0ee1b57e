//! Judges Prometheus API answers: scrape target health and query results.

use super::spec::{Assertion, Spec};
use crate::check::Verdict;

#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    /// No HTTP answer (refused, deadline...).
    Unreachable(String),
    /// An answer that is not `{"status": "success"}`.
    ApiError {
        request: String,
        status: u16,
        body: String,
    },
    /// The active scrape targets.
    Targets(Vec<TargetHealth>),
    /// An instant query's samples.
    Samples {
        result_type: String,
        samples: Vec<Sample>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetHealth {
    pub job: String,
    pub instance: String,
    pub scrape_url: String,
    /// "up", "down" or "unknown" (not scraped yet).
    pub health: String,
    pub last_error: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `{job="synapse",instance="..."}`.
    pub labels: String,
    pub value: f64,
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let expected = match &spec.assertion {
        Assertion::TargetsUp { jobs } if jobs.is_empty() => {
            "every active scrape target is up".to_string()
        }
        Assertion::TargetsUp { jobs } => format!(
            "every active scrape target is up, including jobs {}",
            jobs.join(", ")
        ),
        Assertion::Query {
            query,
            min_value: None,
        } => format!("query `{query}` returns samples"),
        Assertion::Query {
            query,
            min_value: Some(min),
        } => format!("query `{query}` returns samples, each >= {min}"),
    };
    match (&spec.assertion, facts) {
        (_, Facts::Unreachable(error)) => Verdict::fail(
            expected,
            format!("no answer from {}: {error}", spec.base_url),
        ),
        (
            _,
            Facts::ApiError {
                request,
                status,
                body,
            },
        ) => Verdict::fail(expected, format!("{request} answered status {status}"))
            .with_evidence(body.clone()),
        (Assertion::TargetsUp { jobs }, Facts::Targets(targets)) => {
            let not_up: Vec<&TargetHealth> = targets.iter().filter(|t| t.health != "up").collect();
            let missing_jobs: Vec<&str> = jobs
                .iter()
                .filter(|job| !targets.iter().any(|t| &t.job == *job))
                .map(String::as_str)
                .collect();
            let mut problems = Vec::new();
            if targets.is_empty() {
                problems.push("no active targets".to_string());
            }
            for t in &not_up {
                let why = if t.last_error.is_empty() {
                    String::new()
                } else {
                    format!(": {}", t.last_error)
                };
                problems.push(format!("{} {} is {}{why}", t.job, t.instance, t.health));
            }
            if !missing_jobs.is_empty() {
                problems.push(format!("no target for jobs {}", missing_jobs.join(", ")));
            }
            let evidence = targets
                .iter()
                .map(|t| format!("{} {} {} {}", t.job, t.scrape_url, t.health, t.last_error))
                .collect::<Vec<_>>()
                .join("\n");
            let verdict = if problems.is_empty() {
                Verdict::pass(expected, format!("{} targets up", targets.len()))
            } else {
                Verdict::fail(expected, problems.join("; "))
            };
            verdict
                .with_evidence(evidence)
                .with_metric("targets_up", (targets.len() - not_up.len()) as f64)
        }
        (
            Assertion::Query { min_value, .. },
            Facts::Samples {
                result_type,
                samples,
            },
        ) => {
            let below: Vec<&Sample> = samples
                .iter()
                .filter(|s| min_value.is_some_and(|min| s.value.is_nan() || s.value < min))
                .collect();
            let evidence = samples
                .iter()
                .take(10)
                .map(|s| format!("{} {}", s.labels, s.value))
                .collect::<Vec<_>>()
                .join("\n");
            let verdict = if samples.is_empty() {
                Verdict::fail(expected, format!("empty {result_type} result"))
            } else if !below.is_empty() {
                Verdict::fail(
                    expected,
                    format!(
                        "{} of {} samples below the minimum, e.g. {} = {}",
                        below.len(),
                        samples.len(),
                        below[0].labels,
                        below[0].value
                    ),
                )
            } else {
                Verdict::pass(expected, format!("{} samples", samples.len()))
            };
            verdict.with_evidence(evidence)
        }
        (assertion, facts) => Verdict::fail(
            expected,
            format!("internal error: {assertion:?} got {facts:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: &str) -> Spec {
        toml::from_str(&format!("base_url = \"http://p\"\n{body}")).unwrap()
    }

    fn target(job: &str, health: &str, error: &str) -> TargetHealth {
        TargetHealth {
            job: job.into(),
            instance: "i:1".into(),
            scrape_url: "http://i:1/metrics".into(),
            health: health.into(),
            last_error: error.into(),
        }
    }

    fn check(body: &str, facts: Facts, pass: bool, found: &str) {
        let v = judge(&spec(body), &facts);
        assert_eq!(v.pass, pass, "{v:?}");
        assert!(v.found.contains(found), "{v:?}");
    }

    #[test]
    fn targets() {
        let up = target("synapse", "up", "");
        check(
            "assert = \"targets_up\"",
            Facts::Targets(vec![up.clone()]),
            true,
            "1 targets up",
        );
        check(
            "assert = \"targets_up\"",
            Facts::Targets(vec![
                up.clone(),
                target("node", "down", "connection refused"),
            ]),
            false,
            "node i:1 is down: connection refused",
        );
        check(
            "assert = \"targets_up\"",
            Facts::Targets(vec![target("x", "unknown", "")]),
            false,
            "is unknown",
        );
        check(
            "assert = \"targets_up\"",
            Facts::Targets(vec![]),
            false,
            "no active targets",
        );
        check(
            "assert = \"targets_up\"\njobs = [\"synapse\", \"gitlab\"]",
            Facts::Targets(vec![up]),
            false,
            "no target for jobs gitlab",
        );
    }

    #[test]
    fn queries() {
        let sample = |v: f64| Sample {
            labels: "{job=\"synapse\"}".into(),
            value: v,
        };
        let facts = |s: Vec<Sample>| Facts::Samples {
            result_type: "vector".into(),
            samples: s,
        };
        check(
            "assert = \"query\"\nquery = \"up\"",
            facts(vec![sample(0.0)]),
            true,
            "1 samples",
        );
        check(
            "assert = \"query\"\nquery = \"up\"\nmin_value = 1",
            facts(vec![sample(0.0)]),
            false,
            "below the minimum",
        );
        check(
            "assert = \"query\"\nquery = \"up\"",
            facts(vec![]),
            false,
            "empty vector result",
        );
        check(
            "assert = \"query\"\nquery = \"up\"",
            Facts::Unreachable("Connection refused".into()),
            false,
            "Connection refused",
        );
    }
}
