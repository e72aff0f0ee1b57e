//! Judges an image build: exit 0, within the time budget, and (when asked)
//! the same artifact digest from two builds.

use super::spec::Spec;
use crate::check::{all_of, Verdict};
use crate::text::tail;

/// One run of the build command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildRun {
    pub exit_code: Option<i32>,
    pub seconds: f64,
    pub stdout: String,
    pub stderr: String,
    /// Could not start, or killed at the deadline.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub command: String,
    pub place: String,
    /// The first build, and the second one for `reproducible`.
    pub runs: Vec<BuildRun>,
    pub artifact: Option<String>,
    /// Artifact digest after each run.
    pub digests: Vec<Result<String, String>>,
    /// For `reproducible` with `scratch_env`: the empty directory each run
    /// got as its cache.
    pub scratch_dirs: Vec<String>,
}


/// What a build command said about itself in `key=value` lines of its
/// stdout (the last of each key counts): `cached=true` when it served the
/// artifact from a cache, and the real build's `build_started`,
/// `build_finished` and `build_seconds` (scripts/build-guest-image.sh prints
/// them; a command that prints none is measured by its own run).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildReport {
    pub cached: Option<bool>,
    pub build_started: Option<String>,
    pub build_finished: Option<String>,
    pub build_seconds: Option<f64>,
}

impl BuildReport {
    pub fn parse(stdout: &str) -> BuildReport {
        let mut report = BuildReport::default();
        for line in stdout.lines() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key {
                "cached" => report.cached = Some(value == "true"),
                "build_started" => report.build_started = Some(value.to_string()),
                "build_finished" => report.build_finished = Some(value.to_string()),
                "build_seconds" => report.build_seconds = value.parse().ok(),
                _ => {}
            }
        }
        report
    }

    fn came_from_cache(&self) -> bool {
        self.cached == Some(true)
    }
}

/// The time judged against the budget: the run's own, or for a cached
/// artifact the recorded time of the real build (`None`: not recorded).
fn judged_seconds(run: &BuildRun, report: &BuildReport) -> Option<f64> {
    if report.came_from_cache() {
        report.build_seconds
    } else {
        Some(run.seconds)
    }
}

/// "cached, built at <time> (...)" for a cached artifact.
fn cached_line(report: &BuildReport) -> String {
    let at = report
        .build_finished
        .as_deref()
        .unwrap_or("an unrecorded time");
    match (report.build_seconds, &report.build_started) {
        (Some(s), Some(started)) => {
            format!("cached, built at {at} (the build ran {s:.0}s from {started})")
        }
        (Some(s), None) => format!("cached, built at {at} (the build took {s:.0}s)"),
        (None, _) => format!("cached, built at {at} (the build's time was not recorded)"),
    }
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let budget = spec.max_duration.0.as_secs_f64();
    let mut evidence = String::new();
    let mut parts = Vec::new();
    let reports: Vec<BuildReport> = facts
        .runs
        .iter()
        .map(|r| BuildReport::parse(&r.stdout))
        .collect();
    for (i, (run, report)) in facts.runs.iter().zip(&reports).enumerate() {
        let which = if i == 0 { "build" } else { "second build" };
        if let Some(dir) = facts.scratch_dirs.get(i) {
            evidence.push_str(&format!(
                "{which} from scratch: {} = {dir} (new, empty; removed after)\n",
                spec.scratch_env.as_deref().unwrap_or("?")
            ));
        }
        evidence.push_str(&format!(
            "$ {} ({}) [{which}]\nexit code: {}, {:.1}s\n",
            facts.command,
            facts.place,
            run.exit_code.map_or("none".to_string(), |c| c.to_string()),
            run.seconds,
        ));
        if report.came_from_cache() {
            evidence.push_str(&format!(
                "{}; this run served it in {:.1}s\n",
                cached_line(report),
                run.seconds
            ));
        }
        evidence.push_str(&format!(
            "stdout (tail):\n{}\nstderr (tail):\n{}\n",
            tail(&run.stdout, 1500),
            tail(&run.stderr, 2500),
        ));
        let expected = format!("{which} exits 0 within {budget:.0}s");
        let ok = |found: String| Verdict::pass(&expected, found);
        parts.push(match (&run.error, run.exit_code) {
            (Some(e), _) => Verdict::fail(&expected, format!("{which}: {e}")),
            (None, Some(0)) => match judged_seconds(run, report) {
                None => Verdict::fail(
                    &expected,
                    format!("{which}: {}: its time cannot be judged; rebuild without the cache, or make the build command print build_seconds= for cached artifacts", cached_line(report)),
                ),
                Some(s) if s <= budget && report.came_from_cache() => ok(format!(
                    "{which} exit code 0, {}",
                    cached_line(report)
                )),
                Some(s) if s <= budget => ok(format!("{which} exit code 0 in {s:.1}s")),
                Some(_) if report.came_from_cache() => Verdict::fail(
                    &expected,
                    format!(
                        "{which}: {}, over the {budget:.0}s budget",
                        cached_line(report)
                    ),
                ),
                Some(s) => Verdict::fail(
                    &expected,
                    format!("{which} took {s:.1}s, over the {budget:.0}s budget"),
                ),
            },
            (None, Some(code)) => Verdict::fail(&expected, format!("{which} exit code {code}")),
            (None, None) => Verdict::fail(&expected, format!("{which} killed by a signal")),
        });
    }
    for (i, digest) in facts.digests.iter().enumerate() {
        match digest {
            Ok(d) => evidence.push_str(&format!("artifact digest after build {}: {d}\n", i + 1)),
            Err(e) => parts.push(Verdict::fail(
                format!(
                    "artifact {} exists after the build",
                    facts.artifact.as_deref().unwrap_or("?")
                ),
                e.clone(),
            )),
        }
    }
    if spec.reproducible {
        let expected = "two builds from scratch give the same digest";
        let cached: Vec<&str> = reports
            .iter()
            .zip(["build", "second build"])
            .filter(|(r, _)| r.came_from_cache())
            .map(|(_, which)| which)
            .collect();
        match facts.digests.as_slice() {
            _ if !cached.is_empty() => parts.push(Verdict::fail(
                expected,
                format!(
                    "the {} came from a cache (cached=true), not from scratch: set `scratch_env` to the variable naming the build's cache directory",
                    cached.join(" and the ")
                ),
            )),
            [Ok(a), Ok(b)] if a == b => parts.push(Verdict::pass(expected, format!("both {a}"))),
            [Ok(a), Ok(b)] => parts.push(Verdict::fail(
                expected,
                format!("not reproducible: {a} then {b}"),
            )),
            [_, _] => {}
            _ if facts.artifact.is_none() => parts.push(Verdict::fail(
                expected,
                "no `artifact` to compare: set artifact = \"<path the build writes>\"",
            )),
            _ => parts.push(Verdict::fail(expected, "the second build did not run")),
        }
    }
    let mut verdict = all_of(parts).with_evidence(evidence.trim_end().to_string());
    if let (Some(first), Some(report)) = (facts.runs.first(), reports.first()) {
        if let Some(s) = judged_seconds(first, report) {
            verdict = verdict.with_metric("build_seconds", s);
        }
        verdict = verdict
            .with_metric("build_command_seconds", first.seconds)
            .with_metric(
                "build_cached",
                if report.came_from_cache() { 1.0 } else { 0.0 },
            );
    }
    if let Some(second) = facts.runs.get(1) {
        verdict = verdict.with_metric("rebuild_seconds", second.seconds);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!(
            "command = [\"b\"]\nmax_duration = \"10s\"\n{extra}"
        ))
        .unwrap()
    }

    fn run(code: i32, seconds: f64) -> BuildRun {
        BuildRun {
            exit_code: Some(code),
            seconds,
            ..BuildRun::default()
        }
    }

    fn check(
        extra: &str,
        runs: Vec<BuildRun>,
        digests: Vec<Result<String, String>>,
        pass: bool,
        found_has: &str,
    ) {
        let facts = Facts {
            command: "b".into(),
            place: "local".into(),
            runs,
            artifact: if digests.is_empty() {
                None
            } else {
                Some("/out".into())
            },
            digests,
            scratch_dirs: vec![],
        };
        let v = judge(&spec(extra), &facts);
        assert_eq!(v.pass, pass, "{v:?}");
        assert!(v.found.contains(found_has), "`{found_has}` not in {v:?}");
    }

    #[test]
    fn exit_budget_and_reproducibility() {
        check("", vec![run(0, 2.0)], vec![], true, "exit code 0 in 2.0s");
        check("", vec![run(1, 2.0)], vec![], false, "exit code 1");
        check("", vec![run(0, 11.0)], vec![], false, "over the 10s budget");
        let same = || Ok("sha256:a".to_string());
        check(
            "reproducible = true",
            vec![run(0, 1.0), run(0, 1.0)],
            vec![same(), same()],
            true,
            "both sha256:a",
        );
        check(
            "reproducible = true",
            vec![run(0, 1.0), run(0, 1.0)],
            vec![same(), Ok("sha256:b".into())],
            false,
            "not reproducible: sha256:a then sha256:b",
        );
        check(
            "reproducible = true",
            vec![run(0, 1.0)],
            vec![],
            false,
            "no `artifact`",
        );
        check(
            "",
            vec![run(0, 1.0)],
            vec![Err("/out: not found".into())],
            false,
            "not found",
        );
    }

    fn cached_run(seconds: f64, recorded: Option<f64>) -> BuildRun {
        let mut stdout = "image=/c/guest.qcow2\ncached=true\n".to_string();
        if let Some(r) = recorded {
            stdout.push_str(&format!(
                "build_started=2026-12-01T10:00:00Z\nbuild_finished=2026-12-01T10:06:12Z\nbuild_seconds={r}\n"
            ));
        }
        BuildRun {
            stdout,
            ..run(0, seconds)
        }
    }

    #[test]
    fn a_cached_artifact_is_judged_by_the_real_build_time() {
        check(
            "",
            vec![cached_run(0.2, Some(8.0))],
            vec![],
            true,
            "cached, built at 2026-12-01T10:06:12Z (the build ran 8s from 2026-12-01T10:00:00Z)",
        );
        // Served in 0.2 s, but the build it serves took longer than the budget.
        check(
            "",
            vec![cached_run(0.2, Some(372.0))],
            vec![],
            false,
            "over the 10s budget",
        );
        check(
            "",
            vec![cached_run(0.2, None)],
            vec![],
            false,
            "its time cannot be judged",
        );
        let facts = Facts {
            command: "b".into(),
            place: "local".into(),
            runs: vec![cached_run(0.2, Some(8.0))],
            artifact: None,
            digests: vec![],
            scratch_dirs: vec![],
        };
        let v = judge(&spec(""), &facts);
        assert_eq!(v.metrics["build_seconds"], 8.0);
        assert_eq!(v.metrics["build_command_seconds"], 0.2);
        assert_eq!(v.metrics["build_cached"], 1.0);
        assert!(
            v.evidence.contains("cached, built at 2026-12-01T10:06:12Z")
                && v.evidence.contains("served it in 0.2s"),
            "{}",
            v.evidence
        );
    }

    #[test]
    fn a_reproducibility_check_refuses_cached_builds() {
        let same = || Ok("sha256:a".to_string());
        check(
            "reproducible = true",
            vec![run(0, 1.0), cached_run(0.1, Some(1.0))],
            vec![same(), same()],
            false,
            "the second build came from a cache (cached=true), not from scratch",
        );
    }

    #[test]
    fn build_reports_parse_the_last_value_of_each_key() {
        let r = BuildReport::parse("noise\ncached=false\nbuild_seconds=x\ncached=true\nbuild_seconds=12\n");
        assert_eq!(r.cached, Some(true));
        assert_eq!(r.build_seconds, Some(12.0));
        assert_eq!(BuildReport::parse("built in 5s"), BuildReport::default());
    }
}
