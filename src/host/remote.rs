//! The remote shell line for a command, pure: every word single-quoted so
//! the remote login shell passes it through unchanged, wrapped in
//! `timeout -k 1 <secs>` so the command dies on the remote side at its
//! deadline even when the connection is gone, and in `sudo -n` (no prompt:
//! a missing sudo rule fails at once) when the host runs commands as root.

use crate::os::CommandSpec;

/// `word` in single quotes, `'` written as `'\''`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The line the remote shell runs: `[cd DIR &&] [sudo -n] timeout -k 1 SECS
/// [env K=V...] PROGRAM ARGS...`; `secs` is the remote bound in seconds.
pub fn remote_line(spec: &CommandSpec, secs: f64, sudo: bool) -> String {
    let mut words = Vec::new();
    if sudo {
        words.push("sudo".to_string());
        words.push("-n".to_string());
    }
    words.push("timeout".to_string());
    words.push("-k".to_string());
    words.push("1".to_string());
    words.push(format!("{:.1}", secs.max(0.1)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let check = |spec: CommandSpec, secs: f64, sudo: bool, want: &str| {
            assert_eq!(remote_line(&spec, secs, sudo), want)
        };
        check(
            CommandSpec::new("uname", &["-s"]),
            9.96,
            false,
            "timeout -k 1 10.0 'uname' '-s'",
        );
        check(
            CommandSpec::new("sh", &["-c", "echo it's; exit 3"]),
            2.0,
            true,
            "sudo -n timeout -k 1 2.0 'sh' '-c' 'echo it'\\''s; exit 3'",
        );
        let mut spec = CommandSpec::new("ls", &["$HOME", "a b", ""]);
        spec.env.insert("A".into(), "b c".into());
        spec.cwd = Some("/tmp/x y".into());
        check(
            spec,
            0.0,
            false,
            "cd '/tmp/x y' && timeout -k 1 0.1 env 'A=b c' 'ls' '$HOME' 'a b' ''",
        );
    }

    /// The quoted line, run by a real shell, hands the program exactly its
    /// arguments back.
    #[test]
    fn a_real_shell_receives_every_word_unchanged() {
        let words = ["it's", "$(echo no)", "a\nb", "`x`", "\\", "\"q\"", "", "*"];
        let line = std::iter::once("printf '%s|'".to_string())
            .chain(words.iter().map(|w| shell_quote(w)))
            .collect::<Vec<_>>()
            .join(" ");
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            words.iter().map(|w| format!("{w}|")).collect::<String>()
        );
    }
}
