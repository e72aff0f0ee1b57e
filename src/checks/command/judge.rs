//! Judges a finished (or failed) command.

use super::spec::Spec;
use crate::check::{all_of, excerpt, Verdict};
use crate::text::marked_tail as tail;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub command: String,
    /// Where it ran ("local", "ssh root@host").
    pub place: String,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// It could not run or did not finish.
    pub error: Option<String>,
    pub duration_ms: f64,
}


pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let evidence = format!(
        "$ {} ({})\nexit code: {}\nstdout:\n{}\nstderr:\n{}",
        facts.command,
        facts.place,
        facts
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into()),
        tail(&facts.stdout, 3000),
        tail(&facts.stderr, 2000)
    );
    if let Some(error) = &facts.error {
        return Verdict::fail(
            format!("`{}` runs and exits {}", facts.command, spec.exit_code),
            error.clone(),
        )
        .with_evidence(evidence);
    }
    let mut parts = Vec::new();
    let code = facts.exit_code;
    let expected = format!("exit code {}", spec.exit_code);
    parts.push(if code == Some(spec.exit_code) {
        Verdict::pass(expected.clone(), expected)
    } else {
        let found = match code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".into(),
        };
        let stderr = facts.stderr.trim();
        let found = if stderr.is_empty() {
            found
        } else {
            format!(
                "{found} (stderr: {})",
                excerpt(stderr.lines().last().unwrap_or(""), 200)
            )
        };
        Verdict::fail(expected, found)
    });
    for needle in &spec.stdout_contains {
        parts.push(contains("stdout", &facts.stdout, needle, true));
    }
    for needle in &spec.stdout_not_contains {
        parts.push(contains("stdout", &facts.stdout, needle, false));
    }
    for needle in &spec.stderr_contains {
        parts.push(contains("stderr", &facts.stderr, needle, true));
    }
    if let Some(want) = &spec.stdout_equals {
        let e = format!("stdout equals {want:?}");
        parts.push(if &facts.stdout == want {
            Verdict::pass(e.clone(), e)
        } else {
            Verdict::fail(e, format!("stdout is {:?}", excerpt(&facts.stdout, 200)))
        });
    }
    all_of(parts)
        .with_evidence(evidence)
        .with_metric("duration_ms", facts.duration_ms)
}

fn contains(stream: &str, text: &str, needle: &str, want: bool) -> Verdict {
    let has = text.contains(needle);
    let expected = if want {
        format!("{stream} contains {needle:?}")
    } else {
        format!("{stream} does not contain {needle:?}")
    };
    let found = if has {
        format!("{stream} contains {needle:?}")
    } else {
        format!("{stream} lacks {needle:?}")
    };
    if has == want {
        Verdict::pass(expected, found)
    } else {
        Verdict::fail(expected, found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        toml::from_str(text).unwrap()
    }

    fn facts(code: i32, stdout: &str) -> Facts {
        Facts {
            command: "x".into(),
            place: "local".into(),
            exit_code: Some(code),
            stdout: stdout.into(),
            ..Facts::default()
        }
    }

    fn check(spec_text: &str, facts: Facts, pass: bool, found_needle: &str) {
        let v = judge(&spec(spec_text), &facts);
        assert_eq!(v.pass, pass, "{spec_text}: {v:?}");
        assert!(
            v.found.contains(found_needle),
            "{spec_text}: found {:?}",
            v.found
        );
    }

    #[test]
    fn cases() {
        check("run = [\"x\"]", facts(0, ""), true, "exit code 0");
        check("run = [\"x\"]", facts(1, ""), false, "exit code 1");
        check(
            "run = [\"x\"]\nexit_code = 1",
            facts(1, ""),
            true,
            "exit code 1",
        );
        check(
            "run = [\"x\"]\nstdout_contains = [\"no\"]",
            facts(0, "yes"),
            false,
            "stdout lacks \"no\"",
        );
        check(
            "run = [\"x\"]\nstdout_not_contains = [\"yes\"]",
            facts(0, "yes"),
            false,
            "stdout contains \"yes\"",
        );
        check(
            "run = [\"x\"]\nstdout_equals = \"42\\n\"",
            facts(0, "42\n"),
            true,
            "",
        );
        check(
            "run = [\"x\"]\nstdout_equals = \"42\\n\"",
            facts(0, "41\n"),
            false,
            "stdout is",
        );
        let mut killed = facts(0, "");
        killed.exit_code = None;
        check("run = [\"x\"]", killed, false, "killed by a signal");
        let mut err = facts(0, "");
        err.error = Some("timed out after 1.0s".into());
        check("run = [\"x\"]", err, false, "timed out");
    }
}
