//! Judges systemd's state in a VM or on a host: the system state, failed
//! units, units' ActiveState/SubState and restart counts (NRestarts, so a
//! flapping service fails), and boot timings computed from the Manager's
//! timestamps the way `systemd-analyze` does.

use super::spec::{Assertion, Spec};
use crate::check::Verdict;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedUnit {
    pub name: String,
    pub description: String,
    pub active_state: String,
    pub sub_state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// Service units only.
    pub n_restarts: Option<u32>,
}

/// The Manager's timestamps in microseconds (monotonic, except the
/// kernel's, which is wall-clock; 0 = did not happen / unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootTimestamps {
    pub firmware_us: u64,
    pub loader_us: u64,
    pub kernel_realtime_us: u64,
    pub initrd_us: u64,
    pub userspace_us: u64,
    pub finish_us: u64,
}

impl BootTimestamps {
    /// (metric name, seconds) like `systemd-analyze time`.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let s = |us: u64| us as f64 / 1e6;
        let mut out = Vec::new();
        if self.firmware_us > 0 {
            out.push((
                "boot_firmware_seconds",
                s(self.firmware_us.saturating_sub(self.loader_us)),
            ));
        }
        if self.loader_us > 0 {
            out.push(("boot_loader_seconds", s(self.loader_us)));
        }
        if self.userspace_us > 0 {
            let kernel_end = if self.initrd_us > 0 {
                self.initrd_us
            } else {
                self.userspace_us
            };
            out.push(("boot_kernel_seconds", s(kernel_end)));
            if self.initrd_us > 0 {
                out.push((
                    "boot_initrd_seconds",
                    s(self.userspace_us.saturating_sub(self.initrd_us)),
                ));
            }
        }
        if self.finish_us > 0 {
            out.push((
                "boot_userspace_seconds",
                s(self.finish_us.saturating_sub(self.userspace_us)),
            ));
            out.push((
                "boot_total_seconds",
                s(self.firmware_us + self.loader_us + self.finish_us),
            ));
        }
        if self.kernel_realtime_us > 0 {
            out.push(("kernel_started_unix_seconds", s(self.kernel_realtime_us)));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// Where systemd was read: "in VM `guest`", "on this host", "on ssh ...".
    pub place: String,
    /// The facts could not be gathered (no VM, no bus, D-Bus error).
    pub error: Option<String>,
    pub system_state: Option<String>,
    pub failed_units: Option<Vec<FailedUnit>>,
    pub unit: Option<UnitState>,
    /// `units_active`: each listed unit, in the table's order.
    pub units: Option<Vec<UnitState>>,
    pub timestamps: Option<BootTimestamps>,
    pub dbus_ms: f64,
}

fn failed_list(units: &[FailedUnit]) -> String {
    units
        .iter()
        .map(|u| {
            format!(
                "{} ({}/{}): {}",
                u.name, u.active_state, u.sub_state, u.description
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A unit's state as evidence.
fn unit_line(u: &UnitState) -> String {
    format!(
        "{}: LoadState {}, ActiveState {}, SubState {}, NRestarts {}",
        u.name,
        u.load_state,
        u.active_state,
        u.sub_state,
        u.n_restarts.map_or("n/a".to_string(), |n| n.to_string())
    )
}

/// One unit against `active`/`want_sub` and `max_restarts`: what was
/// found, as `Ok` when it holds.
fn judge_unit(u: &UnitState, want_sub: &str, max_restarts: Option<u32>) -> Result<String, String> {
    let restarts = u
        .n_restarts
        .map(|n| format!(", NRestarts {n}"))
        .unwrap_or_default();
    let found = format!("{} {}/{}{restarts}", u.name, u.active_state, u.sub_state);
    if u.load_state == "not-found" {
        return Err(format!("{} not found (LoadState not-found)", u.name));
    }
    if let (Some(max), Some(n)) = (max_restarts, u.n_restarts) {
        if n > max {
            return Err(format!(
                "{found}: restarted {n} times, more than max_restarts = {max} (flapping)"
            ));
        }
    }
    if max_restarts.is_some() && u.n_restarts.is_none() {
        return Err(format!("{found}: NRestarts not readable"));
    }
    if u.active_state == "active" && u.sub_state == want_sub {
        Ok(found)
    } else {
        Err(found)
    }
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let place = &facts.place;
    let want_sub = spec.sub_state.as_deref().unwrap_or("running");
    let restart_limit = spec
        .max_restarts
        .map(|n| format!(", NRestarts at most {n}"))
        .unwrap_or_default();
    let expected = match spec.assert {
        Assertion::SystemRunning => format!("systemd {place}: SystemState running"),
        Assertion::NoFailedUnits => format!("systemd {place}: no failed units"),
        Assertion::UnitActive => format!(
            "{} {place}: ActiveState active, SubState {want_sub}{restart_limit}",
            spec.unit.as_deref().unwrap_or("?"),
        ),
        Assertion::UnitsActive => format!(
            "{} {place}: each ActiveState active, SubState {want_sub}{restart_limit}",
            spec.units.join(", "),
        ),
        Assertion::BootFinished => format!("systemd {place}: boot finished"),
    };
    if let Some(e) = &facts.error {
        return Verdict::fail(expected, format!("error: {e}"));
    }
    let mut evidence = Vec::new();
    if let Some(state) = &facts.system_state {
        evidence.push(format!("SystemState: {state}"));
    }
    if let Some(units) = &facts.failed_units {
        if units.is_empty() {
            evidence.push("failed units: none".into());
        } else {
            evidence.push(format!("failed units:\n{}", failed_list(units)));
        }
    }
    if let Some(t) = &facts.timestamps {
        let timings = t
            .metrics()
            .iter()
            .filter(|(name, _)| name.starts_with("boot_"))
            .map(|(name, v)| format!("{name}={v:.3}"))
            .collect::<Vec<_>>()
            .join(" ");
        evidence.push(format!("boot timings: {timings}"));
    }
    let verdict = match spec.assert {
        Assertion::SystemRunning => match facts.system_state.as_deref() {
            Some("running") => Verdict::pass(expected, "SystemState running"),
            Some(state) => {
                let hint = match state {
                    "starting" | "initializing" => " (boot still in progress)",
                    "degraded" => " (some units failed; see the evidence)",
                    _ => "",
                };
                Verdict::fail(expected, format!("SystemState {state}{hint}"))
            }
            None => Verdict::fail(expected, "SystemState not read"),
        },
        Assertion::BootFinished => match facts.timestamps {
            Some(t) if t.finish_us > 0 => Verdict::pass(
                expected,
                format!(
                    "boot finished {:.1}s after the kernel started",
                    t.finish_us as f64 / 1e6
                ),
            ),
            _ => Verdict::fail(expected, "FinishTimestampMonotonic is 0: boot not finished"),
        },
        Assertion::NoFailedUnits => match &facts.failed_units {
            Some(units) if units.is_empty() => Verdict::pass(expected, "0 failed units"),
            Some(units) => Verdict::fail(
                expected,
                format!(
                    "{} failed: {}",
                    units.len(),
                    units
                        .iter()
                        .map(|u| u.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            None => Verdict::fail(expected, "failed units not read"),
        },
        Assertion::UnitActive => match &facts.unit {
            Some(u) => {
                evidence.push(unit_line(u));
                match judge_unit(u, want_sub, spec.max_restarts) {
                    Ok(found) => Verdict::pass(expected, found),
                    Err(found) => Verdict::fail(expected, found),
                }
            }
            None => Verdict::fail(expected, "unit state not read"),
        },
        Assertion::UnitsActive => match &facts.units {
            Some(units) => {
                let mut good = Vec::new();
                let mut bad = Vec::new();
                for u in units {
                    evidence.push(unit_line(u));
                    match judge_unit(u, want_sub, spec.max_restarts) {
                        Ok(found) => good.push(found),
                        Err(found) => bad.push(found),
                    }
                }
                if bad.is_empty() {
                    Verdict::pass(expected, good.join("; "))
                } else {
                    Verdict::fail(expected, bad.join("; "))
                }
            }
            None => Verdict::fail(expected, "unit states not read"),
        },
    };
    let mut verdict = verdict
        .with_evidence(evidence.join("\n"))
        .with_metric("dbus_ms", facts.dbus_ms);
    if let Some(t) = &facts.timestamps {
        for (name, value) in t.metrics() {
            verdict = verdict.with_metric(name, value);
        }
    }
    if let Some(n) = facts.unit.as_ref().and_then(|u| u.n_restarts) {
        verdict = verdict.with_metric("n_restarts", n as f64);
    }
    for u in facts.units.iter().flatten() {
        if let Some(n) = u.n_restarts {
            verdict = verdict.with_metric(&format!("n_restarts.{}", u.name), n as f64);
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        toml::from_str(&format!("vm = \"guest\"\n{text}")).unwrap()
    }

    fn failed(name: &str) -> FailedUnit {
        FailedUnit {
            name: name.into(),
            description: "d".into(),
            active_state: "failed".into(),
            sub_state: "failed".into(),
        }
    }

    #[test]
    fn system_state_running_passes_and_degraded_lists_failed_units() {
        let s = spec("assert = \"system_running\"");
        let mut facts = Facts {
            place: "in VM `guest`".into(),
            system_state: Some("running".into()),
            failed_units: Some(vec![]),
            timestamps: Some(BootTimestamps {
                initrd_us: 2_000_000,
                userspace_us: 5_000_000,
                finish_us: 20_000_000,
                ..Default::default()
            }),
            ..Facts::default()
        };
        let v = judge(&s, &facts);
        assert!(v.pass, "{v:?}");
        assert_eq!(v.metrics["boot_kernel_seconds"], 2.0);
        assert_eq!(v.metrics["boot_initrd_seconds"], 3.0);
        assert_eq!(v.metrics["boot_userspace_seconds"], 15.0);
        assert_eq!(v.metrics["boot_total_seconds"], 20.0);
        facts.system_state = Some("degraded".into());
        facts.failed_units = Some(vec![failed("postgresql@15-main.service")]);
        let v = judge(&s, &facts);
        assert!(!v.pass);
        assert!(v.found.contains("degraded"), "{v:?}");
        assert!(
            v.evidence
                .contains("postgresql@15-main.service (failed/failed)"),
            "{v:?}"
        );
    }

    #[test]
    fn failed_units_and_unit_states() {
        let s = spec("assert = \"no_failed_units\"");
        let facts = Facts {
            failed_units: Some(vec![failed("a.service"), failed("b.mount")]),
            ..Facts::default()
        };
        let v = judge(&s, &facts);
        assert!(
            !v.pass && v.found == "2 failed: a.service, b.mount",
            "{v:?}"
        );

        let s = spec("assert = \"unit_active\"\nunit = \"ssh.service\"");
        let unit = |active: &str, sub: &str, load: &str| Facts {
            unit: Some(UnitState {
                name: "ssh.service".into(),
                load_state: load.into(),
                active_state: active.into(),
                sub_state: sub.into(),
                n_restarts: Some(1),
            }),
            ..Facts::default()
        };
        let v = judge(&s, &unit("active", "running", "loaded"));
        assert!(v.pass && v.metrics["n_restarts"] == 1.0, "{v:?}");
        assert!(!judge(&s, &unit("inactive", "dead", "loaded")).pass);
        assert!(!judge(&s, &unit("active", "exited", "loaded")).pass);
        let v = judge(&s, &unit("inactive", "dead", "not-found"));
        assert!(v.found.contains("not found"), "{v:?}");
    }

    #[test]
    fn gathering_errors_fail() {
        let facts = Facts {
            error: Some("no running VM".into()),
            ..Facts::default()
        };
        let v = judge(&spec("assert = \"system_running\""), &facts);
        assert!(!v.pass && v.found.contains("no running VM"));
    }

    fn unit(name: &str, active: &str, sub: &str, restarts: Option<u32>) -> UnitState {
        UnitState {
            name: name.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: sub.into(),
            n_restarts: restarts,
        }
    }

    #[test]
    fn restart_counts_fail_a_flapping_unit() {
        let host = |text: &str| -> Spec { toml::from_str(text).unwrap() };
        let limited = host(
            "assert = \"units_active\"\nunits = [\"postgresql.service\", \"synapse.service\"]\nmax_restarts = 2",
        );
        let unlimited =
            host("assert = \"units_active\"\nunits = [\"postgresql.service\", \"synapse.service\"]");
        let one = host("assert = \"unit_active\"\nunit = \"synapse.service\"\nmax_restarts = 0");
        let facts = |units: Vec<UnitState>| Facts {
            place: "on ssh rave@p6:22".into(),
            unit: units.first().cloned(),
            units: Some(units),
            ..Facts::default()
        };
        let pg = unit("postgresql.service", "active", "running", Some(0));
        // (spec, units, pass, text in found)
        let cases: Vec<(&Spec, Vec<UnitState>, bool, &str)> = vec![
            (&limited, vec![pg.clone(), unit("synapse.service", "active", "running", Some(2))], true, "synapse.service active/running, NRestarts 2"),
            (&limited, vec![pg.clone(), unit("synapse.service", "active", "running", Some(7))], false, "synapse.service active/running, NRestarts 7: restarted 7 times, more than max_restarts = 2 (flapping)"),
            (&limited, vec![pg.clone(), unit("synapse.service", "activating", "auto-restart", Some(3))], false, "restarted 3 times"),
            (&unlimited, vec![pg.clone(), unit("synapse.service", "active", "running", Some(7))], true, "NRestarts 7"),
            (&unlimited, vec![pg.clone(), unit("synapse.service", "failed", "failed", Some(0))], false, "synapse.service failed/failed"),
            (&limited, vec![pg.clone(), unit("synapse.service", "active", "running", None)], false, "NRestarts not readable"),
            (&one, vec![unit("synapse.service", "active", "running", Some(1))], false, "more than max_restarts = 0"),
            (&one, vec![unit("synapse.service", "active", "running", Some(0))], true, "synapse.service active/running, NRestarts 0"),
        ];
        for (spec, units, pass, text) in cases {
            let v = judge(spec, &facts(units.clone()));
            assert_eq!(v.pass, pass, "{units:?}: {v:?}");
            assert!(v.found.contains(text), "{units:?}: {v:?}");
            assert!(v.expected.contains("on ssh rave@p6:22"), "{v:?}");
        }
        let v = judge(&limited, &facts(vec![pg, unit("synapse.service", "active", "running", Some(7))]));
        assert_eq!(v.metrics["n_restarts.synapse.service"], 7.0);
        assert!(v.expected.contains("NRestarts at most 2"), "{v:?}");
        assert!(!v.found.contains("postgresql"), "only the failing unit: {v:?}");
        assert!(v.evidence.contains("postgresql.service: LoadState loaded"), "{v:?}");
    }
}
