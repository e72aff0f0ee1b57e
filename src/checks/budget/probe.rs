//! Measures the quantity: from what the run recorded so far (phase times,
//! metrics), or from /proc/meminfo or a cgroup memory file; a quantity
//! that cannot be measured is a fact for the judge.

use super::judge;
use super::judge::Measured;
use super::spec::Spec;
use crate::check::ProbeContext;

pub async fn probe(spec: &Spec, ctx: &ProbeContext) -> Result<Measured, String> {
    if !spec.phases.is_empty() {
        if spec.phase.is_some() || spec.metric.is_some() || spec.host_memory || spec.memory_peak_file.is_some() {
            return Err(ONE_OF.into());
        }
        return phases_sum(&spec.phases, ctx);
    }
    match (spec.phase, &spec.metric, spec.host_memory, &spec.memory_peak_file) {
        (Some(phase), None, false, None) => match ctx.so_far.phase_ms(phase) {
            Some(ms) => Ok(Measured { what: format!("phase {phase}"), value: ms as f64 / 1000.0, unit: "s" }),
            None => Err(format!("phase {phase} has not run in this session (select it with --phase, or check the profiles)")),
        },
        (None, Some(metric), false, None) => match metric.split_once('/') {
            Some((check, name)) => match ctx.so_far.metric(check, name) {
                Some(v) => Ok(Measured { what: format!("{check} {name}"), value: v, unit: "" }),
                None => Err(format!("check `{check}` recorded no metric `{name}` in this run")),
            },
            None => Err(format!("metric `{metric}` must be written `check-id/metric-name`")),
        },
        (None, None, true, None) => std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| format!("cannot read /proc/meminfo: {e}"))
            .and_then(|t| judge::used_memory_kib(&t).ok_or_else(|| "no MemTotal/MemAvailable in /proc/meminfo".into()))
            .map(|kib| Measured { what: "host memory in use".into(), value: kib as f64 / 1024.0 / 1024.0, unit: " GiB" }),
        (None, None, false, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
            .and_then(|t| t.trim().parse::<u64>().map_err(|_| format!("{} holds no byte count", file.display())))
            .map(|bytes| Measured { what: format!("peak memory ({})", file.display()), value: bytes as f64 / (1u64 << 30) as f64, unit: " GiB" }),
        _ => Err(ONE_OF.into()),
    }
}

const ONE_OF: &str = "give exactly one of `phase`, `phases`, `metric`, `host_memory = true`, `memory_peak_file`";

/// The summed wall times of `phases`; each must have run.
fn phases_sum(phases: &[crate::check::Phase], ctx: &ProbeContext) -> Result<Measured, String> {
    let mut ms = 0;
    for phase in phases {
        ms += ctx.so_far.phase_ms(*phase).ok_or_else(|| {
            format!("phase {phase} has not run in this session (select it with --phase, or check the profiles)")
        })?;
    }
    let names: Vec<String> = phases.iter().map(|p| p.to_string()).collect();
    Ok(Measured { what: format!("phases {}", names.join(" + ")), value: ms as f64 / 1000.0, unit: "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Phase;
    use crate::checks::budget::run;

    fn spec(text: &str) -> Spec {
        toml::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn reads_phase_times_metrics_and_memory() {
        let ctx = ProbeContext::for_tests(5);
        ctx.so_far.record_phase(Phase::Services, 2500);
        ctx.so_far.record_metrics(
            "boot.vm",
            &[("boot_to_ssh_seconds".to_string(), 22.0)].into(),
        );
        assert!(
            run(&spec("phase = \"services\"\nmax = 300"), &ctx)
                .await
                .pass
        );
        let v = run(&spec("phase = \"services\"\nmax = 1"), &ctx).await;
        assert!(!v.pass && v.found.contains("2.5"), "{v:?}");
        assert!(
            run(
                &spec("metric = \"boot.vm/boot_to_ssh_seconds\"\nmax = 600"),
                &ctx
            )
            .await
            .pass
        );
        let v = run(&spec("metric = \"boot.vm/nope\"\nmax = 1"), &ctx).await;
        assert!(!v.pass && v.found.contains("no metric `nope`"), "{v:?}");
        let v = run(&spec("phase = \"boot\"\nmax = 1"), &ctx).await;
        assert!(!v.pass && v.found.contains("has not run"), "{v:?}");
        assert!(
            run(&spec("host_memory = true\nmax = 100000"), &ctx)
                .await
                .pass
        );
        let v = run(&spec("host_memory = true\nmax = 0.000001"), &ctx).await;
        assert!(!v.pass, "{v:?}");
        let v = run(&spec("max = 1"), &ctx).await;
        assert!(!v.pass && v.found.contains("exactly one"), "{v:?}");

        ctx.so_far.record_phase(Phase::Boot, 4000);
        let v = run(&spec("phases = [\"boot\", \"services\"]\nmax = 600"), &ctx).await;
        assert!(v.pass && v.found == "phases boot + services = 6.50s", "{v:?}");
        let v = run(&spec("phases = [\"boot\", \"services\"]\nmax = 6"), &ctx).await;
        assert!(!v.pass && v.found == "phases boot + services = 6.50s", "{v:?}");
        let v = run(&spec("phases = [\"boot\", \"sandbox\"]\nmax = 600"), &ctx).await;
        assert!(!v.pass && v.found.contains("phase sandbox has not run"), "{v:?}");
        let v = run(&spec("phases = [\"boot\"]\nphase = \"boot\"\nmax = 600"), &ctx).await;
        assert!(!v.pass && v.found.contains("exactly one"), "{v:?}");
    }
}
