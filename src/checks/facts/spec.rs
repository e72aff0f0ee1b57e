//! The `[check.facts]` table (phase `config`): values of the configuration
//! itself (`${facts.*}` from the profile's facts file, `${budget.*}` per
//! SAFE_MODE) and what must hold between them, and (`services_examined`)
//! between them and the loaded profiles.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub assert: Assertion,
    /// A table (named values) or an array of numbers, e.g.
    /// `"${facts.memory_max_mib}"`.
    pub values: toml::Value,
    /// `sum_at_most`: the budget; `unique`: the largest allowed value.
    #[serde(default)]
    pub max: Option<f64>,
    /// `unique`: the smallest allowed value.
    #[serde(default)]
    pub min: Option<f64>,
    /// `sum_at_most`: the units of `values` and of `max` (B, KiB, MiB, GiB),
    /// when they differ.
    #[serde(default)]
    pub values_unit: Option<Unit>,
    #[serde(default)]
    pub max_unit: Option<Unit>,
    /// `same_set`: the values `values` must hold, no more, no fewer.
    #[serde(default)]
    pub expected: Option<Vec<f64>>,
    /// `services_examined`: the services of every check in the loaded
    /// profiles (a check's `service`), set by the profile loader once all
    /// profiles are read; not written in a profile.
    #[serde(skip)]
    pub profile_services: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Assertion {
    /// The values add up to at most `max`.
    SumAtMost,
    /// No two values are equal (and each is within `min`..=`max`).
    Unique,
    /// The values are exactly the set `expected`.
    SameSet,
    /// Each value (a service name, e.g. `"${facts.services}"`) is the
    /// `service` of at least one check in the loaded profiles.
    ServicesExamined,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Unit {
    B,
    KiB,
    MiB,
    GiB,
}

impl Unit {
    pub fn bytes(self) -> f64 {
        match self {
            Unit::B => 1.0,
            Unit::KiB => 1024.0,
            Unit::MiB => 1024.0 * 1024.0,
            Unit::GiB => 1024.0 * 1024.0 * 1024.0,
        }
    }
}
