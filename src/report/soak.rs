//! The summary of a watch (a soak): the same checks run again and again;
//! per check how often it ran and failed, how often its verdict flapped
//! between passing and failing, and how its latency moved. Pure: it reads
//! the runs' transcripts as `compare::Side`s.

use serde::Serialize;

use super::compare::{passing, Side};

/// One check over every run that held it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckTrend {
    pub id: String,
    pub runs: usize,
    pub failures: usize,
    /// Changes between passing and not passing from one run to the next.
    pub flaps: usize,
    /// One letter per run, oldest first: P pass, W warn, F fail, S skip,
    /// A aborted, `-` absent from that run.
    pub history: String,
    pub min_ms: u64,
    pub median_ms: u64,
    pub max_ms: u64,
    /// The median duration of the first and of the second half of its runs.
    pub first_half_ms: u64,
    pub second_half_ms: u64,
    /// `slower`, `faster` or `steady` (see `trend`).
    pub trend: &'static str,
}

/// Every run of a watch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Soak {
    pub runs: usize,
    /// Runs whose overall status was FAILURE (an ABORTED run is counted in
    /// `verdicts`, not here).
    pub failed_runs: usize,
    /// The overall status of each run, oldest first.
    pub verdicts: Vec<String>,
    /// Checks that flapped, most flaps first, then the rest by id.
    pub checks: Vec<CheckTrend>,
}

impl Soak {
    pub fn flapping(&self) -> impl Iterator<Item = &CheckTrend> {
        self.checks.iter().filter(|c| c.flaps > 0)
    }
}

fn letter(status: &str) -> char {
    match status {
        "PASS" => 'P',
        "WARN" => 'W',
        "FAIL" => 'F',
        "SKIP" => 'S',
        "ABORTED" => 'A',
        _ => '?',
    }
}

fn median(values: &[u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() - 1) / 2]
}

/// A latency trend is news when the second half's median is at least 1.5
/// times the first half's and at least 20 ms apart (so a 2 ms check taking
/// 4 ms is steady), or the reverse for faster.
pub fn trend(first_ms: u64, second_ms: u64) -> &'static str {
    let (lo, hi) = (first_ms.min(second_ms), first_ms.max(second_ms));
    if hi.saturating_sub(lo) < 20 || (hi as f64) < (lo as f64) * 1.5 {
        "steady"
    } else if second_ms > first_ms {
        "slower"
    } else {
        "faster"
    }
}

/// The summary of `runs`, oldest first.
pub fn summarize(runs: &[Side]) -> Soak {
    let mut ids: Vec<&str> = Vec::new();
    for side in runs {
        for row in &side.checks {
            if !ids.contains(&row.id.as_str()) {
                ids.push(&row.id);
            }
        }
    }
    let mut checks: Vec<CheckTrend> = ids
        .into_iter()
        .map(|id| {
            let mut history = String::new();
            let mut durations = Vec::new();
            let (mut failures, mut flaps) = (0, 0);
            let mut last: Option<bool> = None;
            for side in runs {
                match side.checks.iter().find(|r| r.id == id) {
                    None => history.push('-'),
                    Some(row) => {
                        history.push(letter(&row.status));
                        durations.push(row.duration_ms);
                        let ok = passing(&row.status);
                        if !ok {
                            failures += 1;
                        }
                        if last.is_some_and(|was| was != ok) {
                            flaps += 1;
                        }
                        last = Some(ok);
                    }
                }
            }
            let half = durations.len() / 2;
            let (first, second) = if durations.len() < 2 {
                (durations.as_slice(), durations.as_slice())
            } else {
                durations.split_at(half)
            };
            let (first_half_ms, second_half_ms) = (median(first), median(second));
            CheckTrend {
                id: id.to_string(),
                runs: durations.len(),
                failures,
                flaps,
                history,
                min_ms: durations.iter().copied().min().unwrap_or(0),
                median_ms: median(&durations),
                max_ms: durations.iter().copied().max().unwrap_or(0),
                first_half_ms,
                second_half_ms,
                trend: trend(first_half_ms, second_half_ms),
            }
        })
        .collect();
    checks.sort_by(|a, b| b.flaps.cmp(&a.flaps).then_with(|| a.id.cmp(&b.id)));
    Soak {
        runs: runs.len(),
        failed_runs: runs.iter().filter(|s| s.overall == "FAILURE").count(),
        verdicts: runs.iter().map(|s| s.overall.clone()).collect(),
        checks,
    }
}

/// The summary for people: the totals, every flapping or failing check with
/// its history, and the latency trends that are news.
pub fn render(soak: &Soak) -> String {
    let mut out = format!(
        "watch: {} run(s), {} failed ({})\n",
        soak.runs,
        soak.failed_runs,
        soak.verdicts.join(" ")
    );
    let flapping: Vec<&CheckTrend> = soak.flapping().collect();
    if flapping.is_empty() {
        out.push_str("flaps: none\n");
    } else {
        out.push_str(&format!("flaps: {} check(s)\n", flapping.len()));
        for c in &flapping {
            out.push_str(&format!(
                "  {} flapped {} time(s), failed {} of {} runs: {}\n",
                c.id, c.flaps, c.failures, c.runs, c.history
            ));
        }
    }
    for c in soak
        .checks
        .iter()
        .filter(|c| c.flaps == 0 && c.failures > 0)
    {
        out.push_str(&format!(
            "  {} failed {} of {} runs: {}\n",
            c.id, c.failures, c.runs, c.history
        ));
    }
    let moving: Vec<&CheckTrend> = soak.checks.iter().filter(|c| c.trend != "steady").collect();
    if moving.is_empty() {
        out.push_str("latency: steady\n");
    } else {
        out.push_str("latency:\n");
        for c in moving {
            out.push_str(&format!(
                "  {} {}: median {} ms then {} ms (min {} ms, max {} ms)\n",
                c.id, c.trend, c.first_half_ms, c.second_half_ms, c.min_ms, c.max_ms
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::Row;

    fn side(overall: &str, rows: &[(&str, &str, u64)]) -> Side {
        Side {
            session: String::new(),
            overall: overall.to_string(),
            completion_time: String::new(),
            checks: rows
                .iter()
                .map(|(id, status, ms)| Row {
                    id: id.to_string(),
                    status: status.to_string(),
                    duration_ms: *ms,
                })
                .collect(),
        }
    }

    #[test]
    fn trends_need_a_factor_and_a_margin() {
        for (first, second, want) in [
            (10, 12, "steady"),
            (2, 15, "steady"),
            (100, 140, "steady"),
            (100, 150, "slower"),
            (100, 400, "slower"),
            (400, 100, "faster"),
            (0, 0, "steady"),
        ] {
            assert_eq!(trend(first, second), want, "{first} -> {second}");
        }
    }

    #[test]
    fn flaps_failures_history_and_latency_per_check() {
        let runs = [
            side("SUCCESS", &[("db", "PASS", 10), ("web", "PASS", 100)]),
            side("FAILURE", &[("db", "FAIL", 3000), ("web", "PASS", 100)]),
            side("FAILURE", &[("db", "FAIL", 3000), ("web", "PASS", 300)]),
            side("SUCCESS", &[("db", "PASS", 12), ("web", "WARN", 320)]),
            side("SUCCESS", &[("web", "PASS", 310), ("new", "SKIP", 0)]),
        ];
        let soak = summarize(&runs);
        assert_eq!(soak.runs, 5);
        assert_eq!(soak.failed_runs, 2);
        let db = &soak.checks[0];
        assert_eq!(
            (db.id.as_str(), db.flaps, db.failures, db.runs),
            ("db", 2, 2, 4)
        );
        assert_eq!(db.history, "PFFP-");
        assert_eq!((db.min_ms, db.median_ms, db.max_ms), (10, 12, 3000));
        let by_id = |id: &str| soak.checks.iter().find(|c| c.id == id).unwrap();
        let web = by_id("web");
        assert_eq!((web.flaps, web.failures), (0, 0), "WARN counts as passing");
        assert_eq!((web.first_half_ms, web.second_half_ms), (100, 310));
        assert_eq!(web.trend, "slower");
        let new = by_id("new");
        assert_eq!((new.history.as_str(), new.failures), ("----S", 1));

        let text = render(&soak);
        assert!(
            text.starts_with("watch: 5 run(s), 2 failed (SUCCESS FAILURE FAILURE SUCCESS SUCCESS)"),
            "{text}"
        );
        assert!(
            text.contains("db flapped 2 time(s), failed 2 of 4 runs: PFFP-"),
            "{text}"
        );
        assert!(text.contains("new failed 1 of 1 runs: ----S"), "{text}");
        assert!(
            text.contains("web slower: median 100 ms then 310 ms"),
            "{text}"
        );
    }

    #[test]
    fn a_quiet_soak_says_so() {
        let runs = [
            side("SUCCESS", &[("db", "PASS", 10)]),
            side("SUCCESS", &[("db", "PASS", 11)]),
        ];
        let text = render(&summarize(&runs));
        assert!(
            text.contains("flaps: none") && text.contains("latency: steady"),
            "{text}"
        );
        assert_eq!(summarize(&[]).runs, 0);
    }
}
