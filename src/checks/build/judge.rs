//! Judges an image build: exit 0, within the time budget, and (when asked)
//! the same artifact digest from two builds.

use super::spec::Spec;
use crate::check::{all_of, Verdict};

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
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let budget = spec.max_duration.0.as_secs_f64();
    let mut evidence = String::new();
    let mut parts = Vec::new();
    for (i, run) in facts.runs.iter().enumerate() {
        let which = if i == 0 { "build" } else { "second build" };
        evidence.push_str(&format!(
            "$ {} ({}) [{which}]\nexit code: {}, {:.1}s\nstdout (tail):\n{}\nstderr (tail):\n{}\n",
            facts.command,
            facts.place,
            run.exit_code.map_or("none".to_string(), |c| c.to_string()),
            run.seconds,
            tail(&run.stdout, 1500),
            tail(&run.stderr, 2500),
        ));
        let expected = format!("{which} exits 0 within {budget:.0}s");
        parts.push(match (&run.error, run.exit_code) {
            (Some(e), _) => Verdict::fail(expected, format!("{which}: {e}")),
            (None, Some(0)) if run.seconds <= budget => Verdict::pass(
                expected,
                format!("{which} exit code 0 in {:.1}s", run.seconds),
            ),
            (None, Some(0)) => Verdict::fail(
                expected,
                format!(
                    "{which} took {:.1}s, over the {budget:.0}s budget",
                    run.seconds
                ),
            ),
            (None, Some(code)) => Verdict::fail(expected, format!("{which} exit code {code}")),
            (None, None) => Verdict::fail(expected, format!("{which} killed by a signal")),
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
        let expected = "both builds give the same digest";
        match facts.digests.as_slice() {
            [Ok(a), Ok(b)] if a == b => parts.push(Verdict::pass(expected, format!("both {a}"))),
            [Ok(a), Ok(b)] => parts.push(Verdict::fail(expected, format!("{a} then {b}"))),
            [_, _] => {}
            _ if facts.artifact.is_none() => parts.push(Verdict::fail(
                expected,
                "no `artifact` to compare: set artifact = \"<path the build writes>\"",
            )),
            _ => parts.push(Verdict::fail(expected, "the second build did not run")),
        }
    }
    let mut verdict = all_of(parts).with_evidence(evidence.trim_end().to_string());
    if let Some(first) = facts.runs.first() {
        verdict = verdict.with_metric("build_seconds", first.seconds);
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
            "sha256:a then sha256:b",
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
}
