//! `spinup-smoke watch`: a soak. Runs the selection again and again (every
//! `--every`, for `--for`), keeps every run's signed artifacts under
//! `STATE/runs/NNNN/`, and keeps `STATE/summary.json` and `summary.txt`
//! current after each run (flaps, failure counts, latency trends:
//! `report::soak`). `--background` detaches it (log in `STATE/watch.log`);
//! `watch status`, `watch stop` and `watch logs` find it through
//! `STATE/watch.pid`.
//!
//! The first SIGINT or SIGTERM (`watch stop`) ends the watch after the run
//! in flight; a second one aborts that run (its transcript says ABORTED).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::json;

use crate::check::HumanDuration;
use crate::error::UserError;
use crate::exit;
use crate::report::compare::Side;
use crate::report::soak;

use super::run::{run_until, RunInputs};
use super::shared::{report_user_errors, EnvSettings};

const DEFAULT_STATE: &str = "artifacts/watch";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WatchArgs {
    #[command(subcommand)]
    pub action: Option<WatchAction>,
    /// The runs' inputs, as for `run`.
    #[command(flatten)]
    pub inputs: RunInputs,
    /// From the start of one run to the start of the next (a run that takes
    /// longer is followed at once).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub every: Duration,
    /// How long to watch: no run starts after this has passed.
    #[arg(long = "for", value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// The watch's directory: runs/, summary.json, summary.txt, watch.pid,
    /// watch.log. It must not hold an earlier watch's runs.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
    pub state: PathBuf,
    /// Detach: run in the background, logging to STATE/watch.log.
    #[arg(long)]
    pub background: bool,
}

#[derive(Debug, Subcommand)]
pub enum WatchAction {
    /// Whether the watch in STATE runs, its runs so far and its summary
    /// (exit 0 running, 1 not running).
    Status(StateArg),
    /// Stop the watch in STATE: it ends after the run in flight, which is
    /// aborted if it has not ended within --grace.
    Stop(StopArgs),
    /// Print the log of a background watch.
    Logs(StateArg),
}

#[derive(Debug, clap::Args)]
pub struct StateArg {
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
    pub state: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
    pub state: PathBuf,
    /// How long the run in flight may take to end before it is aborted.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub grace: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match HumanDuration::parse(text) {
        Ok(d) if d.0 > Duration::ZERO => Ok(d.0),
        Ok(_) => Err("must be more than zero".into()),
        Err(e) => Err(e),
    }
}

/// The files of a watch's directory.
struct StateDir(PathBuf);

impl StateDir {
    fn pid(&self) -> PathBuf {
        self.0.join("watch.pid")
    }
    fn log(&self) -> PathBuf {
        self.0.join("watch.log")
    }
    fn runs(&self) -> PathBuf {
        self.0.join("runs")
    }
    fn summary(&self) -> PathBuf {
        self.0.join("summary.json")
    }
    /// The pid of the watch recorded here, if that process still runs a watch.
    fn running(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        let mut words = cmdline.split(|b| *b == 0);
        let program = words.next().unwrap_or_default();
        let name = program.rsplit(|b| *b == b'/').next().unwrap_or_default();
        let is_watch = name.starts_with(b"spinup-smoke") && words.any(|w| w == b"watch");
        (is_watch && !zombie).then_some(pid)
    }
}

/// Entry point: the subcommands, a background start, or the watch itself.
pub fn watch(args: WatchArgs, settings: EnvSettings) -> i32 {
    match &args.action {
        Some(WatchAction::Status(a)) => return status(&StateDir(a.state.clone())),
        Some(WatchAction::Stop(a)) => return stop(&StateDir(a.state.clone()), a.grace),
        Some(WatchAction::Logs(a)) => return logs(&StateDir(a.state.clone())),
        None => {}
    }
    let state = StateDir(args.state.clone());
    if let Err(e) = claim(&state) {
        return report_user_errors(&e.into());
    }
    // Everything wrong with the input is reported now, not in the log.
    if let Err(e) = args.inputs.check(&settings) {
        return report_user_errors(&e);
    }
    if args.background {
        return start_background(&state);
    }
    let runtime = match super::shared::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = runtime.block_on(soak_loop(&args, settings, &state));
    runtime.shutdown_background();
    code
}

/// Refuses a directory with a running watch or an earlier watch's runs.
fn claim(state: &StateDir) -> Result<(), UserError> {
    if let Some(pid) = state.running() {
        if pid != std::process::id() {
            return Err(UserError::new(format!(
                "a watch is already running in {} (pid {pid})",
                state.0.display()
            ))
            .field("--state")
            .hint(format!(
                "stop it with `spinup-smoke watch stop --state {}`, or pass another --state",
                state.0.display()
            )));
        }
    }
    let earlier = std::fs::read_dir(state.runs())
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if earlier && state.running() != Some(std::process::id()) {
        return Err(UserError::new(format!(
            "{} holds the runs of an earlier watch",
            state.0.display()
        ))
        .field("--state")
        .hint("pass --state with a new directory, or move that one away (its transcripts are that watch's proof)"));
    }
    std::fs::create_dir_all(&state.0).map_err(|e| {
        UserError::new(format!("cannot create {}: {e}", state.0.display()))
            .field("--state")
            .hint("pass --state with a writable directory")
    })
}

fn start_background(state: &StateDir) -> i32 {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            return report_user_errors(
                &UserError::new(format!("cannot find this program to start it again: {e}")).into(),
            )
        }
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.log());
    let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(pair) => pair,
        Err(e) => {
            return report_user_errors(
                &UserError::new(format!("cannot open {}: {e}", state.log().display()))
                    .field("--state")
                    .into(),
            )
        }
    };
    let args: Vec<OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--background")
        .collect();
    let child = std::process::Command::new(exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return report_user_errors(
                &UserError::new(format!("cannot start the background watch: {e}")).into(),
            )
        }
    };
    if let Err(e) =
        crate::report::write_atomic(&state.pid(), format!("{}\n", child.id()).as_bytes())
    {
        eprintln!("warning: cannot write {}: {e}", state.pid().display());
    }
    // A watch that cannot start says why in its log at once.
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = child.try_wait() {
        eprintln!(
            "error: the background watch exited at once ({status}); its log:\n{}",
            std::fs::read_to_string(state.log()).unwrap_or_default()
        );
        return status.code().unwrap_or(exit::USAGE);
    }
    println!(
        "watch started in the background: pid {}, state {}\n  spinup-smoke watch status --state {0}\n  spinup-smoke watch logs --state {0}\n  spinup-smoke watch stop --state {0}",
        child.id(),
        state.0.display()
    );
    exit::SUCCESS
}

/// The number of SIGINTs and SIGTERMs received so far.
fn count_signals() -> tokio::sync::watch::Receiver<u32> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::watch::channel(0u32);
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    if let (Ok(mut int), Ok(mut term)) = streams {
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                let n = {
                    tx.send_modify(|n| *n += 1);
                    *tx.borrow()
                };
                if n == 1 {
                    eprintln!(
                        "watch: {name}: stopping after the run in flight (again to abort it)"
                    );
                } else {
                    eprintln!("watch: {name} again: aborting the run in flight");
                }
            }
        });
    }
    rx
}

/// Resolves once `n` signals have arrived (never, without signal handling).
async fn signals(mut rx: tokio::sync::watch::Receiver<u32>, n: u32) {
    if rx.wait_for(|count| *count >= n).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn soak_loop(args: &WatchArgs, settings: EnvSettings, state: &StateDir) -> i32 {
    let _ =
        crate::report::write_atomic(&state.pid(), format!("{}\n", std::process::id()).as_bytes());
    let rx = count_signals();
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    println!(
        "watch: a run every {} for {}, state {}",
        HumanDuration(args.every),
        HumanDuration(args.duration),
        state.0.display()
    );
    let mut sides: Vec<Side> = Vec::new();
    let mut runs = Vec::new();
    let mut codes = Vec::new();
    let mut number = 0u32;
    let mut summary;
    let code = loop {
        number += 1;
        let out = state.runs().join(format!("{number:04}"));
        let run_args = args.inputs.run_args(out.clone());
        println!(
            "\n== watch run {number} at {}",
            chrono::Utc::now().format("%H:%M:%S")
        );
        let abort = {
            let rx = rx.clone();
            async move {
                signals(rx, 2).await;
                "a second SIGINT or SIGTERM during a watch".to_string()
            }
        };
        let (run_code, written) = run_until(run_args, settings, abort).await;
        codes.push(run_code);
        let mut overall = None;
        if let Some(w) = &written {
            match std::fs::read_to_string(&w.transcript)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                .and_then(|doc| Side::from_transcript(&doc))
            {
                Ok(side) => {
                    overall = Some(side.overall.clone());
                    sides.push(side);
                }
                Err(e) => eprintln!("watch: cannot read back {}: {e}", w.transcript.display()),
            }
        }
        runs.push(json!({
            "number": number,
            "dir": out,
            "exit_code": run_code,
            "overall_status": overall,
            "transcript": written.as_ref().map(|w| w.transcript.clone()),
        }));
        summary = soak::summarize(&sides);
        write_summary(state, &summary, &runs, args, started_at);
        if run_code == exit::USAGE {
            eprintln!("watch: run {number} could not start (its input is broken): stopping");
            break exit::USAGE;
        }
        if *rx.borrow() >= 2 {
            break exit::ABORTED;
        }
        if *rx.borrow() >= 1 {
            break final_code(&codes);
        }
        let next = started + args.every * number;
        if next.saturating_duration_since(started) >= args.duration {
            break final_code(&codes);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = signals(rx.clone(), 1) => break final_code(&codes),
        }
    };
    println!("\n{}", soak::render(&summary));
    println!(
        "transcripts: {}\nsummary: {}",
        state.runs().display(),
        state.summary().display()
    );
    if state.running() == Some(std::process::id()) {
        let _ = std::fs::remove_file(state.pid());
    }
    code
}

/// 1 when a run failed, 4 when one could not write its artifacts, else 0.
fn final_code(codes: &[i32]) -> i32 {
    if codes.contains(&exit::ARTIFACTS_NOT_WRITTEN) {
        exit::ARTIFACTS_NOT_WRITTEN
    } else if codes.contains(&exit::CHECK_FAILED) {
        exit::CHECK_FAILED
    } else {
        exit::SUCCESS
    }
}

fn write_summary(
    state: &StateDir,
    summary: &soak::Soak,
    runs: &[serde_json::Value],
    args: &WatchArgs,
    started_at: chrono::DateTime<chrono::Utc>,
) {
    let doc = json!({
        "started_at": started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "updated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "every": HumanDuration(args.every).to_string(),
        "for": HumanDuration(args.duration).to_string(),
        "runs": runs,
        "soak": summary,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    for (path, bytes) in [
        (state.summary(), text.into_bytes()),
        (
            state.0.join("summary.txt"),
            soak::render(summary).into_bytes(),
        ),
    ] {
        if let Err(e) = crate::report::write_atomic(&path, &bytes) {
            eprintln!("watch: cannot write {}: {e}", path.display());
        }
    }
}

fn status(state: &StateDir) -> i32 {
    let running = state.running();
    let doc: Option<serde_json::Value> = std::fs::read_to_string(state.summary())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match (running, &doc) {
        (None, None) => {
            println!("no watch in {}", state.0.display());
            return exit::CHECK_FAILED;
        }
        (Some(pid), _) => println!("watch in {}: running (pid {pid})", state.0.display()),
        (None, Some(_)) => println!("watch in {}: ended", state.0.display()),
    }
    if let Some(doc) = &doc {
        let runs = doc["runs"].as_array().map(|r| r.len()).unwrap_or(0);
        println!(
            "started {}, a run every {} for {}; {runs} run(s), the last updated {}",
            doc["started_at"].as_str().unwrap_or("?"),
            doc["every"].as_str().unwrap_or("?"),
            doc["for"].as_str().unwrap_or("?"),
            doc["updated_at"].as_str().unwrap_or("?"),
        );
        print!(
            "{}",
            std::fs::read_to_string(state.0.join("summary.txt")).unwrap_or_default()
        );
    } else {
        println!("no run has ended yet");
    }
    if running.is_some() {
        exit::SUCCESS
    } else {
        exit::CHECK_FAILED
    }
}

fn stop(state: &StateDir, grace: Duration) -> i32 {
    let Some(pid) = state.running() else {
        println!("no watch is running in {}", state.0.display());
        return exit::CHECK_FAILED;
    };
    let signal = |sig| {
        // SAFETY: kill(2) on a pid we just confirmed runs a watch.
        unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
    };
    let gone = |within: Duration| {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if state.running() != Some(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    signal(libc::SIGTERM);
    println!("watch {pid}: stopping after the run in flight");
    if gone(grace) {
        println!(
            "watch {pid}: stopped; summary in {}",
            state.summary().display()
        );
        return exit::SUCCESS;
    }
    signal(libc::SIGTERM);
    println!(
        "watch {pid}: the run in flight did not end within {}: aborted",
        HumanDuration(grace)
    );
    if gone(Duration::from_secs(30)) {
        exit::SUCCESS
    } else {
        eprintln!("error: watch {pid} is still running; kill it with `kill -9 {pid}`");
        exit::CHECK_FAILED
    }
}

fn logs(state: &StateDir) -> i32 {
    match std::fs::read_to_string(state.log()) {
        Ok(text) => {
            print!("{text}");
            exit::SUCCESS
        }
        Err(_) if state.summary().exists() || state.running().is_some() => {
            println!(
                "{} has no log: that watch runs in the foreground, its output is on its terminal; `watch status` shows its summary",
                state.0.display()
            );
            exit::CHECK_FAILED
        }
        Err(_) => {
            println!("no watch in {}", state.0.display());
            exit::CHECK_FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_code_says_the_worst_that_happened() {
        for (codes, want) in [
            (&[0, 0][..], exit::SUCCESS),
            (&[0, 1, 0][..], exit::CHECK_FAILED),
            (&[0, 3, 0][..], exit::SUCCESS),
            (&[1, 4][..], exit::ARTIFACTS_NOT_WRITTEN),
        ] {
            assert_eq!(final_code(codes), want, "{codes:?}");
        }
    }

    #[test]
    fn durations_must_be_positive() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn a_stale_pid_file_is_no_watch() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir(dir.path().to_path_buf());
        assert_eq!(state.running(), None);
        // This test process is alive but is not a watch.
        std::fs::write(state.pid(), format!("{}\n", std::process::id())).unwrap();
        assert_eq!(state.running(), None);
        std::fs::write(state.pid(), "not a pid").unwrap();
        assert_eq!(state.running(), None);
        assert!(claim(&state).is_ok());
        std::fs::create_dir_all(state.runs().join("0001")).unwrap();
        let e = claim(&state).unwrap_err().to_string();
        assert!(e.contains("holds the runs of an earlier watch"), "{e}");
    }
}
