//! `SshExecutor`: a `CommandExecutor` that runs commands on a remote host
//! (a booted guest) through the system `ssh` client, with a per-run key,
//! no prompts (BatchMode), no host key bookkeeping (the guest is fresh every
//! run), and a connect timeout bounded by the command's deadline. The local
//! `ssh` process runs under `LocalExecutor`, so the deadline kills it.
//!
//! ssh's own failures (cannot connect, authentication refused) exit with
//! 255; that code is passed through like any other exit code.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::os::exec::{CommandExecutor, CommandSpec, ExecFuture, LocalExecutor};

/// Runs commands as `user@host -p port` with the private key `key`.
#[derive(Debug, Clone)]
pub struct SshExecutor {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub key: PathBuf,
}

/// Longest ssh connect timeout, even with a far deadline.
const MAX_CONNECT_TIMEOUT_SECS: u64 = 10;

impl SshExecutor {
    pub fn new(user: &str, host: &str, port: u16, key: &Path) -> SshExecutor {
        SshExecutor {
            user: user.into(),
            host: host.into(),
            port,
            key: key.to_path_buf(),
        }
    }

    /// The ssh options shared by commands and forwards.
    pub fn ssh_options(&self, deadline: Instant) -> Vec<String> {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let connect_timeout = left.clamp(1, MAX_CONNECT_TIMEOUT_SECS);
        [
            "-i",
            &self.key.display().to_string(),
            "-p",
            &self.port.to_string(),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            &format!("ConnectTimeout={connect_timeout}"),
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
            "-F",
            "/dev/null",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    pub fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    /// The local `ssh` invocation that runs `spec` remotely.
    pub fn ssh_command(&self, spec: &CommandSpec, deadline: Instant) -> CommandSpec {
        let mut args = self.ssh_options(deadline);
        args.push(self.destination());
        args.push("--".into());
        args.push(remote_command_line(spec));
        CommandSpec {
            program: "ssh".into(),
            args,
            env: Default::default(),
            cwd: None,
            stdin: spec.stdin.clone(),
        }
    }
}

/// The remote shell line for `spec`: `cd DIR && env K=V prog args`, each
/// word single-quoted so the remote shell passes it through unchanged.
pub fn remote_command_line(spec: &CommandSpec) -> String {
    let mut words = Vec::new();
    if !spec.env.is_empty() {
        words.push("env".to_string());
        for (k, v) in &spec.env {
            words.push(shell_quote(&format!("{k}={v}")));
        }
    }
    words.push(shell_quote(&spec.program));
    words.extend(spec.args.iter().map(|a| shell_quote(a)));
    let line = words.join(" ");
    match &spec.cwd {
        Some(dir) => format!("cd {} && {line}", shell_quote(&dir.display().to_string())),
        None => line,
    }
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

impl CommandExecutor for SshExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec, deadline: Instant) -> ExecFuture<'a> {
        Box::pin(async move {
            let local = self.ssh_command(spec, deadline);
            LocalExecutor.run(&local, deadline).await
        })
    }

    fn describe(&self) -> String {
        format!("ssh {} -p {}", self.destination(), self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_line_quotes_every_word_and_keeps_env_and_cwd() {
        let mut spec = CommandSpec::new("sh", &["-c", "echo it's; exit 3"]);
        spec.env.insert("A".into(), "b c".into());
        spec.cwd = Some("/tmp/x y".into());
        assert_eq!(
            remote_command_line(&spec),
            "cd '/tmp/x y' && env 'A=b c' 'sh' '-c' 'echo it'\\''s; exit 3'"
        );
    }

    #[test]
    fn ssh_command_is_batch_mode_with_a_bounded_connect_timeout() {
        let ssh = SshExecutor::new("root", "127.0.0.1", 2222, Path::new("/k"));
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        let cmd = ssh.ssh_command(&CommandSpec::new("true", &[]), far);
        let line = cmd.display();
        assert!(line.contains("BatchMode=yes"), "{line}");
        assert!(line.contains("ConnectTimeout=10"), "{line}");
        assert!(
            line.ends_with("root@127.0.0.1 -- ''\\''true'\\'''"),
            "{line}"
        );
        let near = Instant::now() + std::time::Duration::from_secs(3);
        let line = ssh
            .ssh_command(&CommandSpec::new("true", &[]), near)
            .display();
        assert!(line.contains("ConnectTimeout=2") || line.contains("ConnectTimeout=3"));
    }
}
