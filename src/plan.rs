//! The plan: which checks run, in what order, and what each waits for, and
//! the phases the run must cover. Pure: built from loaded profiles, the
//! `--phase` selection and the required phases.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::Check;
use crate::check::Phase;
use crate::error::{Location, UserError, UserErrors};

/// Checks in execution order: by phase, then topologically within a phase
/// (stable: profile order where the graph leaves a choice).
#[derive(Debug, Clone)]
pub struct Plan {
    pub checks: Vec<Check>,
    /// The `--phase` selection; empty: every phase.
    pub selected: Vec<Phase>,
    /// Phases that must run a check, or the run fails (target
    /// `require_phases`, `--require-phase`).
    pub required: BTreeSet<Phase>,
}

impl Plan {
    /// Builds the plan. With `phases` non-empty, only checks of those phases
    /// run, plus (transitively) the checks they need from any phase.
    pub fn build(checks: Vec<Check>, phases: &[Phase]) -> Result<Plan, UserErrors> {
        Plan::build_where(checks, phases, |_| true)
    }

    /// The plan of the checks of `phases` that `keep` accepts, plus every
    /// check they need (`--smoke` keeps the checks marked `smoke = true`).
    pub fn build_where(
        checks: Vec<Check>,
        phases: &[Phase],
        keep: impl Fn(&Check) -> bool,
    ) -> Result<Plan, UserErrors> {
        let selected = select(&checks, phases, keep);
        let checks: Vec<Check> = checks
            .into_iter()
            .filter(|c| selected.contains(&c.id))
            .collect();
        let ordered = order(checks).map_err(|(cycle, first)| cycle_error(&cycle, first))?;
        Ok(Plan {
            checks: ordered,
            selected: phases.to_vec(),
            required: BTreeSet::new(),
        })
    }

    /// The same plan, with `phases` required as well.
    pub fn requiring(mut self, phases: impl IntoIterator<Item = Phase>) -> Plan {
        self.required.extend(phases);
        self
    }

    /// For each check, the number of checks in the longest chain that
    /// starts with it and follows what needs it: the runner starts the
    /// longest chains first, so a phase takes about as long as its
    /// critical path rather than waiting behind quick checks.
    pub fn chain_lengths(&self) -> BTreeMap<&str, usize> {
        let mut lengths: BTreeMap<&str, usize> = BTreeMap::new();
        // Dependencies come before what needs them: walk backwards.
        for check in self.checks.iter().rev() {
            let below = self
                .checks
                .iter()
                .filter(|c| c.needs.contains(&check.id))
                .map(|c| lengths.get(c.id.as_str()).copied().unwrap_or(1))
                .max()
                .unwrap_or(0);
            lengths.insert(check.id.as_str(), below + 1);
        }
        lengths
    }

    pub fn phases(&self) -> Vec<Phase> {
        let set: BTreeSet<Phase> = self.checks.iter().map(|c| c.phase).collect();
        set.into_iter().collect()
    }

    pub fn in_phase(&self, phase: Phase) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(move |c| c.phase == phase)
    }
}

fn select(checks: &[Check], phases: &[Phase], keep: impl Fn(&Check) -> bool) -> BTreeSet<String> {
    let by_id: BTreeMap<&str, &Check> = checks.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut selected = BTreeSet::new();
    let mut stack: Vec<&str> = checks
        .iter()
        .filter(|c| (phases.is_empty() || phases.contains(&c.phase)) && keep(c))
        .map(|c| c.id.as_str())
        .collect();
    while let Some(id) = stack.pop() {
        if !selected.insert(id.to_string()) {
            continue;
        }
        if let Some(check) = by_id.get(id) {
            stack.extend(check.needs.iter().map(String::as_str));
        }
    }
    selected
}

/// A dependency cycle among `checks`: its ids, the first one repeated at the
/// end (`a -> b -> a`), or `None` when they can be ordered.
pub fn find_cycle(checks: &[Check]) -> Option<Vec<String>> {
    order(checks.to_vec()).err().map(|(cycle, _)| cycle)
}

/// The error for a dependency cycle, pointing at `at`.
pub fn cycle_error(cycle: &[String], at: Location) -> UserError {
    UserError::new(format!("dependency cycle: {}", cycle.join(" -> ")))
        .at(at)
        .field("needs")
        .hint("remove one of these `needs` entries so the checks can be ordered")
}

/// Orders by phase, then Kahn's algorithm within each phase; a cycle is
/// returned as its path and the location of its first check.
fn order(checks: Vec<Check>) -> Result<Vec<Check>, (Vec<String>, Location)> {
    let mut out = Vec::with_capacity(checks.len());
    let mut by_phase: BTreeMap<Phase, Vec<Check>> = BTreeMap::new();
    for c in checks {
        by_phase.entry(c.phase).or_default().push(c);
    }
    for (_, mut pending) in by_phase {
        let ids: BTreeSet<String> = pending.iter().map(|c| c.id.clone()).collect();
        let mut done: BTreeSet<String> = BTreeSet::new();
        while !pending.is_empty() {
            let ready = pending
                .iter()
                .position(|c| c.needs.iter().all(|n| !ids.contains(n) || done.contains(n)));
            match ready {
                Some(i) => {
                    let c = pending.remove(i);
                    done.insert(c.id.clone());
                    out.push(c);
                }
                None => return Err(cycle_path(&pending, &ids)),
            }
        }
    }
    Ok(out)
}

fn cycle_path(pending: &[Check], ids: &BTreeSet<String>) -> (Vec<String>, Location) {
    let by_id: BTreeMap<&str, &Check> = pending.iter().map(|c| (c.id.as_str(), c)).collect();
    // Walk needs from the first pending check until an id repeats.
    let mut path: Vec<&str> = vec![pending[0].id.as_str()];
    loop {
        let current = by_id[path[path.len() - 1]];
        let next = current
            .needs
            .iter()
            .map(String::as_str)
            .find(|n| ids.contains(*n) && by_id.contains_key(n));
        let Some(next) = next else { break };
        if let Some(start) = path.iter().position(|p| *p == next) {
            path.drain(..start);
            path.push(next);
            break;
        }
        path.push(next);
    }
    let first = by_id[path[0]].location.clone();
    (path.into_iter().map(str::to_string).collect(), first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::RetryPolicy;
    use crate::check::Severity;
    use crate::checks::tcp;
    use crate::checks::ProbeSpec;
    use crate::error::Location;
    use std::time::Duration;

    pub(crate) fn check(id: &str, phase: Phase, needs: &[&str]) -> Check {
        Check {
            id: id.into(),
            phase,
            description: String::new(),
            service: "s".into(),
            severity: Severity::Fail,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::ONCE,
            needs: needs.iter().map(|s| s.to_string()).collect(),
            hint: None,
            stand_in: false,
            probe: ProbeSpec::Tcp(tcp::Spec {
                address: "127.0.0.1:1".into(),
                open: true,
                via: None,
            })
            .into_probe(),
            logs: None,
            when: Default::default(),
            smoke: false,
            location: Location {
                file: "p.toml".into(),
                line: 1,
                column: 1,
            },
        }
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.checks.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn orders_by_phase_then_dependencies() {
        let plan = Plan::build(
            vec![
                check("b", Phase::Services, &["a"]),
                check("a", Phase::Services, &[]),
                check("z", Phase::Config, &[]),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(ids(&plan), ["z", "a", "b"]);
    }

    #[test]
    fn chains_are_measured_from_each_check_down_to_the_last_that_needs_it() {
        let plan = Plan::build(
            vec![
                check("quick", Phase::Services, &[]),
                check("health", Phase::Services, &[]),
                check("login", Phase::Services, &["health"]),
                check("media", Phase::Services, &["login"]),
                check("whoami", Phase::Services, &["health"]),
            ],
            &[],
        )
        .unwrap();
        let lengths = plan.chain_lengths();
        let got: Vec<(&str, usize)> = ["quick", "health", "login", "media", "whoami"]
            .iter()
            .map(|id| (*id, lengths[id]))
            .collect();
        assert_eq!(
            got,
            [
                ("quick", 1),
                ("health", 3),
                ("login", 2),
                ("media", 1),
                ("whoami", 1)
            ]
        );
    }

    #[test]
    fn smoke_keeps_the_marked_checks_and_what_they_need() {
        let mut marked = check("login", Phase::Services, &["health"]);
        marked.smoke = true;
        let plan = Plan::build_where(
            vec![
                check("health", Phase::Services, &[]),
                marked,
                check("other", Phase::Services, &[]),
                check("vm", Phase::Boot, &[]),
            ],
            &[],
            |c| c.smoke,
        )
        .unwrap();
        assert_eq!(ids(&plan), ["health", "login"]);
    }

    #[test]
    fn phase_selection_pulls_in_needed_checks_only() {
        let plan = Plan::build(
            vec![
                check("cfg", Phase::Config, &[]),
                check("other", Phase::Config, &[]),
                check("svc", Phase::Services, &["cfg"]),
                check("sec", Phase::Security, &[]),
            ],
            &[Phase::Services],
        )
        .unwrap();
        assert_eq!(ids(&plan), ["cfg", "svc"]);
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let e = Plan::build(
            vec![
                check("a", Phase::Services, &["b"]),
                check("b", Phase::Services, &["c"]),
                check("c", Phase::Services, &["a"]),
            ],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dependency cycle: a -> b -> c -> a"), "{e}");
    }
}
