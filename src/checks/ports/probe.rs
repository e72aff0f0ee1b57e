//! `[check.ports]`: which sockets listen on the target, from /proc/net
//! (tcp, tcp6, udp, udp6) read through the target's executor, against an
//! expected set or an allow-list.

use serde::Deserialize;

use super::judge;
use crate::check::ProbeContext;
use crate::check::Verdict;
use crate::os::CommandSpec;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Ports that must be listening.
    #[serde(default)]
    pub listening: Vec<u16>,
    /// Ports that must not be listening.
    #[serde(default)]
    pub not_listening: Vec<u16>,
    /// When set, no other port may listen (the allow-list).
    #[serde(default)]
    pub allowed: Option<Vec<u16>>,
    /// Count sockets bound only to loopback for `allowed` (default false).
    #[serde(default)]
    pub include_loopback: bool,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Verdict {
    // Read through the executor, so the sockets judged are the target's
    // (this host, or a VM over ssh), not wherever the validator runs.
    let tables = match spec.protocol {
        Protocol::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
        Protocol::Udp => ["/proc/net/udp", "/proc/net/udp6"],
    };
    let command = CommandSpec::new("cat", &tables);
    let expected = format!(
        "listening sockets can be read ({} on {})",
        command.display(),
        ctx.executor.describe()
    );
    match ctx.executor.run(&command, ctx.deadline).await {
        // `cat` exits 1 when the IPv6 table is absent (IPv6 disabled) but
        // still prints the IPv4 one.
        Ok(output) if !output.stdout.is_empty() => {
            let sockets =
                judge::parse_proc_net(&output.stdout_text(), spec.protocol == Protocol::Tcp);
            judge::judge(spec, &sockets)
        }
        Ok(output) => Verdict::probe_error(
            expected,
            format!(
                "cannot read /proc/net (is /proc mounted?): {}",
                crate::check::excerpt(output.stderr_text().trim(), 300)
            ),
        ),
        Err(e) => Verdict::probe_error(expected, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sees_a_real_listener_and_its_absence() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ctx = ProbeContext::for_tests(5);
        let spec = |t: &str| toml::from_str::<Spec>(t).unwrap();
        assert!(
            probe(&spec(&format!("listening = [{port}]")), &ctx)
                .await
                .pass
        );
        let v = probe(&spec(&format!("not_listening = [{port}]")), &ctx).await;
        assert!(!v.pass && v.found.contains(&port.to_string()), "{v:?}");
        // Loopback listeners count against the allow-list only when asked.
        let v = probe(&spec("allowed = []\ninclude_loopback = true"), &ctx).await;
        assert!(!v.pass && v.found.contains(&format!("{port}")), "{v:?}");
        drop(listener);
        let v = probe(&spec(&format!("listening = [{port}]")), &ctx).await;
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
        assert!(probe(&spec("allowed = [22, 3002]"), &ctx).await.pass);
        let v = probe(&spec("allowed = [22]"), &ctx).await;
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
        let v = probe(&spec("listening = [22]"), &ctx).await;
        assert!(!v.pass && v.found.contains("No such file"), "{v:?}");
    }
}
