//! `spinup-smoke serve`, the binary for real, over real HTTP on a free
//! loopback port: /healthz follows a TCP service the test stops and starts
//! again; a burst of 50 concurrent requests causes one run; /metrics is
//! Prometheus text; /transcript verifies; a request waits no longer than
//! its deadline and a silent client holds up no one; SIGTERM aborts the
//! run in flight and ends the server with 0; bad arguments exit 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"));
    cmd.env_remove("SPINUP_SIGNING_KEY")
        .env_remove("VALIDATION_TIMEOUT")
        .env_remove("SPINUP_SMOKE_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

/// A profile of `checks` (TOML `[[check]]` tables) in `dir`.
fn profile(dir: &Path, checks: &str) -> PathBuf {
    let path = dir.join("svc.toml");
    std::fs::write(&path, checks).unwrap();
    path
}

fn tcp_check(port: u16) -> String {
    format!(
        "[[check]]\nid = \"svc.port\"\nphase = \"services\"\ntimeout = \"2s\"\n[check.tcp]\naddress = \"127.0.0.1:{port}\"\n"
    )
}

fn sleep_check(seconds: u32) -> String {
    format!(
        "[[check]]\nid = \"svc.slow\"\nphase = \"services\"\ntimeout = \"60s\"\n[check.command]\nrun = [\"sleep\", \"{seconds}\"]\n"
    )
}

/// A running `spinup-smoke serve` and what it printed so far.
struct Server {
    child: Child,
    addr: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = bin()
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut o = output.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let until = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let said = output.lock().unwrap().clone();
            if let Some(rest) = said.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("serve exited at once ({status}):\n{said}");
            }
            assert!(Instant::now() < until, "serve never listened:\n{said}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Server {
            child,
            addr,
            output,
        }
    }

    fn get(&self, path: &str) -> Answer {
        request(self.addr, "GET", path)
    }

    fn said(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code (within 30 s).
    fn terminate(&mut self) -> Option<i32> {
        // SAFETY: kill(2) on the child this test started and still owns.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < until,
                "serve did not end within 30 s of SIGTERM:\n{}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    code: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// One HTTP/1.1 request over a fresh connection, within 60 s.
fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {raw:?}"));
    Answer {
        code,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Asks /healthz until it answers `code` (within 30 s).
fn healthz_until(server: &Server, code: u16) -> Answer {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let a = server.get("/healthz");
        if a.code == code {
            return a;
        }
        assert!(
            Instant::now() < until,
            "/healthz never answered {code}; last {a:?}\n{}",
            server.said()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The run directories under OUT/runs.
fn run_dirs(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out.join("runs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A metric's name, labels and value.
type Sample = (String, Vec<(String, String)>, f64);

/// Checks every line of a Prometheus text exposition (format 0.0.4) and
/// returns its samples as (name, labels, value).
fn parse_exposition(text: &str) -> Vec<Sample> {
    let is_name = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(!typed.contains(&name.to_string()), "TYPE twice: {line}");
            typed.push(name.to_string());
        } else {
            assert!(!line.starts_with('#'), "{line}");
            let name_end = line.find(['{', ' ']).expect("a sample");
            let name = &line[..name_end];
            assert!(is_name(name), "{line}");
            assert_eq!(typed.last().map(String::as_str), Some(name), "{line}");
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(inner) = rest.strip_prefix('{') {
                let mut chars = inner.char_indices();
                loop {
                    let Some((start, c)) = chars.next() else {
                        panic!("unclosed labels: {line}")
                    };
                    if c == '}' {
                        rest = &inner[start + 1..];
                        break;
                    }
                    if c == ',' {
                        continue;
                    }
                    let eq = inner[start..].find('=').expect("label=") + start;
                    let key = &inner[start..eq];
                    assert!(is_name(key), "label name `{key}`: {line}");
                    while chars.next().map(|(i, _)| i) != Some(eq) {}
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('\\') => value.push('\\'),
                                Some('"') => value.push('"'),
                                Some('n') => value.push('\n'),
                                other => panic!("bad escape {other:?}: {line}"),
                            },
                            Some('"') => break,
                            Some(c) => value.push(c),
                            None => panic!("unclosed label value: {line}"),
                        }
                    }
                    labels.push((key.to_string(), value));
                }
            }
            let value = rest.strip_prefix(' ').expect("a space before the value");
            let v: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value `{v}`: {line}")),
            };
            samples.push((name.to_string(), labels, v));
        }
    }
    samples
}

fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
}

fn runs_total(server: &Server) -> f64 {
    let metrics = server.get("/metrics");
    assert_eq!(metrics.code, 200, "{metrics:?}");
    parse_exposition(&metrics.body)
        .iter()
        .filter(|(n, _, _)| n == "spinup_smoke_runs_total")
        .map(|(_, _, v)| v)
        .sum()
}

#[test]
fn healthz_follows_a_service_that_goes_down_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let profile = profile(dir.path(), &tcp_check(port));
    let out = dir.path().join("out");
    let keys = dir.path().join("serve");
    let made = bin()
        .args(["keygen", "--out", keys.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let key = keys.with_extension("key");
    let public = keys.with_extension("pub");
    let mut server = Server::start(&[
        "--key",
        key.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--max-age",
        "1s",
        "--keep",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);

    let up = server.get("/healthz");
    assert_eq!(up.code, 200, "{up:?}\n{}", server.said());
    assert!(up.head.contains("application/json"), "{}", up.head);
    let body = up.json();
    // WARNING, not SUCCESS: the profile examines one phase of several.
    assert_eq!(body["status"], "WARNING", "{body}");
    assert_eq!(body["healthy"], true, "{body}");
    assert_eq!(body["counts"]["PASS"], 1, "{body}");
    assert_eq!(body["failing"], serde_json::json!([]), "{body}");

    // The latest transcript and its envelope verify as served, signed by
    // the server's key.
    for (path, file) in [
        ("/transcript", "boot_transcript_served.json"),
        ("/transcript.intoto.json", "served.intoto.json"),
    ] {
        let got = server.get(path);
        assert_eq!(got.code, 200, "{path}: {got:?}");
        let saved = dir.path().join(file);
        std::fs::write(&saved, &got.body).unwrap();
        let verify = bin()
            .args(["verify", saved.to_str().unwrap()])
            .args(["--pubkey", public.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{path}: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }
    // A changed byte does not.
    let tampered = dir.path().join("boot_transcript_tampered.json");
    std::fs::write(
        &tampered,
        server
            .get("/transcript")
            .body
            .replacen("\"PASS\"", "\"FAIL\"", 1),
    )
    .unwrap();
    let verify = bin()
        .args(["verify", tampered.to_str().unwrap()])
        .args(["--pubkey", public.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));

    drop(listener);
    let down = healthz_until(&server, 503);
    let body = down.json();
    assert_eq!(body["status"], "FAILURE", "{body}");
    assert_eq!(body["failing"], serde_json::json!(["svc.port"]), "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("svc.port"),
        "{body}"
    );
    let _listener = TcpListener::bind(("127.0.0.1", port)).expect("the port again");
    let back = healthz_until(&server, 200);
    assert_eq!(back.json()["status"], "WARNING");
    assert!(back.json()["run"].as_u64().unwrap() >= 3, "{}", back.body);

    // Unknown paths and other methods.
    let missing = server.get("/nothing");
    assert_eq!(missing.code, 404, "{missing:?}");
    assert!(missing.body.contains("/healthz"), "{missing:?}");
    let post = request(server.addr, "POST", "/healthz");
    assert_eq!(post.code, 405, "{post:?}");
    assert!(
        post.head.to_ascii_lowercase().contains("allow: get, head"),
        "{post:?}"
    );

    // Only the newest --keep run directories are left.
    let dirs = run_dirs(&out);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(dirs
        .iter()
        .all(|d| d.len() == 4 && d.parse::<u32>().is_ok()));
    assert_eq!(server.terminate(), Some(0), "{}", server.said());
}

#[test]
fn a_burst_of_50_concurrent_requests_causes_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The slow check keeps the run in flight while the burst arrives.
    let profile = profile(dir.path(), &(tcp_check(port) + &sleep_check(1)));
    let out = dir.path().join("out");
    let server = Server::start(&[
        "--profile",
        profile.to_str().unwrap(),
        "--max-age",
        "1h",
        "--out",
        out.to_str().unwrap(),
    ]);
    // Before any run: no transcript, no run, no check metrics.
    assert_eq!(server.get("/transcript").code, 404);
    assert_eq!(run_dirs(&out).len(), 0, "no run before a request");
    let metrics = server.get("/metrics");
    assert!(
        metrics.head.contains("text/plain; version=0.0.4"),
        "{}",
        metrics.head
    );
    assert!(!metrics.body.contains("spinup_smoke_check_status"));
    // That scrape started a run (nothing was cached); /healthz waits for
    // that same run rather than starting another.
    let first = server.get("/healthz");
    assert_eq!(first.code, 200, "{first:?}");
    assert_eq!(first.json()["run"], 1, "{}", first.body);
    drop(server);

    let out = dir.path().join("out2");
    let mut server = Server::start(&[
        "--profile",
        profile.to_str().unwrap(),
        "--max-age",
        "1h",
        "--out",
        out.to_str().unwrap(),
    ]);
    let barrier = Arc::new(Barrier::new(50));
    let addr = server.addr;
    let answers: Vec<Answer> = (0..50)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                request(addr, "GET", "/healthz")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for a in &answers {
        assert_eq!(a.code, 200, "{a:?}\n{}", server.said());
        assert_eq!(a.json()["run"], 1, "{}", a.body);
    }
    assert_eq!(runs_total(&server), 1.0);
    assert_eq!(run_dirs(&out), ["0001"]);
    assert_eq!(
        server.said().matches("== serve run").count(),
        1,
        "{}",
        server.said()
    );

    // The metrics of that run, line by line.
    let metrics = server.get("/metrics");
    let samples = parse_exposition(&metrics.body);
    for (name, labels, want) in [
        (
            "spinup_smoke_runs_total",
            &[("outcome", "warning")][..],
            1.0,
        ),
        (
            "spinup_smoke_runs_total",
            &[("outcome", "failure")][..],
            0.0,
        ),
        ("spinup_smoke_run_in_flight", &[][..], 0.0),
        ("spinup_smoke_result_fresh", &[][..], 1.0),
        (
            "spinup_smoke_last_run_status",
            &[("status", "WARNING")][..],
            1.0,
        ),
        (
            "spinup_smoke_last_run_status",
            &[("status", "FAILURE")][..],
            0.0,
        ),
        (
            "spinup_smoke_check_status",
            &[
                ("id", "svc.port"),
                ("phase", "services"),
                ("status", "PASS"),
            ][..],
            1.0,
        ),
        (
            "spinup_smoke_check_status",
            &[
                ("id", "svc.slow"),
                ("phase", "services"),
                ("status", "FAIL"),
            ][..],
            0.0,
        ),
    ] {
        assert_eq!(
            sample(&samples, name, labels),
            Some(want),
            "{name} {labels:?} in:\n{}",
            metrics.body
        );
    }
    let slow = sample(
        &samples,
        "spinup_smoke_check_duration_seconds",
        &[("id", "svc.slow"), ("phase", "services")],
    )
    .unwrap();
    assert!(slow >= 1.0, "the sleep took {slow} s");
    let stamp = sample(&samples, "spinup_smoke_last_run_timestamp_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - stamp).abs() < 600.0, "{stamp} vs {now}");
    for line in metrics.body.lines().filter(|l| l.starts_with("# TYPE")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            metrics.body.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }
    // promtool, where installed, agrees that the exposition is well formed.
    if let Ok(mut lint) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        lint.stdin
            .take()
            .unwrap()
            .write_all(metrics.body.as_bytes())
            .unwrap();
        let said = lint.wait_with_output().unwrap();
        assert!(
            said.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&said.stdout),
            String::from_utf8_lossy(&said.stderr)
        );
    }

    // Still fresh: more requests, no new run.
    assert_eq!(server.get("/healthz").code, 200);
    assert_eq!(runs_total(&server), 1.0);
    assert_eq!(server.terminate(), Some(0), "{}", server.said());
}

#[test]
fn sigterm_aborts_the_run_in_flight_writes_its_transcript_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path(), &sleep_check(30));
    let out = dir.path().join("out");
    let mut server = Server::start(&[
        "--profile",
        profile.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let addr = server.addr;
    let waiting = std::thread::spawn(move || request(addr, "GET", "/healthz"));
    let until = Instant::now() + Duration::from_secs(30);
    while !server.said().contains("== serve run 1") {
        assert!(Instant::now() < until, "no run started:\n{}", server.said());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(server.terminate(), Some(0), "{}", server.said());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the 30 s check was not cut short"
    );
    let answer = waiting.join().unwrap();
    assert_eq!(answer.code, 503, "{answer:?}");
    assert_eq!(answer.json()["status"], "ABORTED", "{}", answer.body);
    let run = out.join("runs/0001");
    let transcript = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("boot_transcript_")
                && name.ends_with(".json")
                && !name.ends_with(".intoto.json")
        })
        .unwrap_or_else(|| panic!("no transcript in {}", run.display()));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&transcript).unwrap()).unwrap();
    assert_eq!(doc["overall_status"], "ABORTED", "{doc}");
    assert!(
        doc["abort_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("SIGTERM"),
        "{}",
        doc["abort_reason"]
    );
    assert!(
        server.said().contains("SIGTERM: stopping"),
        "{}",
        server.said()
    );
}

#[test]
fn bad_arguments_exit_2_with_the_reason_and_a_wide_address_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let good = profile(dir.path(), &tcp_check(port));
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[check]]\nid = \"x\"\nphase = \"nope\"\n").unwrap();
    let taken = listener.local_addr().unwrap().to_string();
    for (args, needle) in [
        (vec!["--listen", "localhost"], "not IP:PORT"),
        (vec!["--max-age", "0s"], "more than zero"),
        (vec!["--max-age", "soon"], "--max-age"),
        (vec!["--keep", "0"], "--keep"),
        (vec!["--request-timeout", "5"], "--request-timeout"),
        (vec!["--listen", &taken], "cannot listen on"),
        (vec!["--profile", broken.to_str().unwrap()], "broken.toml"),
    ] {
        let mut cmd = bin();
        cmd.arg("serve");
        if !args.contains(&"--profile") {
            cmd.args(["--profile", good.to_str().unwrap()]);
        }
        let out = cmd
            .args(&args)
            .args(["--out", dir.path().join("out").to_str().unwrap()])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(needle), "{args:?}: {said}");
    }

    let mut cmd = bin();
    let mut child = cmd
        .args(["serve", "--listen", "0.0.0.0:0"])
        .args(["--profile", good.to_str().unwrap()])
        .args(["--out", dir.path().join("wide").to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.contains("not a loopback address"),
        "the wide address is announced: {first}"
    );
}

#[test]
fn a_request_waits_no_longer_than_its_deadline_and_a_silent_client_holds_up_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(dir.path(), &sleep_check(30));
    let out = dir.path().join("out");
    let mut server = Server::start(&[
        "--profile",
        profile.to_str().unwrap(),
        "--request-timeout",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ]);
    // A client that connects, sends half a request head and falls silent.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();

    let asked = Instant::now();
    let waited = server.get("/healthz");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the request outlived its 1 s deadline: {:?}",
        asked.elapsed()
    );
    assert_eq!(waited.code, 503, "{waited:?}");
    let body = waited.json();
    assert_eq!(body["status"], "NONE", "{body}");
    assert_eq!(body["in_flight"], true, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("in flight"),
        "{body}"
    );
    // The run goes on; a scrape answers at once, and another request joins
    // the same run instead of starting one.
    let metrics = parse_exposition(&server.get("/metrics").body);
    assert_eq!(
        sample(&metrics, "spinup_smoke_run_in_flight", &[]),
        Some(1.0)
    );
    assert_eq!(runs_total(&server), 0.0);
    assert_eq!(server.get("/healthz").code, 503);
    assert_eq!(run_dirs(&out), ["0001"]);
    assert_eq!(server.said().matches("== serve run").count(), 1);
    drop(silent);
    assert_eq!(server.terminate(), Some(0), "{}", server.said());
}
