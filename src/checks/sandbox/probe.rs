//! Boots the sandbox VMs (owned by this probe, never registered), reads the
//! limits and runs the job in the guest over ssh, tests isolation, tears
//! the VMs down and looks for what they left: QEMU processes by name and
//! tap devices that appeared during the cycle.

use std::time::Instant;

use super::judge::{Facts, GuestLimits, Isolation, JobRun};
use super::spec::Spec;
use crate::check::ProbeContext;
use crate::os::CommandExecutor;
use crate::os::CommandSpec;
use crate::vm::{self, RunningVm, VmConfig};

/// Numbers sandbox cycles so concurrent cycles never share a VM name.
static SANDBOX_CYCLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs one sandbox cycle (two sandboxes for `isolation`) and records what
/// each step found; the error is a table without a job.
pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Facts, String> {
    spec.validate()?;
    let cycle_started = Instant::now();
    let taps_before = tap_devices();
    let cycle = SANDBOX_CYCLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let names: Vec<String> = if spec.isolation {
        vec![format!("sandbox{cycle}-a"), format!("sandbox{cycle}-b")]
    } else {
        vec![format!("sandbox{cycle}")]
    };
    let configs: Vec<VmConfig> = names.iter().map(|n| spec.config(n, ctx)).collect();
    let boots = futures_join_all(configs.iter().map(|c| vm::boot(c, ctx.deadline))).await;

    let mut facts = Facts {
        memory_bytes: spec.memory.0,
        cpus: spec.cpus,
        ..Facts::default()
    };
    let mut running: Vec<RunningVm> = Vec::new();
    for boot in boots {
        match boot {
            Ok(vm) => {
                facts.accel = Some(vm.accel.to_string());
                facts.boot_to_ssh_seconds.push(vm.boot_to_ssh.as_secs_f64());
                facts
                    .console_logs
                    .push(vm.console_log.display().to_string());
                running.push(vm);
            }
            Err(failure) => {
                let mut text = format!(
                    "{}\nconsole tail:\n{}",
                    failure.reason, failure.console_tail
                );
                if !failure.qemu_log.trim().is_empty() {
                    text.push_str(&format!("\nqemu said:\n{}", failure.qemu_log.trim()));
                }
                facts.boot_failures.push(text);
            }
        }
    }
    if facts.boot_failures.is_empty() {
        if let Some(first) = running.first() {
            let ssh = first.executor();
            facts.limits = Some(guest_limits(&ssh, ctx.deadline).await);
            facts.job = Some(run_job(spec, &ssh, ctx.deadline).await);
        }
        if let [a, b] = running.as_slice() {
            facts.isolation = Some(isolation(a, b, ctx.deadline).await);
        }
    }
    for vm in &running {
        let report = vm.teardown().await;
        facts
            .leftover_qemu
            .extend(vm::machine::qemu_processes_named(&vm::machine::qemu_name(
                &vm.name,
            )));
        facts.teardowns.push(report);
    }
    drop(running);
    let taps_after = tap_devices();
    facts.new_taps = taps_after
        .into_iter()
        .filter(|t| !taps_before.contains(t))
        .collect();
    facts.cycle_seconds = cycle_started.elapsed().as_secs_f64();
    Ok(facts)
}

/// Awaits every future concurrently (a tiny join_all without a new crate).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, fut) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => results[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

async fn guest_limits(ssh: &dyn CommandExecutor, deadline: Instant) -> GuestLimits {
    let cmd = CommandSpec::new("sh", &["-c", "grep '^MemTotal:' /proc/meminfo; nproc"]);
    match ssh.run(&cmd, deadline).await {
        Ok(out) if out.exit_code == Some(0) => {
            let text = out.stdout_text();
            let mem_total_kib = text
                .lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok());
            let nproc = text.lines().last().and_then(|l| l.trim().parse().ok());
            GuestLimits {
                mem_total_kib,
                nproc,
                raw: text,
                error: None,
            }
        }
        Ok(out) => GuestLimits {
            error: Some(format!(
                "reading limits exited {:?}: {}",
                out.exit_code,
                out.stderr_text().trim()
            )),
            ..GuestLimits::default()
        },
        Err(e) => GuestLimits {
            error: Some(format!("reading limits: {e}")),
            ..GuestLimits::default()
        },
    }
}

async fn run_job(spec: &Spec, ssh: &dyn CommandExecutor, deadline: Instant) -> JobRun {
    let cmd = CommandSpec {
        program: spec.job[0].clone(),
        args: spec.job[1..].to_vec(),
        ..CommandSpec::default()
    };
    let started = Instant::now();
    match ssh.run(&cmd, deadline).await {
        Ok(out) => JobRun {
            command: cmd.display(),
            exit_code: out.exit_code,
            stdout: out.stdout_text(),
            stderr: out.stderr_text(),
            seconds: started.elapsed().as_secs_f64(),
            error: None,
        },
        Err(e) => JobRun {
            command: cmd.display(),
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            seconds: started.elapsed().as_secs_f64(),
            error: Some(e.to_string()),
        },
    }
}

/// Each sandbox writes a marker with a random token; then each looks for
/// the other's marker file and token anywhere under /root and /tmp.
async fn isolation(a: &RunningVm, b: &RunningVm, deadline: Instant) -> Isolation {
    let token = |who: &str| format!("spinup-{who}-{:016x}", rand::random::<u64>());
    let (token_a, token_b) = (token("a"), token("b"));
    let write = |t: &str| {
        CommandSpec::new(
            "sh",
            &["-c", &format!("echo {t} > /root/spinup-marker-{t} && sync")],
        )
    };
    let look = |other: &str| {
        CommandSpec::new(
            "sh",
            &[
                "-c",
                &format!(
                    "ls /root/spinup-marker-* 2>/dev/null; grep -rl {other} /root /tmp 2>/dev/null; true"
                ),
            ],
        )
    };
    let (ssh_a, ssh_b) = (a.executor(), b.executor());
    let mut result = Isolation::default();
    for (ssh, t) in [(&ssh_a, &token_a), (&ssh_b, &token_b)] {
        match ssh.run(&write(t), deadline).await {
            Ok(out) if out.exit_code == Some(0) => {}
            Ok(out) => result.error = Some(format!("writing a marker: {}", out.stderr_text())),
            Err(e) => result.error = Some(format!("writing a marker: {e}")),
        }
    }
    let seen = |out: Result<crate::os::CommandOutput, crate::os::ExecError>| match out {
        Ok(o) => Ok(o.stdout_text()),
        Err(e) => Err(e.to_string()),
    };
    match (
        seen(ssh_a.run(&look(&token_b), deadline).await),
        seen(ssh_b.run(&look(&token_a), deadline).await),
    ) {
        (Ok(in_a), Ok(in_b)) => {
            result.own_marker_seen_by_a = in_a.contains(&token_a);
            result.own_marker_seen_by_b = in_b.contains(&token_b);
            result.a_sees_b = in_a.contains(&token_b);
            result.b_sees_a = in_b.contains(&token_a);
            result.listing_a = in_a;
            result.listing_b = in_b;
        }
        (Err(e), _) | (_, Err(e)) => result.error = Some(format!("looking for markers: {e}")),
    }
    result
}

/// tap/tun/vnet/macvtap network devices on this host.
fn tap_devices() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut taps: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("tap")
                || n.starts_with("tun")
                || n.starts_with("vnet")
                || n.starts_with("macvtap")
        })
        .collect();
    taps.sort();
    taps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::sandbox::run;

    #[tokio::test]
    async fn an_empty_job_or_missing_image_fails_without_booting() {
        let ctx = ProbeContext::for_tests(5);
        let s: Spec = toml::from_str("image = \"/i\"\nkernel = \"/k\"\njob = []").unwrap();
        assert!(run(&s, &ctx).await.found.contains("`job` is empty"));
        let s: Spec = toml::from_str(
            "image = \"/nonexistent/i.qcow2\"\nkernel = \"/k\"\njob = [\"true\"]\naccel = \"tcg\"",
        )
        .unwrap();
        let v = run(&s, &ctx).await;
        assert!(!v.pass);
        assert!(v.found.contains("did not boot"), "{v:?}");
        assert!(v.evidence.contains("/nonexistent/i.qcow2"), "{v:?}");
    }

    #[test]
    fn finds_processes_by_their_qemu_name() {
        // Unique per test process: other runs of this test may be live.
        let name = format!("spinup-smoke-probe-test-{}", std::process::id());
        use std::os::unix::process::CommandExt;
        // A shell blocked in its builtin `read` on a pipe we hold: one
        // process (nothing forked or exec'd), whose command line keeps the
        // QEMU-like `-name` argument.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read line", "-name", &name])
            .stdin(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        // Until the child has exec'd, its command line is still ours.
        let mut found = Vec::new();
        for _ in 0..200 {
            found = crate::vm::machine::qemu_processes_named(&name);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        crate::os::process::signal_group(child.id(), libc::SIGKILL);
        let _ = child.wait();
        assert_eq!(found, vec![child.id()]);
        assert!(crate::vm::machine::qemu_processes_named(&name).is_empty());
    }
}
