//! The Prometheus text exposition (format 0.0.4) of what `serve` knows: the
//! latest run's checks (status and duration per check, labelled by id and
//! phase), the overall status and time of that run, and the runs so far by
//! outcome. Pure: `LastRun::from_transcript` reads a transcript's JSON,
//! `render` writes the text.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

/// The statuses a check can have, in the transcript's spelling.
pub const CHECK_STATUSES: [&str; 5] = ["PASS", "WARN", "FAIL", "SKIP", "ABORTED"];
/// The overall statuses of a run.
pub const RUN_STATUSES: [&str; 4] = ["SUCCESS", "WARNING", "FAILURE", "ABORTED"];
/// How a run the server started can end: its overall status in lower case,
/// or `error` when no transcript came of it (bad input, artifacts not
/// written).
pub const RUN_OUTCOMES: [&str; 5] = ["success", "warning", "failure", "aborted", "error"];

/// One check of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSample {
    pub id: String,
    pub phase: String,
    pub status: String,
    pub duration_ms: u64,
}

/// What a signed transcript says about its run.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub overall: String,
    pub completion_time: String,
    /// Seconds since the Unix epoch when the run completed.
    pub completed_unix: f64,
    pub duration_seconds: f64,
    pub checks: Vec<CheckSample>,
}

impl LastRun {
    /// Reads the fields the metrics use; names the first one missing.
    pub fn from_transcript(doc: &Value) -> Result<LastRun, String> {
        let text = |v: &Value, key: &str, at: &str| -> Result<String, String> {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{at} has no `{key}` text"))
        };
        let results = doc
            .get("validation_results")
            .and_then(Value::as_array)
            .ok_or("the transcript has no `validation_results` list")?;
        let mut checks = Vec::with_capacity(results.len());
        for (n, r) in results.iter().enumerate() {
            let at = format!("validation_results[{n}]");
            checks.push(CheckSample {
                id: text(r, "id", &at)?,
                phase: text(r, "phase", &at)?,
                status: text(r, "status", &at)?,
                duration_ms: r
                    .get("duration_ms")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("{at} has no `duration_ms` number"))?,
            });
        }
        let completion_time = text(doc, "completion_time", "the transcript")?;
        let completed_unix = chrono::DateTime::parse_from_rfc3339(&completion_time)
            .map_err(|e| format!("the transcript's `completion_time` `{completion_time}`: {e}"))?
            .timestamp_millis() as f64
            / 1000.0;
        Ok(LastRun {
            overall: text(doc, "overall_status", "the transcript")?,
            completion_time,
            completed_unix,
            duration_seconds: doc
                .get("duration_seconds")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            checks,
        })
    }

    /// Whether the run counts as healthy: SUCCESS or WARNING.
    pub fn healthy(&self) -> bool {
        matches!(self.overall.as_str(), "SUCCESS" | "WARNING")
    }

    /// How many checks have each status (every status named, zeros too).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts: BTreeMap<&'static str, u64> =
            CHECK_STATUSES.iter().map(|s| (*s, 0)).collect();
        for c in &self.checks {
            if let Some(n) = CHECK_STATUSES
                .iter()
                .find(|s| **s == c.status)
                .and_then(|s| counts.get_mut(s))
            {
                *n += 1;
            }
        }
        counts
    }

    /// The ids of the checks that neither passed nor warned.
    pub fn failing(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !matches!(c.status.as_str(), "PASS" | "WARN"))
            .map(|c| c.id.as_str())
            .collect()
    }
}

/// Everything the exposition shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The latest run with a transcript, if any.
    pub last: Option<LastRun>,
    /// Runs finished so far, by outcome (`RUN_OUTCOMES`).
    pub runs: BTreeMap<String, u64>,
    pub in_flight: bool,
    /// Whether the latest result is no older than the maximum age.
    pub fresh: bool,
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A HELP text: `\` and newlines escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others as Rust prints them.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (n, (k, val)) in labels.iter().enumerate() {
                if n > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", value(v));
    }
}

/// The exposition of `s`, families in a fixed order, each with HELP and TYPE.
pub fn render(s: &Snapshot) -> String {
    let mut out = Out(String::new());
    let flag = |b: bool| if b { 1.0 } else { 0.0 };

    out.family(
        "spinup_smoke_runs_total",
        "counter",
        "Runs this server finished, by outcome (the overall status; error: no transcript was written).",
    );
    for outcome in RUN_OUTCOMES {
        let n = s.runs.get(outcome).copied().unwrap_or(0);
        out.sample("spinup_smoke_runs_total", &[("outcome", outcome)], n as f64);
    }
    out.family(
        "spinup_smoke_run_in_flight",
        "gauge",
        "1 while a run is in flight.",
    );
    out.sample("spinup_smoke_run_in_flight", &[], flag(s.in_flight));
    out.family(
        "spinup_smoke_result_fresh",
        "gauge",
        "1 when the latest result is no older than the maximum age.",
    );
    out.sample("spinup_smoke_result_fresh", &[], flag(s.fresh));

    let Some(last) = &s.last else {
        return out.0;
    };
    out.family(
        "spinup_smoke_last_run_timestamp_seconds",
        "gauge",
        "When the latest run completed, in seconds since the Unix epoch.",
    );
    out.sample(
        "spinup_smoke_last_run_timestamp_seconds",
        &[],
        last.completed_unix,
    );
    out.family(
        "spinup_smoke_last_run_duration_seconds",
        "gauge",
        "How long the latest run took.",
    );
    out.sample(
        "spinup_smoke_last_run_duration_seconds",
        &[],
        last.duration_seconds,
    );
    out.family(
        "spinup_smoke_last_run_status",
        "gauge",
        "The latest run's overall status: 1 for the status it has, 0 for the others.",
    );
    for status in RUN_STATUSES {
        out.sample(
            "spinup_smoke_last_run_status",
            &[("status", status)],
            flag(last.overall == status),
        );
    }
    out.family(
        "spinup_smoke_check_status",
        "gauge",
        "Each check's status in the latest run: 1 for the status it has, 0 for the others.",
    );
    for c in &last.checks {
        for status in CHECK_STATUSES {
            out.sample(
                "spinup_smoke_check_status",
                &[("id", &c.id), ("phase", &c.phase), ("status", status)],
                flag(c.status == status),
            );
        }
    }
    out.family(
        "spinup_smoke_check_duration_seconds",
        "gauge",
        "How long each check took in the latest run, its retries included.",
    );
    for c in &last.checks {
        out.sample(
            "spinup_smoke_check_duration_seconds",
            &[("id", &c.id), ("phase", &c.phase)],
            c.duration_ms as f64 / 1000.0,
        );
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_run() -> LastRun {
        LastRun {
            overall: "FAILURE".into(),
            completion_time: "2026-01-02T03:04:05Z".into(),
            completed_unix: 1_767_323_045.0,
            duration_seconds: 1.5,
            checks: vec![
                CheckSample {
                    id: "svc.port".into(),
                    phase: "services".into(),
                    status: "PASS".into(),
                    duration_ms: 12,
                },
                CheckSample {
                    id: "odd\"id\\with\nnewline".into(),
                    phase: "host".into(),
                    status: "FAIL".into(),
                    duration_ms: 2500,
                },
            ],
        }
    }

    #[test]
    fn label_values_are_escaped() {
        for (raw, want) in [
            ("plain", "plain"),
            ("a\"b", "a\\\"b"),
            ("a\\b", "a\\\\b"),
            ("a\nb", "a\\nb"),
            ("\\\"\n", "\\\\\\\"\\n"),
            ("ünï", "ünï"),
        ] {
            assert_eq!(escape_label(raw), want, "{raw:?}");
        }
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn values_are_written_as_the_format_wants() {
        for (v, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (2.5, "2.5"),
            (1_767_323_045.0, "1767323045"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(value(v), want, "{v}");
        }
    }

    #[test]
    fn the_exposition_holds_every_family_with_help_and_type() {
        let mut runs = BTreeMap::new();
        runs.insert("success".to_string(), 3);
        runs.insert("failure".to_string(), 1);
        let text = render(&Snapshot {
            last: Some(sample_run()),
            runs,
            in_flight: true,
            fresh: false,
        });
        for line in [
            "# TYPE spinup_smoke_runs_total counter",
            "spinup_smoke_runs_total{outcome=\"success\"} 3",
            "spinup_smoke_runs_total{outcome=\"failure\"} 1",
            "spinup_smoke_runs_total{outcome=\"error\"} 0",
            "spinup_smoke_run_in_flight 1",
            "spinup_smoke_result_fresh 0",
            "spinup_smoke_last_run_timestamp_seconds 1767323045",
            "spinup_smoke_last_run_duration_seconds 1.5",
            "spinup_smoke_last_run_status{status=\"FAILURE\"} 1",
            "spinup_smoke_last_run_status{status=\"SUCCESS\"} 0",
            "spinup_smoke_check_status{id=\"svc.port\",phase=\"services\",status=\"PASS\"} 1",
            "spinup_smoke_check_status{id=\"svc.port\",phase=\"services\",status=\"FAIL\"} 0",
            "spinup_smoke_check_status{id=\"odd\\\"id\\\\with\\nnewline\",phase=\"host\",status=\"FAIL\"} 1",
            "spinup_smoke_check_duration_seconds{id=\"svc.port\",phase=\"services\"} 0.012",
            "spinup_smoke_check_duration_seconds{id=\"odd\\\"id\\\\with\\nnewline\",phase=\"host\"} 2.5",
        ] {
            assert!(text.lines().any(|l| l == line), "no line `{line}` in:\n{text}");
        }
        // Every family is introduced once, HELP before TYPE before samples.
        let mut seen = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!seen.contains(&name.to_string()), "{name} twice");
                seen.push(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert_eq!(rest.split(' ').next(), seen.last().map(String::as_str));
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(Some(name), seen.last().map(String::as_str), "{line}");
            }
        }
        assert_eq!(seen.len(), 8, "{seen:?}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn before_the_first_run_only_the_counters_show() {
        let text = render(&Snapshot::default());
        assert!(text.contains("spinup_smoke_runs_total{outcome=\"success\"} 0"));
        assert!(text.contains("spinup_smoke_run_in_flight 0"));
        assert!(!text.contains("spinup_smoke_check_status"), "{text}");
        assert!(!text.contains("last_run"), "{text}");
    }

    #[test]
    fn a_transcript_is_read_and_its_missing_fields_named() {
        let doc = json!({
            "overall_status": "WARNING",
            "completion_time": "2026-01-02T03:04:05.500Z",
            "duration_seconds": 0.25,
            "validation_results": [
                {"id": "a", "phase": "services", "status": "WARN", "duration_ms": 7},
                {"id": "b", "phase": "host", "status": "SKIP", "duration_ms": 0},
            ],
        });
        let run = LastRun::from_transcript(&doc).unwrap();
        assert_eq!(run.overall, "WARNING");
        assert!(run.healthy());
        assert_eq!(run.completed_unix, 1_767_323_045.5);
        assert_eq!(run.failing(), ["b"]);
        let counts = run.counts();
        assert_eq!((counts["WARN"], counts["SKIP"], counts["PASS"]), (1, 1, 0));

        for (doc, needle) in [
            (json!({}), "no `validation_results` list"),
            (
                json!({"validation_results": [{"id": "a"}]}),
                "validation_results[0] has no `phase`",
            ),
            (
                json!({"validation_results": [], "completion_time": "yesterday"}),
                "`completion_time` `yesterday`",
            ),
            (
                json!({"validation_results": [], "completion_time": "2026-01-02T03:04:05Z"}),
                "no `overall_status`",
            ),
        ] {
            let e = LastRun::from_transcript(&doc).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn only_success_and_warning_are_healthy() {
        for (overall, healthy) in [
            ("SUCCESS", true),
            ("WARNING", true),
            ("FAILURE", false),
            ("ABORTED", false),
        ] {
            let run = LastRun {
                overall: overall.into(),
                ..sample_run()
            };
            assert_eq!(run.healthy(), healthy, "{overall}");
        }
    }
}
