//! Exit codes: every code the binary returns, named and documented in one place.
//!
//! Reporters never choose an exit code; `cli` maps the run's overall status
//! (or a user error) to one of these.

/// Every check passed (WARNING allowed: warned checks, phases not
/// examined); `verify`: the file is valid.
pub const SUCCESS: i32 = 0;
/// At least one check failed, or a required phase ran no check; `verify`:
/// the file is invalid (reason printed).
pub const CHECK_FAILED: i32 = 1;
/// Usage, profile, target, key or environment error: nothing was judged.
pub const USAGE: i32 = 2;
/// The run was aborted (SIGINT, SIGTERM or `VALIDATION_TIMEOUT`); a transcript
/// marked ABORTED was still written.
pub const ABORTED: i32 = 3;
