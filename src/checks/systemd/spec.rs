//! `[check.systemd]`: systemd's own view of a booted VM, read over D-Bus
//! (zbus) through an ssh forward of the guest's system bus (`vm::bus`):
//!
//! - `assert = "system_running"`: Manager.SystemState is `running`; when it
//!   is not, the failed units are the evidence. Boot timings from the
//!   Manager's *Timestamp properties are recorded as metrics.
//! - `assert = "no_failed_units"`: ListUnitsFiltered(["failed"]) is empty.
//! - `assert = "unit_active"` with `unit = "ssh.service"`: ActiveState
//!   `active` and SubState `running` (or `sub_state`); NRestarts recorded.
//! - `assert = "boot_finished"`: FinishTimestampMonotonic is set; records
//!   the timings.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Assertion {
    SystemRunning,
    NoFailedUnits,
    UnitActive,
    BootFinished,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The VM (the `name` of its `[check.vm]` boot check).
    pub vm: String,
    /// What must hold: "system_running", "no_failed_units", "unit_active"
    /// or "boot_finished".
    pub assert: Assertion,
    /// The unit for `unit_active`, e.g. "ssh.service".
    #[serde(default)]
    pub unit: Option<String>,
    /// SubState `unit_active` requires (default "running").
    #[serde(default)]
    pub sub_state: Option<String>,
}

impl Spec {
    /// The table is complete for its assertion (`unit_active` needs `unit`).
    pub fn validate(&self) -> Result<(), String> {
        if self.assert == Assertion::UnitActive && self.unit.is_none() {
            return Err("assert = \"unit_active\" needs unit = \"<name>.service\"".into());
        }
        Ok(())
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
    }
}
