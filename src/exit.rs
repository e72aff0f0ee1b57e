//! Exit codes: every code the binary returns, named and documented in one
//! place, and the one function that picks the code of a run.
//!
//! Reporters never choose an exit code; `cli` maps a user error to `USAGE`
//! and a judged run to a code through [`for_run`].
//!
//! Precedence (the first that applies wins):
//!
//! 1. `USAGE` (2): a usage, profile, target, key or environment error found
//!    before anything is judged; no check ran, no artifact was written.
//!
//! Once the checks were judged:
//!
//! 2. `ARTIFACTS_NOT_WRITTEN` (4): the transcript, attestation or JUnit report
//!    could not be written (the write error is printed), or the image given
//!    with `--image` could not be hashed, so the transcript is not bound to it.
//!    Either way the run's proof is missing, whatever the verdict was.
//! 3. `ABORTED` (3): SIGINT, SIGTERM or `VALIDATION_TIMEOUT` cut the run short.
//! 4. `CHECK_FAILED` (1): a check failed.
//! 5. `SUCCESS` (0): every check passed (warnings allowed).
//!
//! `verify` returns `SUCCESS` (valid) or `CHECK_FAILED` (invalid).
//!
//! `serve` returns `USAGE` when its input is wrong or it cannot listen, and
//! `SUCCESS` when SIGINT or SIGTERM stopped it (the run in flight, if any,
//! is aborted and its transcript written): its runs' verdicts are answers
//! to HTTP requests, not its exit code.

use crate::check::OverallStatus;

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
/// The checks were judged, but the artifacts were not written (the write
/// error is printed), or the image could not be hashed so the transcript is
/// not bound to it.
pub const ARTIFACTS_NOT_WRITTEN: i32 = 4;

/// The exit code of a run whose checks were judged, by the precedence above:
/// `artifacts_written` says whether the transcript, attestation and JUnit
/// report were all written, `image_hashed` whether the image's digest (when
/// an image was given) was computed.
pub fn for_run(status: OverallStatus, artifacts_written: bool, image_hashed: bool) -> i32 {
    if !artifacts_written || !image_hashed {
        return ARTIFACTS_NOT_WRITTEN;
    }
    match status {
        OverallStatus::Aborted => ABORTED,
        OverallStatus::Failure => CHECK_FAILED,
        OverallStatus::Success | OverallStatus::Warning => SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OverallStatus::{Aborted, Failure, Success, Warning};

    #[test]
    fn a_run_exits_by_the_documented_precedence() {
        // (status, artifacts written, image hashed) -> code
        let table = [
            (Success, true, true, SUCCESS),
            (Warning, true, true, SUCCESS),
            (Failure, true, true, CHECK_FAILED),
            (Aborted, true, true, ABORTED),
            // The missing proof outranks every verdict.
            (Success, false, true, ARTIFACTS_NOT_WRITTEN),
            (Warning, false, true, ARTIFACTS_NOT_WRITTEN),
            (Failure, false, true, ARTIFACTS_NOT_WRITTEN),
            (Aborted, false, true, ARTIFACTS_NOT_WRITTEN),
            (Success, true, false, ARTIFACTS_NOT_WRITTEN),
            (Failure, true, false, ARTIFACTS_NOT_WRITTEN),
            (Aborted, true, false, ARTIFACTS_NOT_WRITTEN),
            (Aborted, false, false, ARTIFACTS_NOT_WRITTEN),
        ];
        for (status, written, hashed, code) in table {
            assert_eq!(
                for_run(status, written, hashed),
                code,
                "{status:?}, artifacts written {written}, image hashed {hashed}"
            );
        }
    }

    #[test]
    fn a_judged_run_never_claims_nothing_was_judged() {
        for status in [Success, Warning, Failure, Aborted] {
            for written in [true, false] {
                for hashed in [true, false] {
                    assert_ne!(for_run(status, written, hashed), USAGE);
                }
            }
        }
    }

    #[test]
    fn the_codes_are_distinct() {
        let mut codes = [SUCCESS, CHECK_FAILED, USAGE, ABORTED, ARTIFACTS_NOT_WRITTEN];
        codes.sort();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }
}
