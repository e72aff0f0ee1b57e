//! The runner: executes a plan phase by phase, independent checks
//! concurrently, each with a deadline and a retry policy, and emits events.

pub mod report;
pub mod retry;
