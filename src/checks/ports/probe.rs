//! Reads the target's listening sockets from /proc/net (tcp, tcp6, udp,
//! udp6) and the processes holding them (socket inodes in /proc/*/fd, names
//! in /proc/*/comm) through its executor.

use super::judge;
use super::judge::Facts;
use super::spec::{Protocol, Spec};
use crate::check::ProbeContext;
use crate::os::CommandSpec;

/// The socket tables could not be read: the command, where it ran, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub command: String,
    pub place: String,
    pub reason: String,
}

/// One command for the owners: each process's socket links (only the
/// `/proc/<pid>/fd:` headers and `socket:[...]` lines, to stay small on a
/// busy host), then every process's name.
const OWNERS: &str = "ls -l /proc/[0-9]*/fd 2>/dev/null | grep -e '^/proc/' -e 'socket:\\['; echo '--- comm'; grep -s '' /proc/[0-9]*/comm";

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, Unreadable> {
    // Read through the executor, so the sockets judged are the target's
    // (this host, or a VM over ssh), not wherever the validator runs.
    let tables = match spec.protocol {
        Protocol::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
        Protocol::Udp => ["/proc/net/udp", "/proc/net/udp6"],
    };
    let command = CommandSpec::new("cat", &tables);
    let unreadable = |reason: String| Unreadable {
        command: command.display(),
        place: ctx.executor.describe(),
        reason,
    };
    let mut sockets = match ctx.executor.run(&command, ctx.deadline).await {
        // `cat` exits 1 when the IPv6 table is absent (IPv6 disabled) but
        // still prints the IPv4 one.
        Ok(output) if !output.stdout.is_empty() => {
            judge::parse_proc_net(&output.stdout_text(), spec.protocol == Protocol::Tcp)
        }
        Ok(output) => {
            return Err(unreadable(format!(
                "cannot read /proc/net (is /proc mounted?): {}",
                crate::check::excerpt(output.stderr_text().trim(), 300)
            )))
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    // Who holds each socket (named only when a port must not listen, or
    // is not on the allow-list): read the same way; a missing answer only
    // leaves the owners unknown.
    if spec.allowed.is_none() && spec.not_listening.is_empty() {
        return Ok(Facts {
            sockets,
            owners_error: None,
        });
    }
    let owners = CommandSpec::new("sh", &["-c", OWNERS]);
    let owners_error = match ctx.executor.run(&owners, ctx.deadline).await {
        Ok(output) => {
            let text = output.stdout_text();
            match text.split_once("--- comm\n") {
                Some((links, comms)) => {
                    judge::attach_owners(&mut sockets, links, comms);
                    None
                }
                None => Some(format!(
                    "`sh -c ...` on {} printed no process table: {}",
                    ctx.executor.describe(),
                    crate::check::excerpt(output.stderr_text().trim(), 200)
                )),
            }
        }
        Err(e) => Some(e.to_string()),
    };
    Ok(Facts {
        sockets,
        owners_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::ports::run;

    #[tokio::test]
    async fn names_the_process_of_a_real_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ctx = ProbeContext::for_tests(30);
        let spec: Spec = toml::from_str("allowed = []\ninclude_loopback = true").unwrap();
        let v = run(&spec, &ctx).await;
        let me = format!("127.0.0.1:{port} (pid {} ", std::process::id());
        assert!(!v.pass && v.found.contains(&me), "{me}: {v:?}");
    }

    #[tokio::test]
    async fn sees_a_real_listener_and_its_absence() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ctx = ProbeContext::for_tests(30);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        assert!(
            run(&spec(&format!("listening = [{port}]")), &ctx)
                .await
                .pass
        );
        let v = run(&spec(&format!("not_listening = [{port}]")), &ctx).await;
        assert!(!v.pass && v.found.contains(&port.to_string()), "{v:?}");
        // Loopback listeners count against the allow-list only when asked.
        let v = run(&spec("allowed = []\ninclude_loopback = true"), &ctx).await;
        assert!(!v.pass && v.found.contains(&format!("{port}")), "{v:?}");
        drop(listener);
        let v = run(&spec(&format!("listening = [{port}]")), &ctx).await;
        assert!(!v.pass, "{v:?}");
    }

    #[tokio::test]
    async fn reads_the_targets_tables_through_the_executor() {
        // The target's table (as its `cat` prints it) decides, not this host's.
        let fake = std::sync::Arc::new(crate::os::FakeExecutor::new());
        fake.answer(
            "cat",
            1,
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 53 1 0000000082f1fe6f 100 0 0 10 0\n   1: 00000000:0BBA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 54 1 0000000082f1fe6f 100 0 0 10 0\n",
            "cat: /proc/net/tcp6: No such file or directory",
        );
        let mut ctx = ProbeContext::for_tests(30);
        ctx.executor = fake.clone();
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        assert!(run(&spec("allowed = [22, 3002]"), &ctx).await.pass);
        let v = run(&spec("allowed = [22]"), &ctx).await;
        assert!(!v.pass && v.found.contains("3002"), "{v:?}");
        assert_eq!(
            fake.calls()[0].args,
            vec!["/proc/net/tcp", "/proc/net/tcp6"]
        );

        let broken = std::sync::Arc::new(crate::os::FakeExecutor::new());
        broken.answer(
            "cat",
            1,
            "",
            "cat: /proc/net/tcp: No such file or directory",
        );
        ctx.executor = broken;
        let v = run(&spec("listening = [22]"), &ctx).await;
        assert!(!v.pass && v.found.contains("No such file"), "{v:?}");
    }
}
