//! `[check.systemd]`: systemd's own view of a machine, read over D-Bus
//! (zbus): a booted VM's (`vm = "NAME"`, the guest's system bus through an
//! ssh forward, `vm::bus`), else the check's host's (its system bus through
//! the host's tunnel, or this machine's own bus when the host is local):
//!
//! - `assert = "system_running"`: Manager.SystemState is `running`; when it
//!   is not, the failed units are the evidence. Boot timings from the
//!   Manager's *Timestamp properties are recorded as metrics.
//! - `assert = "no_failed_units"`: ListUnitsFiltered(["failed"]) is empty.
//! - `assert = "unit_active"` with `unit = "ssh.service"`: ActiveState
//!   `active` and SubState `running` (or `sub_state`); NRestarts recorded,
//!   and at most `max_restarts` when that is set.
//! - `assert = "units_active"` with `units = [...]`: the same for each unit
//!   (the RAVE services), with `max_restarts` failing a flapping unit.
//! - `assert = "boot_finished"`: FinishTimestampMonotonic is set; records
//!   the timings.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Assertion {
    SystemRunning,
    NoFailedUnits,
    UnitActive,
    UnitsActive,
    BootFinished,
}

/// The table as written; checked into `Spec` when the profile is read.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// The VM (the `name` of its `[check.vm]` boot check); without it, the
    /// check's host.
    #[serde(default)]
    pub vm: Option<String>,
    /// What must hold: "system_running", "no_failed_units", "unit_active",
    /// "units_active" or "boot_finished".
    pub assert: Assertion,
    /// The unit for `unit_active`, e.g. "ssh.service".
    #[serde(default)]
    pub unit: Option<String>,
    /// The units for `units_active`.
    #[serde(default)]
    pub units: Vec<String>,
    /// SubState `unit_active`/`units_active` require (default "running").
    #[serde(default)]
    pub sub_state: Option<String>,
    /// `unit_active`/`units_active`: the most restarts (NRestarts) a
    /// service may have had; more fails it as flapping.
    #[serde(default)]
    pub max_restarts: Option<u32>,
}

/// A checked `[check.systemd]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawSpec")]
pub struct Spec {
    /// The VM (the `name` of its `[check.vm]` boot check); without it, the
    /// check's host.
    pub vm: Option<String>,
    /// What must hold: "system_running", "no_failed_units", "unit_active",
    /// "units_active" or "boot_finished".
    pub assert: Assertion,
    /// The unit for `unit_active`, e.g. "ssh.service".
    pub unit: Option<String>,
    /// The units for `units_active`.
    pub units: Vec<String>,
    /// SubState `unit_active`/`units_active` require (default "running").
    pub sub_state: Option<String>,
    /// `unit_active`/`units_active`: the most restarts (NRestarts) a
    /// service may have had; more fails it as flapping.
    pub max_restarts: Option<u32>,
}

impl TryFrom<RawSpec> for Spec {
    type Error = String;
    fn try_from(raw: RawSpec) -> Result<Spec, String> {
        let spec = Spec {
            vm: raw.vm,
            assert: raw.assert,
            unit: raw.unit,
            units: raw.units,
            sub_state: raw.sub_state,
            max_restarts: raw.max_restarts,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl Spec {
    /// The table is complete for its assertion and sets nothing it ignores.
    pub fn validate(&self) -> Result<(), String> {
        let name = match self.assert {
            Assertion::SystemRunning => "system_running",
            Assertion::NoFailedUnits => "no_failed_units",
            Assertion::UnitActive => "unit_active",
            Assertion::UnitsActive => "units_active",
            Assertion::BootFinished => "boot_finished",
        };
        let uses: &[&str] = match self.assert {
            Assertion::UnitActive => &["unit", "sub_state", "max_restarts"],
            Assertion::UnitsActive => &["units", "sub_state", "max_restarts"],
            _ => &[],
        };
        crate::checks::reject_unused_fields(
            name,
            &[
                ("unit", self.unit.is_some()),
                ("units", !self.units.is_empty()),
                ("sub_state", self.sub_state.is_some()),
                ("max_restarts", self.max_restarts.is_some()),
            ],
            uses,
        )?;
        if self.assert == Assertion::UnitActive && self.unit.is_none() {
            return Err("assert = \"unit_active\" needs unit = \"<name>.service\"".into());
        }
        if self.assert == Assertion::UnitsActive && self.units.is_empty() {
            return Err(
                "assert = \"units_active\" needs units = [\"<name>.service\", ...] (at least one)"
                    .into(),
            );
        }
        if self.max_restarts.is_some() {
            if let Some(unit) = self.checked_units().iter().find(|u| !u.ends_with(".service")) {
                return Err(format!(
                    "`max_restarts` counts restarts of services (NRestarts), but `{unit}` is not a .service unit; remove it or list services only"
                ));
            }
        }
        Ok(())
    }

    /// The units `unit_active` or `units_active` reads.
    pub fn checked_units(&self) -> Vec<String> {
        match self.assert {
            Assertion::UnitActive => self.unit.iter().cloned().collect(),
            Assertion::UnitsActive => self.units.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_parse_and_typos_are_rejected() {
        let s: Spec =
            toml::from_str("vm = \"guest\"\nassert = \"unit_active\"\nunit = \"ssh.service\"")
                .unwrap();
        assert_eq!(s.assert, Assertion::UnitActive);
        let err = toml::from_str::<Spec>("vm = \"g\"\nassert = \"is_running\"").unwrap_err();
        assert!(err.to_string().contains("system_running"), "{err}");
        let host: Spec = toml::from_str("assert = \"system_running\"").unwrap();
        assert_eq!(host.vm, None);
    }

    #[test]
    fn each_assertion_takes_only_its_fields() {
        let check = |text: &str| {
            toml::from_str::<Spec>(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            check("assert = \"units_active\"\nunits = [\"a.service\"]\nmax_restarts = 3"),
            ""
        );
        assert_eq!(
            check("assert = \"unit_active\"\nunit = \"a.service\"\nmax_restarts = 0"),
            ""
        );
        assert!(check("assert = \"units_active\"").contains("needs units"));
        assert!(check("assert = \"unit_active\"").contains("needs unit"));
        assert!(check("assert = \"system_running\"\nmax_restarts = 1")
            .contains("`max_restarts` does not apply to `assert = \"system_running\"`"));
        assert!(check("assert = \"units_active\"\nunits = [\"a.service\"]\nunit = \"b\"")
            .contains("`unit` does not apply"));
        assert!(
            check("assert = \"units_active\"\nunits = [\"a.service\", \"b.socket\"]\nmax_restarts = 1")
                .contains("`b.socket` is not a .service unit")
        );
    }
}
