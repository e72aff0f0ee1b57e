//! spinup-smoke: proves a freshly built RAVE stack is ready and writes an
//! ed25519-signed boot transcript bound to the image's SHA-256 digest.
//!
//! Data flows one way: `profile` -> `plan` -> `run` -> `checks` (probe, then
//! judge) -> `report` -> `sign`. See ARCHITECTURE.md for the map.

// User errors carry file, position, field and hint; they are on cold paths.
#![allow(clippy::result_large_err)]

pub mod check;
pub mod checks;
pub mod cli;
pub mod digest;
pub mod error;
pub mod exit;
pub mod host;
pub mod os;
pub mod plan;
pub mod profile;
pub mod redact;
pub mod report;
pub mod run;
pub mod sign;
pub mod sysinfo;
pub mod text;
pub mod vm;
pub mod web;
