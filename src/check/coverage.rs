//! Coverage: which of the ten phases a run examined, and the run's overall
//! verdict from its outcomes and that coverage. Pure: the runner calls
//! `Coverage::assess` once, at the end; reporters render what it decided.
//!
//! The rules, in order:
//! - a run cut short is ABORTED;
//! - a failed, skipped or aborted check, or a required phase that ran no
//!   check, makes it FAILURE;
//! - a warned check, or a phase neither required nor examined (not selected
//!   by `--phase`, or no loaded check is in it), makes it WARNING, never
//!   SUCCESS;
//! - otherwise SUCCESS.

use std::collections::BTreeSet;

use serde::Serialize;

use super::model::{CheckResult, Outcome, OverallStatus, Phase};

/// Counts of outcomes; the parts add up to `total_tests`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Summary {
    pub total_tests: usize,
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
    pub aborted: usize,
}

impl Summary {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Summary {
        let mut s = Summary::default();
        for r in results {
            s.count(r.status);
        }
        s
    }

    pub fn count(&mut self, outcome: Outcome) {
        self.total_tests += 1;
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail => self.failed += 1,
            Outcome::Warn => self.warned += 1,
            Outcome::Skip => self.skipped += 1,
            Outcome::Aborted => self.aborted += 1,
        }
    }
}

/// Whether a phase was examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhaseStatus {
    /// Checks of the phase were in the run (the counts say how they ended).
    Ran,
    /// `--phase` left it out.
    NotSelected,
    /// Selected, but no loaded check is in it.
    NoChecks,
}

impl PhaseStatus {
    pub fn label(self) -> &'static str {
        match self {
            PhaseStatus::Ran => "RAN",
            PhaseStatus::NotSelected => "NOT_SELECTED",
            PhaseStatus::NoChecks => "NO_CHECKS",
        }
    }
}

/// One phase's line in the coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseCoverage {
    pub phase: Phase,
    pub status: PhaseStatus,
    /// Declared required (target `require_phases`, `--require-phase`).
    pub required: bool,
    #[serde(flatten)]
    pub counts: Summary,
}

/// All ten phases in order, and the verdict they lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub phases: Vec<PhaseCoverage>,
    pub status: OverallStatus,
}

impl Coverage {
    /// Pure: the coverage and overall verdict of a run from each result's
    /// phase and outcome, the `--phase` selection (empty: every phase), the
    /// required phases and whether the run was cut short.
    pub fn assess(
        outcomes: impl IntoIterator<Item = (Phase, Outcome)>,
        selected: &[Phase],
        required: &BTreeSet<Phase>,
        aborted: bool,
    ) -> Coverage {
        let mut counts: Vec<Summary> = vec![Summary::default(); Phase::ALL.len()];
        let mut all = Vec::new();
        for (phase, outcome) in outcomes {
            counts[phase.number() - 1].count(outcome);
            all.push(outcome);
        }
        let phases: Vec<PhaseCoverage> = Phase::ALL
            .into_iter()
            .zip(counts)
            .map(|(phase, counts)| PhaseCoverage {
                phase,
                status: if counts.total_tests > 0 {
                    PhaseStatus::Ran
                } else if !selected.is_empty() && !selected.contains(&phase) {
                    PhaseStatus::NotSelected
                } else {
                    PhaseStatus::NoChecks
                },
                required: required.contains(&phase),
                counts,
            })
            .collect();
        let by_outcomes = OverallStatus::from_outcomes(all, aborted);
        let unexamined = |required: bool| {
            phases
                .iter()
                .any(|p| p.required == required && p.status != PhaseStatus::Ran)
        };
        let status = match by_outcomes {
            OverallStatus::Aborted | OverallStatus::Failure => by_outcomes,
            _ if unexamined(true) => OverallStatus::Failure,
            OverallStatus::Warning => OverallStatus::Warning,
            _ if unexamined(false) => OverallStatus::Warning,
            _ => OverallStatus::Success,
        };
        Coverage { phases, status }
    }

    /// Required phases that ran no check (each FAILS the run).
    pub fn required_without_checks(&self) -> Vec<&PhaseCoverage> {
        self.phases
            .iter()
            .filter(|p| p.required && p.status != PhaseStatus::Ran)
            .collect()
    }

    /// Phases neither required nor examined (each keeps the run from SUCCESS).
    pub fn not_examined(&self) -> Vec<Phase> {
        self.phases
            .iter()
            .filter(|p| !p.required && p.status != PhaseStatus::Ran)
            .map(|p| p.phase)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;
    use OverallStatus::{Failure, Success, Warning};
    use Phase::*;

    const EVERY: [Phase; 10] = Phase::ALL;

    /// Every phase once, with `outcome`, except those in `missing`.
    fn each_phase_but(missing: &[Phase], outcome: Outcome) -> Vec<(Phase, Outcome)> {
        EVERY
            .into_iter()
            .filter(|p| !missing.contains(p))
            .map(|p| (p, outcome))
            .collect()
    }

    fn check(
        outcomes: &[(Phase, Outcome)],
        selected: &[Phase],
        required: &[Phase],
        aborted: bool,
        status: OverallStatus,
        not_examined: &[Phase],
        required_without_checks: &[Phase],
    ) {
        let required: BTreeSet<Phase> = required.iter().copied().collect();
        let c = Coverage::assess(outcomes.iter().copied(), selected, &required, aborted);
        let context =
            format!("outcomes {outcomes:?}, selected {selected:?}, required {required:?}");
        assert_eq!(c.status, status, "{context}");
        assert_eq!(c.not_examined(), not_examined, "{context}");
        let missing: Vec<Phase> = c
            .required_without_checks()
            .iter()
            .map(|p| p.phase)
            .collect();
        assert_eq!(missing, required_without_checks, "{context}");
        assert_eq!(c.phases.len(), 10);
    }

    #[test]
    fn verdicts() {
        let all = each_phase_but(&[], Pass);
        let no_agent_e2e = each_phase_but(&[Agent, E2e], Pass);
        // Every phase examined, every check passed.
        check(&all, &[], &[], false, Success, &[], &[]);
        check(&all, &[], &EVERY, false, Success, &[], &[]);
        // Phases without checks: WARNING naming them, exit 0.
        check(&no_agent_e2e, &[], &[], false, Warning, &[Agent, E2e], &[]);
        // ...unless they are required: FAILURE.
        check(
            &no_agent_e2e,
            &[],
            &[Agent],
            false,
            Failure,
            &[E2e],
            &[Agent],
        );
        check(
            &no_agent_e2e,
            &[],
            &EVERY,
            false,
            Failure,
            &[],
            &[Agent, E2e],
        );
        // A required phase left out by --phase ran no check either.
        check(
            &[(Services, Pass)],
            &[Services],
            &[Services, Security],
            false,
            Failure,
            &[Config, Build, Boot, Oidc, Agent, Sandbox, E2e, Performance],
            &[Security],
        );
        // Warned checks and unexamined phases both give WARNING.
        let mut warned = all.clone();
        warned[3] = (Services, Warn);
        check(&warned, &[], &[], false, Warning, &[], &[]);
        let mut warned = no_agent_e2e.clone();
        warned[0] = (Config, Warn);
        check(&warned, &[], &[], false, Warning, &[Agent, E2e], &[]);
        // A failed or skipped check is FAILURE whatever the coverage.
        let mut failed = no_agent_e2e.clone();
        failed[0] = (Config, Fail);
        check(&failed, &[], &[], false, Failure, &[Agent, E2e], &[]);
        let mut skipped = all.clone();
        skipped[9] = (Security, Skip);
        check(&skipped, &[], &EVERY, false, Failure, &[], &[]);
        // An aborted run stays ABORTED, even with a required phase missing.
        check(
            &no_agent_e2e,
            &[],
            &EVERY,
            true,
            OverallStatus::Aborted,
            &[],
            &[Agent, E2e],
        );
        // Nothing ran at all.
        check(&[], &[], &[], false, Warning, &EVERY, &[]);
    }

    #[test]
    fn phase_statuses_and_counts() {
        let c = Coverage::assess(
            [
                (Services, Pass),
                (Services, Fail),
                (Config, Skip),
                (Security, Warn),
            ],
            &[Services, Security, Agent],
            &BTreeSet::from([Agent]),
            false,
        );
        let status = |phase: Phase| c.phases[phase.number() - 1].status;
        // Config is not selected, but a selected check needed it: it ran.
        assert_eq!(status(Config), PhaseStatus::Ran);
        assert_eq!(status(Services), PhaseStatus::Ran);
        assert_eq!(status(Agent), PhaseStatus::NoChecks);
        assert_eq!(status(Boot), PhaseStatus::NotSelected);
        let services = &c.phases[Services.number() - 1];
        assert_eq!(
            services.counts,
            Summary {
                total_tests: 2,
                passed: 1,
                failed: 1,
                ..Summary::default()
            }
        );
        assert!(c.phases[Agent.number() - 1].required);
        assert!(!services.required);
        assert_eq!(
            c.phases.iter().map(|p| p.phase).collect::<Vec<_>>(),
            Phase::ALL
        );
    }

    #[test]
    fn phase_coverage_serializes_flat() {
        let c = Coverage::assess([(Oidc, Pass)], &[], &BTreeSet::new(), false);
        let json = serde_json::to_value(&c.phases[Oidc.number() - 1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "phase": "oidc", "status": "RAN", "required": false,
                "total_tests": 1, "passed": 1, "failed": 0, "warned": 0,
                "skipped": 0, "aborted": 0,
            })
        );
        let json = serde_json::to_value(&c.phases[0]).unwrap();
        assert_eq!(json["status"], "NO_CHECKS");
    }
}
