//! Two verified transcripts side by side: which checks newly fail, newly
//! pass, changed status otherwise, appeared, vanished or got slower, and
//! whether the newer run meets the chosen success criteria. Pure functions
//! over the transcripts' JSON; `cli::compare` reads, verifies and prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// One check as a transcript recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: String,
    pub status: String,
    pub duration_ms: u64,
}

/// What a comparison needs of one transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub session: String,
    pub overall: String,
    pub completion_time: String,
    pub checks: Vec<Row>,
}

impl Side {
    /// Reads the fields a comparison uses; names the first one missing.
    pub fn from_transcript(doc: &Value) -> Result<Side, String> {
        let text = |key: &str| -> Result<String, String> {
            doc.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("the transcript has no `{key}`"))
        };
        let results = doc
            .get("validation_results")
            .and_then(Value::as_array)
            .ok_or("the transcript has no `validation_results` list")?;
        let mut checks = Vec::with_capacity(results.len());
        for (n, r) in results.iter().enumerate() {
            let field = |key: &str| {
                r.get(key)
                    .ok_or_else(|| format!("validation_results[{n}] has no `{key}`"))
            };
            checks.push(Row {
                id: field("id")?.as_str().unwrap_or_default().to_string(),
                status: field("status")?.as_str().unwrap_or_default().to_string(),
                duration_ms: field("duration_ms")?.as_u64().unwrap_or(0),
            });
        }
        Ok(Side {
            session: text("test_session_id")?,
            overall: text("overall_status")?,
            completion_time: text("completion_time")?,
            checks,
        })
    }

    fn passed(&self) -> usize {
        self.checks.iter().filter(|c| passing(&c.status)).count()
    }
}

/// PASS and WARN count as passing; FAIL, SKIP and ABORTED do not.
pub(crate) fn passing(status: &str) -> bool {
    matches!(status, "PASS" | "WARN")
}

/// When a check counts as slower: its new duration is at least `factor`
/// times the old one and at least `min_ms` longer (so a 2 ms check taking
/// 5 ms is not news).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slower {
    pub factor: f64,
    pub min_ms: u64,
}

impl Default for Slower {
    fn default() -> Slower {
        Slower {
            factor: 1.5,
            min_ms: 100,
        }
    }
}

/// A check whose status changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub id: String,
    pub old: String,
    pub new: String,
}

/// A check that got slower.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slowdown {
    pub id: String,
    pub old_ms: u64,
    pub new_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub newly_failing: Vec<Change>,
    pub newly_passing: Vec<Change>,
    pub changed: Vec<Change>,
    pub appeared: Vec<Row>,
    pub vanished: Vec<Row>,
    pub slower: Vec<Slowdown>,
    pub unchanged: usize,
}

pub fn compare(old: &Side, new: &Side, slower: Slower) -> Comparison {
    let before: BTreeMap<&str, &Row> = old.checks.iter().map(|r| (r.id.as_str(), r)).collect();
    let after: BTreeMap<&str, &Row> = new.checks.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut out = Comparison {
        newly_failing: Vec::new(),
        newly_passing: Vec::new(),
        changed: Vec::new(),
        appeared: Vec::new(),
        vanished: Vec::new(),
        slower: Vec::new(),
        unchanged: 0,
    };
    for (id, now) in &after {
        let Some(was) = before.get(id) else {
            out.appeared.push((*now).clone());
            continue;
        };
        let change = Change {
            id: id.to_string(),
            old: was.status.clone(),
            new: now.status.clone(),
        };
        match (passing(&was.status), passing(&now.status)) {
            _ if was.status == now.status => out.unchanged += 1,
            (true, false) => out.newly_failing.push(change),
            (false, true) => out.newly_passing.push(change),
            _ => out.changed.push(change),
        }
        let (old_ms, new_ms) = (was.duration_ms, now.duration_ms);
        if passing(&now.status)
            && new_ms >= old_ms.saturating_add(slower.min_ms)
            && new_ms as f64 >= old_ms as f64 * slower.factor
        {
            out.slower.push(Slowdown {
                id: id.to_string(),
                old_ms,
                new_ms,
            });
        }
    }
    out.vanished = old
        .checks
        .iter()
        .filter(|r| !after.contains_key(r.id.as_str()))
        .cloned()
        .collect();
    out
}

/// What the newer run must achieve for `compare` to exit 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Criteria {
    /// Every check of the new run passed (WARN allowed) and it was not
    /// aborted.
    AllPass,
    /// At least this share of the new run's checks passed (0 to 1).
    Threshold(f64),
    /// No regression: nothing newly fails, no check that passed vanished,
    /// and the new run passes at least as many checks as the old.
    Improvement,
}

impl std::str::FromStr for Criteria {
    type Err = String;

    fn from_str(s: &str) -> Result<Criteria, String> {
        match s {
            "all-pass" => Ok(Criteria::AllPass),
            "improvement" => Ok(Criteria::Improvement),
            _ => match s.strip_prefix("threshold=") {
                Some(share) => match share.parse::<f64>() {
                    Ok(x) if (0.0..=1.0).contains(&x) => Ok(Criteria::Threshold(x)),
                    _ => Err(format!(
                        "`{s}`: the threshold is a share between 0 and 1, such as threshold=0.95"
                    )),
                },
                None => Err(format!(
                    "unknown criteria `{s}`: use all-pass, threshold=<0..1> or improvement"
                )),
            },
        }
    }
}

/// Whether `new` meets `criteria`, and why in one line.
pub fn judge(criteria: Criteria, old: &Side, new: &Side, cmp: &Comparison) -> (bool, String) {
    let total = new.checks.len();
    let passed = new.passed();
    match criteria {
        Criteria::AllPass => {
            let failing = total - passed;
            if failing == 0 && new.overall != "ABORTED" && total > 0 {
                (true, format!("all-pass: all {total} checks passed"))
            } else if total == 0 {
                (false, "all-pass: the new run holds no check".into())
            } else if failing == 0 {
                (false, "all-pass: the new run was ABORTED".into())
            } else {
                (
                    false,
                    format!("all-pass: {failing} of {total} checks did not pass"),
                )
            }
        }
        Criteria::Threshold(share) => {
            let got = if total == 0 {
                0.0
            } else {
                passed as f64 / total as f64
            };
            (
                total > 0 && got >= share,
                format!(
                    "threshold={share}: {passed} of {total} passed ({:.1} %, {} {:.1} %)",
                    got * 100.0,
                    if got >= share { "at least" } else { "below" },
                    share * 100.0
                ),
            )
        }
        Criteria::Improvement => {
            let lost: Vec<&str> = cmp
                .vanished
                .iter()
                .filter(|r| passing(&r.status))
                .map(|r| r.id.as_str())
                .collect();
            let mut why = Vec::new();
            if !cmp.newly_failing.is_empty() {
                why.push(format!("{} newly failing", cmp.newly_failing.len()));
            }
            if !lost.is_empty() {
                why.push(format!("{} passing check(s) vanished", lost.len()));
            }
            if passed < old.passed() {
                why.push(format!("{passed} passed, {} before", old.passed()));
            }
            if why.is_empty() {
                (
                    true,
                    format!(
                        "improvement: no regression ({passed} passed, {} before)",
                        old.passed()
                    ),
                )
            } else {
                (false, format!("improvement: {}", why.join(", ")))
            }
        }
    }
}

/// The human report.
pub fn render(old: &Side, new: &Side, cmp: &Comparison, verdict: &(bool, String)) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "old: {} ({}, {} checks, {})",
        old.session,
        old.overall,
        old.checks.len(),
        old.completion_time
    );
    let _ = writeln!(
        s,
        "new: {} ({}, {} checks, {})",
        new.session,
        new.overall,
        new.checks.len(),
        new.completion_time
    );
    let changes = |s: &mut String, title: &str, list: &[Change]| {
        if !list.is_empty() {
            let _ = writeln!(s, "\n{title} ({}):", list.len());
            for c in list {
                let _ = writeln!(s, "  {:<8} {} (was {})", c.new, c.id, c.old);
            }
        }
    };
    changes(&mut s, "newly failing", &cmp.newly_failing);
    changes(&mut s, "newly passing", &cmp.newly_passing);
    changes(&mut s, "changed", &cmp.changed);
    let rows = |s: &mut String, title: &str, list: &[Row]| {
        if !list.is_empty() {
            let _ = writeln!(s, "\n{title} ({}):", list.len());
            for r in list {
                let _ = writeln!(s, "  {:<8} {}", r.status, r.id);
            }
        }
    };
    rows(&mut s, "appeared", &cmp.appeared);
    rows(&mut s, "vanished", &cmp.vanished);
    if !cmp.slower.is_empty() {
        let _ = writeln!(s, "\nslower ({}):", cmp.slower.len());
        for d in &cmp.slower {
            let _ = writeln!(s, "  {} {} ms -> {} ms", d.id, d.old_ms, d.new_ms);
        }
    }
    let _ = writeln!(s, "\n{} unchanged", cmp.unchanged);
    let _ = writeln!(
        s,
        "{}: {}",
        if verdict.0 { "MET" } else { "NOT MET" },
        verdict.1
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(overall: &str, checks: &[(&str, &str, u64)]) -> Side {
        Side {
            session: "s".into(),
            overall: overall.into(),
            completion_time: "t".into(),
            checks: checks
                .iter()
                .map(|(id, status, ms)| Row {
                    id: id.to_string(),
                    status: status.to_string(),
                    duration_ms: *ms,
                })
                .collect(),
        }
    }

    fn ids<T>(list: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
        list.iter().map(|x| id(x).to_string()).collect()
    }

    #[test]
    fn each_kind_of_difference_is_sorted_out() {
        let old = side(
            "FAILURE",
            &[
                ("a.keeps", "PASS", 10),
                ("b.breaks", "PASS", 10),
                ("c.heals", "FAIL", 10),
                ("d.skips", "FAIL", 10),
                ("e.goes", "PASS", 10),
                ("f.slows", "PASS", 100),
                ("g.jitters", "PASS", 2),
            ],
        );
        let new = side(
            "FAILURE",
            &[
                ("a.keeps", "PASS", 12),
                ("b.breaks", "FAIL", 10),
                ("c.heals", "WARN", 10),
                ("d.skips", "SKIP", 0),
                ("f.slows", "PASS", 400),
                ("g.jitters", "PASS", 9),
                ("h.new", "PASS", 1),
            ],
        );
        let cmp = compare(&old, &new, Slower::default());
        assert_eq!(ids(&cmp.newly_failing, |c| &c.id), ["b.breaks"]);
        assert_eq!(ids(&cmp.newly_passing, |c| &c.id), ["c.heals"]);
        assert_eq!(ids(&cmp.changed, |c| &c.id), ["d.skips"]);
        assert_eq!(ids(&cmp.appeared, |r| &r.id), ["h.new"]);
        assert_eq!(ids(&cmp.vanished, |r| &r.id), ["e.goes"]);
        // 100 -> 400 ms is slower; 2 -> 9 ms is 4.5x but only 7 ms.
        assert_eq!(ids(&cmp.slower, |d| &d.id), ["f.slows"]);
        assert_eq!(cmp.unchanged, 3);
    }

    #[test]
    fn criteria_parse_and_refuse_with_the_fix() {
        for (text, want) in [
            ("all-pass", Ok(Criteria::AllPass)),
            ("improvement", Ok(Criteria::Improvement)),
            ("threshold=0.95", Ok(Criteria::Threshold(0.95))),
            ("threshold=1", Ok(Criteria::Threshold(1.0))),
        ] {
            assert_eq!(text.parse::<Criteria>(), want, "{text}");
        }
        for (text, says) in [
            ("threshold=95", "between 0 and 1"),
            ("threshold=", "between 0 and 1"),
            ("most-pass", "use all-pass, threshold=<0..1> or improvement"),
        ] {
            let err = text.parse::<Criteria>().unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn criteria_decide_as_documented() {
        let old = side(
            "FAILURE",
            &[("a", "PASS", 1), ("b", "FAIL", 1), ("c", "PASS", 1)],
        );
        let cases: &[(&str, Criteria, Side, bool, &str)] = &[
            (
                "all passed",
                Criteria::AllPass,
                side(
                    "SUCCESS",
                    &[("a", "PASS", 1), ("b", "WARN", 1), ("c", "PASS", 1)],
                ),
                true,
                "all 3 checks passed",
            ),
            (
                "one skipped",
                Criteria::AllPass,
                side("FAILURE", &[("a", "PASS", 1), ("b", "SKIP", 1)]),
                false,
                "1 of 2",
            ),
            (
                "aborted",
                Criteria::AllPass,
                side("ABORTED", &[("a", "PASS", 1)]),
                false,
                "ABORTED",
            ),
            (
                "empty",
                Criteria::AllPass,
                side("WARNING", &[]),
                false,
                "no check",
            ),
            (
                "19 of 20",
                Criteria::Threshold(0.95),
                side(
                    "FAILURE",
                    &(0..20)
                        .map(|i| {
                            (
                                if i == 0 { "x" } else { "y" },
                                if i == 0 { "FAIL" } else { "PASS" },
                                1,
                            )
                        })
                        .collect::<Vec<_>>(),
                ),
                true,
                "19 of 20",
            ),
            (
                "2 of 3",
                Criteria::Threshold(0.95),
                side(
                    "FAILURE",
                    &[("a", "PASS", 1), ("b", "FAIL", 1), ("c", "PASS", 1)],
                ),
                false,
                "below",
            ),
            (
                "b heals",
                Criteria::Improvement,
                side(
                    "SUCCESS",
                    &[("a", "PASS", 1), ("b", "PASS", 1), ("c", "PASS", 1)],
                ),
                true,
                "no regression",
            ),
            (
                "a breaks",
                Criteria::Improvement,
                side(
                    "FAILURE",
                    &[("a", "FAIL", 1), ("b", "PASS", 1), ("c", "PASS", 1)],
                ),
                false,
                "1 newly failing",
            ),
            (
                "c vanished",
                Criteria::Improvement,
                side("FAILURE", &[("a", "PASS", 1), ("b", "FAIL", 1)]),
                false,
                "vanished",
            ),
        ];
        for (what, criteria, new, met, says) in cases {
            let cmp = compare(&old, new, Slower::default());
            let (got, why) = judge(*criteria, &old, new, &cmp);
            assert_eq!(got, *met, "{what}: {why}");
            assert!(why.contains(says), "{what}: {why}");
        }
    }

    #[test]
    fn a_transcript_missing_a_field_is_named() {
        let doc = serde_json::json!({
            "test_session_id": "x", "overall_status": "SUCCESS", "completion_time": "t",
            "validation_results": [{"id": "a", "status": "PASS"}],
        });
        let err = Side::from_transcript(&doc).unwrap_err();
        assert!(
            err.contains("validation_results[0] has no `duration_ms`"),
            "{err}"
        );
        let err = Side::from_transcript(&serde_json::json!({})).unwrap_err();
        assert!(err.contains("validation_results"), "{err}");
    }

    #[test]
    fn the_report_names_every_difference_and_the_verdict() {
        let old = side("SUCCESS", &[("a", "PASS", 10), ("gone", "PASS", 1)]);
        let new = side("FAILURE", &[("a", "FAIL", 10), ("fresh", "PASS", 1)]);
        let cmp = compare(&old, &new, Slower::default());
        let verdict = judge(Criteria::Improvement, &old, &new, &cmp);
        let text = render(&old, &new, &cmp, &verdict);
        for line in [
            "newly failing (1):",
            "  FAIL     a (was PASS)",
            "appeared (1):",
            "vanished (1):",
            "NOT MET: improvement: 1 newly failing, 1 passing check(s) vanished",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
