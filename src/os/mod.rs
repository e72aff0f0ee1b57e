//! The operating system edge: the one place that spawns programs with a
//! deadline and kills their process groups (`process`), and the
//! `CommandExecutor` trait through which checks run programs (`exec`), and
//! the `Tunnel` trait through which they reach a remote host's loopback.
//!
//! **Architecture invariant:** imports nothing of the validator above it.

pub mod exec;
pub mod process;
pub mod tunnel;

pub use exec::{
    process_alive, CommandExecutor, CommandOutput, CommandSpec, ExecError, FakeExecutor,
    LocalExecutor,
};
pub use tunnel::{Tunnel, TunnelFuture};
