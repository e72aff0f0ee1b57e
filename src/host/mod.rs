//! The host a check examines: this machine (`LocalHost`) or a machine
//! reached over ssh (`SshHost`, one multiplexed connection per run). A
//! host hands out the executor through which every host-reading check runs
//! its commands and the tunnel through which network checks reach the
//! host's loopback. `Hosts` maps each profile to its host.
//!
//! **Architecture invariant:** imports only `os` (processes, the executor
//! and tunnel traits), `error` and `text`; the runner owns the hosts of a
//! run and closes every one before `run::run` returns.

pub mod hosts;
pub mod keys;
pub mod remote;
pub mod ssh;

pub use hosts::{Host, Hosts, LocalHost, SudoExecutor};
pub use ssh::{HostKeyPin, Identity, SshConfig, SshHost};
