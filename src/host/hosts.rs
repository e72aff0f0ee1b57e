//! The `Host` trait, this machine (`LocalHost`, optionally through
//! `sudo -n`) and the hosts of a run (`Hosts`: a default, and the host of
//! each profile a named host claims).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use crate::os::exec::ExecFuture;
use crate::os::{CommandExecutor, CommandSpec, LocalExecutor, Tunnel};

/// Where checks run.
pub trait Host: Send + Sync {
    /// Runs the commands of checks on this host.
    fn executor(&self) -> Arc<dyn CommandExecutor>;
    /// Reaches this host's loopback; `None` for this machine.
    fn tunnel(&self) -> Option<Arc<dyn Tunnel>>;
    /// Network kinds without a `via` field go through the tunnel.
    fn via_host(&self) -> bool;
    /// For results and evidence: "local", "ssh rave@p6.example.org:22".
    fn describe(&self) -> String;
    /// Ends what the host holds open (connections, forwards, files).
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// This machine; with `sudo`, every command runs as root through `sudo -n`.
#[derive(Debug, Default, Clone)]
pub struct LocalHost {
    pub sudo: bool,
}

impl Host for LocalHost {
    fn executor(&self) -> Arc<dyn CommandExecutor> {
        if self.sudo {
            Arc::new(SudoExecutor)
        } else {
            Arc::new(LocalExecutor)
        }
    }
    fn tunnel(&self) -> Option<Arc<dyn Tunnel>> {
        None
    }
    fn via_host(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        if self.sudo {
            "local (sudo)".into()
        } else {
            "local".into()
        }
    }
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// Runs each command on this machine as `sudo -n PROGRAM ARGS...`.
#[derive(Debug, Default, Clone)]
pub struct SudoExecutor;

impl SudoExecutor {
    /// `spec` run through `sudo -n` (its environment passed with `env`).
    pub fn wrap(spec: &CommandSpec) -> CommandSpec {
        let mut args = vec!["-n".to_string()];
        if !spec.env.is_empty() {
            args.push("env".into());
            args.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
        }
        args.push(spec.program.clone());
        args.extend(spec.args.iter().cloned());
        CommandSpec {
            program: "sudo".into(),
            args,
            env: Default::default(),
            cwd: spec.cwd.clone(),
            stdin: spec.stdin.clone(),
        }
    }
}

impl CommandExecutor for SudoExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: Instant) -> ExecFuture<'a> {
        Box::pin(async move { LocalExecutor.run(&Self::wrap(spec), deadline).await })
    }
    fn describe(&self) -> String {
        "local (sudo)".into()
    }
}

/// The hosts of a run: a default, and the host of each profile that a
/// named host claims (keyed by the profile file the checks come from).
#[derive(Clone)]
pub struct Hosts {
    default: Arc<dyn Host>,
    by_profile_file: HashMap<PathBuf, Arc<dyn Host>>,
    all: Vec<Arc<dyn Host>>,
}

impl Hosts {
    /// Every check on this machine.
    pub fn local() -> Hosts {
        Hosts::new(Arc::new(LocalHost::default()))
    }

    /// Every check on `default` until `route` says otherwise.
    pub fn new(default: Arc<dyn Host>) -> Hosts {
        Hosts {
            all: vec![default.clone()],
            default,
            by_profile_file: HashMap::new(),
        }
    }

    /// Checks from `profile_file` run on `host`.
    pub fn route(&mut self, profile_file: &Path, host: Arc<dyn Host>) {
        if !self.all.iter().any(|h| Arc::ptr_eq(h, &host)) {
            self.all.push(host.clone());
        }
        self.by_profile_file
            .insert(profile_file.to_path_buf(), host);
    }

    /// The host of the checks from `profile_file`.
    pub fn for_profile_file(&self, profile_file: &Path) -> Arc<dyn Host> {
        self.by_profile_file
            .get(profile_file)
            .unwrap_or(&self.default)
            .clone()
    }

    /// Closes every host (each once).
    pub async fn close_all(&self) {
        for host in &self.all {
            host.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_wraps_program_args_and_env() {
        let mut spec = CommandSpec::new("sshd", &["-T"]);
        spec.env.insert("LC_ALL".into(), "C".into());
        let wrapped = SudoExecutor::wrap(&spec);
        assert_eq!(wrapped.display(), "sudo -n env LC_ALL=C sshd -T");
    }

    #[test]
    fn profiles_route_to_their_host_and_the_rest_to_the_default() {
        let mut hosts = Hosts::local();
        let root: Arc<dyn Host> = Arc::new(LocalHost { sudo: true });
        hosts.route(Path::new("p/security.toml"), root.clone());
        hosts.route(Path::new("p/other.toml"), root);
        assert_eq!(
            hosts
                .for_profile_file(Path::new("p/security.toml"))
                .describe(),
            "local (sudo)"
        );
        assert_eq!(
            hosts
                .for_profile_file(Path::new("p/gitlab.toml"))
                .describe(),
            "local"
        );
        assert_eq!(hosts.all.len(), 2);
    }
}
