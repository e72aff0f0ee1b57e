//! Reads the target's listening sockets from /proc/net (tcp, tcp6, udp,
//! udp6) through its executor.

use super::judge;
use super::judge::Socket;
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

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Vec<Socket>, Unreadable> {
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
    match ctx.executor.run(&command, ctx.deadline).await {
        // `cat` exits 1 when the IPv6 table is absent (IPv6 disabled) but
        // still prints the IPv4 one.
        Ok(output) if !output.stdout.is_empty() => Ok(judge::parse_proc_net(
            &output.stdout_text(),
            spec.protocol == Protocol::Tcp,
        )),
        Ok(output) => Err(unreadable(format!(
            "cannot read /proc/net (is /proc mounted?): {}",
            crate::check::excerpt(output.stderr_text().trim(), 300)
        ))),
        Err(e) => Err(unreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::ports::run;

    #[tokio::test]
    async fn sees_a_real_listener_and_its_absence() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ctx = ProbeContext::for_tests(5);
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
        let mut ctx = ProbeContext::for_tests(5);
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
