//! The vocabulary shared by every stage: phases, severities, outcomes,
//! durations written with units, and the result record of one check.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The fixed, ordered phases of a validation run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Config,
    Build,
    Boot,
    Services,
    Oidc,
    Agent,
    Sandbox,
    E2e,
    Performance,
    Security,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::Config,
        Phase::Build,
        Phase::Boot,
        Phase::Services,
        Phase::Oidc,
        Phase::Agent,
        Phase::Sandbox,
        Phase::E2e,
        Phase::Performance,
        Phase::Security,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Config => "config",
            Phase::Build => "build",
            Phase::Boot => "boot",
            Phase::Services => "services",
            Phase::Oidc => "oidc",
            Phase::Agent => "agent",
            Phase::Sandbox => "sandbox",
            Phase::E2e => "e2e",
            Phase::Performance => "performance",
            Phase::Security => "security",
        }
    }

    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }

    /// 1-based position, as the phases are numbered in the docs.
    pub fn number(self) -> usize {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a failing check means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Fail,
    Warn,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    /// Failed, but the check's severity is `warn`.
    Warn,
    Fail,
    /// Not run: a dependency failed or was skipped.
    Skip,
    /// Cancelled by SIGINT, SIGTERM or the global deadline.
    Aborted,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
            Outcome::Aborted => "ABORTED",
        }
    }
    /// Whether checks that need this one may run.
    pub fn satisfies_dependents(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Warn)
    }
}

/// The run's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OverallStatus {
    Success,
    Warning,
    Failure,
    Aborted,
}

impl OverallStatus {
    /// Pure: the overall status from the outcomes (and whether the run was cut short).
    pub fn from_outcomes(outcomes: impl IntoIterator<Item = Outcome>, aborted: bool) -> Self {
        if aborted {
            return OverallStatus::Aborted;
        }
        let mut status = OverallStatus::Success;
        for o in outcomes {
            match o {
                Outcome::Fail | Outcome::Skip | Outcome::Aborted => return OverallStatus::Failure,
                Outcome::Warn => status = OverallStatus::Warning,
                Outcome::Pass => {}
            }
        }
        status
    }
    pub fn label(self) -> &'static str {
        match self {
            OverallStatus::Success => "SUCCESS",
            OverallStatus::Warning => "WARNING",
            OverallStatus::Failure => "FAILURE",
            OverallStatus::Aborted => "ABORTED",
        }
    }
}

/// A duration written with a unit in profiles: `500ms`, `2s`, `5m`, `1h`,
/// or a combination such as `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(text: &str) -> Result<HumanDuration, String> {
        let s = text.trim();
        if s.is_empty() {
            return Err("empty duration (write e.g. \"500ms\", \"30s\", \"5m\")".into());
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!(
                    "invalid duration `{text}`: expected a number followed by ms, s, m or h"
                ));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("invalid duration `{text}`: number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Duration::from_millis(number),
                "s" => Duration::from_secs(number),
                "m" => Duration::from_secs(number.saturating_mul(60)),
                "h" => Duration::from_secs(number.saturating_mul(3600)),
                "" => {
                    return Err(format!(
                        "invalid duration `{text}`: missing unit (write e.g. \"{number}s\")"
                    ))
                }
                other => {
                    return Err(format!(
                        "invalid duration `{text}`: unknown unit `{other}` (use ms, s, m or h)"
                    ))
                }
            };
            total = total.saturating_add(part);
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) || ms == 0 {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One attempt of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub duration_ms: u64,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The judged result of one check: one record per check, whatever its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub phase: Phase,
    pub service: String,
    /// Answered by a stand-in of the service (the target's `[stand_ins]`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stand_in: bool,
    pub severity: Severity,
    pub status: Outcome,
    pub description: String,
    pub expected: String,
    pub found: String,
    pub evidence: String,
    pub evidence_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    pub started_at: Option<String>,
    pub duration_ms: u64,
    pub attempt_count: u32,
    pub attempts: Vec<Attempt>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    pub profile: String,
    /// Where the check ran: "local", "ssh rave@p6.example.org:22".
    pub host: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<u64, &str>) {
        match (HumanDuration::parse(input), expect) {
            (Ok(d), Ok(ms)) => assert_eq!(d.0.as_millis() as u64, ms, "{input}"),
            (Err(e), Err(needle)) => assert!(e.contains(needle), "{input}: {e}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn durations() {
        check("500ms", Ok(500));
        check("2s", Ok(2000));
        check("5m", Ok(300_000));
        check("1h", Ok(3_600_000));
        check("1m30s", Ok(90_000));
        check(" 10s ", Ok(10_000));
        check("10", Err("missing unit"));
        check("10d", Err("unknown unit `d`"));
        check("", Err("empty"));
        check("s", Err("expected a number"));
        check("99999999999999999999999s", Err("too large"));
    }

    #[test]
    fn overall_status_follows_the_worst_outcome() {
        use Outcome::*;
        let s = |o: &[Outcome], a| OverallStatus::from_outcomes(o.iter().copied(), a);
        assert_eq!(s(&[Pass, Pass], false), OverallStatus::Success);
        assert_eq!(s(&[Pass, Warn], false), OverallStatus::Warning);
        assert_eq!(s(&[Warn, Fail], false), OverallStatus::Failure);
        assert_eq!(s(&[Pass, Skip], false), OverallStatus::Failure);
        assert_eq!(s(&[Pass], true), OverallStatus::Aborted);
        assert_eq!(s(&[], false), OverallStatus::Success);
    }

    #[test]
    fn phases_are_ordered_and_named() {
        assert!(Phase::Config < Phase::Security);
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.name()), Some(p));
        }
        assert_eq!(Phase::Services.number(), 4);
    }
}
