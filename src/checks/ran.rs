//! One command run once on the check's host, kept whole for a judge that
//! parses its output (`sshd -T`, `nft -j list ruleset`): what ran, where,
//! its exit code and output, or why it did not finish.

use crate::check::ProbeContext;
use crate::os::{CommandSpec, ExecError};

/// What a command printed, or why it printed nothing usable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ran {
    /// The command line and where it ran, for the messages.
    pub command: String,
    pub place: String,
    /// `None`: killed, or never started (then `error` says why).
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub error: Option<String>,
}

/// Runs `command` through the check host's executor before the deadline.
pub async fn run_once(command: &CommandSpec, ctx: &ProbeContext) -> Ran {
    let mut ran = Ran {
        command: command.display(),
        place: ctx.executor.describe(),
        ..Ran::default()
    };
    match ctx.executor.run(command, ctx.deadline).await {
        Ok(out) => {
            ran.exit_code = out.exit_code;
            ran.stdout = out.stdout_text();
            ran.stderr = out.stderr_text();
        }
        Err(e) => {
            if let ExecError::TimedOut { partial, .. } = &e {
                ran.stderr = partial.stderr_text();
            }
            ran.error = Some(e.to_string());
        }
    }
    ran
}
