//! `[check.build]`: runs the target's image build command (for RAVE a
//! `nix build` of the P6 image; for the demo `scripts/build-guest-image.sh`)
//! through the check's executor; it must exit 0 within `max_duration`. The
//! build time is recorded as `build_seconds`. A command that serves the
//! artifact from a cache says so on stdout (`cached=true`, with the real
//! build's `build_started=`, `build_finished=`, `build_seconds=`): the
//! real build's time is judged and recorded. With `reproducible = true`
//! and an `artifact`, the command runs a second time and both builds'
//! artifacts must have the same SHA-256 digest; with `scratch_env` each
//! run gets a new empty cache directory, so both build from scratch.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::check::HumanDuration;
use crate::os::CommandSpec;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The build command as argv, e.g. ["nix", "build", ".#p6-image"].
    pub command: Vec<String>,
    /// Working directory of the build (default: the validator's).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Extra environment for the build.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Build-time budget; a slower (even successful) build fails.
    pub max_duration: HumanDuration,
    /// The file the build produces (digested for `reproducible`).
    #[serde(default)]
    pub artifact: Option<PathBuf>,
    /// Build twice and require the same artifact digest.
    #[serde(default)]
    pub reproducible: bool,
    /// With `reproducible`: the environment variable naming the build's
    /// cache directory (`SPINUP_SMOKE_CACHE_DIR` for the demo guest); each
    /// of the two builds gets a new empty directory there, made and removed
    /// on the check's host.
    #[serde(default)]
    pub scratch_env: Option<String>,
}

impl Spec {
    /// The build command to run, or why there is none.
    pub fn command_spec(&self) -> Result<CommandSpec, String> {
        let (program, args) = self
            .command
            .split_first()
            .ok_or("`command` is empty: give the build command as argv, e.g. [\"nix\", \"build\", \".#image\"]")?;
        Ok(CommandSpec {
            program: program.clone(),
            args: args.to_vec(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            stdin: None,
        })
    }
}
