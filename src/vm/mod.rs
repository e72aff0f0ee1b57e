//! Virtual machines under QEMU for the `boot` and `sandbox` phases: choosing
//! the accelerator (`accel`), booting an image behind a copy-on-write
//! overlay with ssh forwarded to localhost (`machine`), running commands in
//! the guest over ssh (`ssh`), reaching the guest's system bus (`bus`), and
//! the run's registry that keeps a VM alive across checks and tears every
//! VM down at the end of the run (`registry`), and the sizes and formats
//! that profiles name (`units`).
//!
//! **Architecture invariant:** the image under test is never written: every
//! VM boots from its own qcow2 overlay, so the image digest stays valid.
//! Every QEMU this module starts dies with the `RunningVm` that owns it (and
//! with this process: `PR_SET_PDEATHSIG`).
//!
//! **Architecture invariant:** imports only `os` (processes) of the
//! validator; nothing of the check model, the kinds, the runner, profiles
//! or reports.

pub mod accel;
pub mod bus;
pub mod machine;
pub mod registry;
pub mod ssh;
pub mod units;

pub use accel::{AccelChoice, AccelDecision, Accelerator};
pub use machine::{boot, BootFailure, RunningVm, TeardownReport, VmConfig};
pub use ssh::SshExecutor;
pub use units::{ByteSize, ImageFormat};
