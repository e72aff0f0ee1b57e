//! The `git` check against real repositories: a bare repository on this
//! machine with a pushed commit and tag (pass; a missing file, a missing
//! substring, a wrong `commit_from` commit served by a local HTTP server,
//! an unknown ref and a missing repository fail for their reasons), and
//! smart-HTTP remotes played by small local servers: one that refuses
//! every credential (the check says so, git got the password from the
//! credential helper, no evidence holds it), the same reached through a
//! host's SOCKS tunnel, and one that never answers (killed at the deadline).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spinup_smoke::check::{ProbeContext, Verdict};
use spinup_smoke::checks::git::{run, Spec};
use spinup_smoke::checks::testutil::{self, http_response, RelayTunnel};

/// Runs git for the fixtures, isolated from the user's configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Fixture",
            "-c",
            "user.email=fixture@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository whose `main` holds one commit ("Add hello world":
/// README.md and .gitlab-ci.yml), tagged `v1`; returns its path and the commit.
fn bare_repository(dir: &Path) -> (PathBuf, String) {
    git(
        dir,
        &["init", "--quiet", "--bare", "-b", "main", "hello.git"],
    );
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "--quiet", "-b", "main"]);
    std::fs::write(work.join("README.md"), "# hello-world\n").unwrap();
    std::fs::write(
        work.join(".gitlab-ci.yml"),
        "hello:\n  script:\n    - echo Hello, world!\n",
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "Add hello world"]);
    git(&work, &["tag", "v1"]);
    let bare = dir.join("hello.git");
    let bare_text = bare.display().to_string();
    git(&work, &["push", "--quiet", &bare_text, "main", "v1"]);
    let commit = git(&work, &["rev-parse", "HEAD"]);
    (bare, commit)
}

fn spec(text: &str) -> Spec {
    toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn assert_fails_with(v: &Verdict, reason: &str) {
    assert!(!v.pass, "passed: {v:?}");
    assert!(v.found.contains(reason), "not for `{reason}`: {v:?}");
}

/// The tests run one at a time, so each can see what the probe left in the
/// temp dir.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Scratch directories of this process the probe left behind.
fn leftovers() -> Vec<PathBuf> {
    let prefix = format!("spinup-smoke-git-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// A smart-HTTP remote that refuses every request with 401 (as GitLab does
/// without valid credentials) and records each request's head.
async fn refusing_remote() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let addr = testutil::serve_fn(move |head| {
        log.lock().unwrap().push(head.to_string());
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"GitLab\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
    })
    .await;
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_repository_passes_and_fails_for_each_reason() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (bare, commit) = bare_repository(dir.path());
    let url = bare.display().to_string();
    let ctx = ProbeContext::for_tests(30);

    let good = format!(
        "url = \"{url}\"\nfiles = {{ \"README.md\" = [\"# hello-world\"], \".gitlab-ci.yml\" = [\"Hello, world!\"] }}\nabsent = [\"secret.txt\"]\nmessage_contains = \"hello world\""
    );
    let v = run(&spec(&good), &ctx).await;
    assert!(v.pass, "{v:?}");
    assert!(
        v.found.starts_with(&format!("main at {}", &commit[..12])),
        "{v:?}"
    );
    assert!(
        v.evidence.contains(&format!("clone head: {commit}")),
        "{v:?}"
    );
    assert!(
        v.evidence.contains("$ git ls-remote --symref file://"),
        "{v:?}"
    );

    let v = run(
        &spec(&format!("url = \"file://{url}\"\nref = \"v1\"")),
        &ctx,
    )
    .await;
    assert!(v.pass, "a tag: {v:?}");

    let v = run(
        &spec(&format!(
            "url = \"{url}\"\nfiles = {{ \"hello.txt\" = [] }}"
        )),
        &ctx,
    )
    .await;
    assert_fails_with(
        &v,
        "hello.txt is missing at main (the tree has: .gitlab-ci.yml, README.md)",
    );

    let v = run(
        &spec(&format!(
            "url = \"{url}\"\nfiles = {{ \"README.md\" = [\"Goodbye\"] }}"
        )),
        &ctx,
    )
    .await;
    assert_fails_with(&v, "README.md at main lacks \"Goodbye\"");

    let v = run(
        &spec(&format!("url = \"{url}\"\nabsent = [\".gitlab-ci.yml\"]")),
        &ctx,
    )
    .await;
    assert_fails_with(&v, ".gitlab-ci.yml exists at main");

    let v = run(
        &spec(&format!("url = \"{url}\"\nref = \"hello-world\"")),
        &ctx,
    )
    .await;
    assert_fails_with(
        &v,
        "no branch or tag `hello-world` on the remote (branches: main; tags: v1)",
    );

    let other = "0123456789abcdef0123456789abcdef01234567";
    for (id, pass) in [(commit.as_str(), true), (other, false)] {
        let api = testutil::serve(
            http_response(
                "200 OK",
                "application/json",
                &format!(r#"{{"name":"main","commit":{{"id":"{id}","title":"Add hello world"}}}}"#),
            ),
            Duration::ZERO,
            None,
        )
        .await;
        let table = format!(
            "url = \"{url}\"\ncommit_from = {{ url = \"http://{api}/api/v4/projects/rave%2Fhello/repository/branches/main\", headers = {{ \"PRIVATE-TOKEN\" = \"t\" }} }}"
        );
        let v = run(&spec(&table), &ctx).await;
        if pass {
            assert!(v.pass, "{v:?}");
        } else {
            assert_fails_with(&v, &format!("main is at {commit}, but http://{api}"));
            assert!(v.found.contains(&format!("says {other}")), "{v:?}");
        }
    }

    let v = run(
        &spec(&format!("url = \"{}/missing.git\"", dir.path().display())),
        &ctx,
    )
    .await;
    assert_fails_with(&v, "git ls-remote failed");
    assert!(v.evidence.contains("git ls-remote stderr:"), "{v:?}");

    assert_eq!(
        leftovers(),
        Vec::<PathBuf>::new(),
        "scratch directories left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_come_from_the_helper_and_never_show() {
    let _serial = SERIAL.lock().await;
    let (addr, seen) = refusing_remote().await;
    let ctx = ProbeContext::for_tests(20);
    let url = format!("http://{addr}/rave/hello-world.git");
    let password = "glpat-not-on-argv-42";
    let table = format!("url = \"{url}\"\npassword = \"{password}\"");
    let v = run(&spec(&table), &ctx).await;
    assert_fails_with(&v, "the remote refused the credentials (username oauth2)");
    let text = format!("{v:?}");
    assert!(!text.contains(password), "the password shows: {text}");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("oauth2:{password}"));
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.contains(&format!("Basic {basic}"))),
        "git never offered the helper's credentials: {heads:?}"
    );

    let v = run(&spec(&format!("url = \"{url}\"")), &ctx).await;
    assert_fails_with(&v, "asks for credentials and the check sends none");

    // Over https: the CA of `ca_file` is trusted, and without it git says why.
    let ca = testutil::ca();
    let refusal = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"GitLab\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let tls = testutil::serve(
        refusal.to_string(),
        Duration::ZERO,
        Some(testutil::leaf(&ca, &["localhost"], 30)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let https = format!(
        "url = \"https://localhost:{}/rave/hello-world.git\"\npassword = \"{password}\"",
        tls.port()
    );
    let v = run(
        &spec(&format!("{https}\nca_file = \"{}\"", ca_file.display())),
        &ctx,
    )
    .await;
    assert_fails_with(&v, "the remote refused the credentials (username oauth2)");
    let v = run(&spec(&https), &ctx).await;
    assert_fails_with(
        &v,
        "set `ca_file` to the CA that signed the server's certificate",
    );

    // The same remote as a name only the host resolves, through its SOCKS proxy.
    let tunnel = Arc::new(RelayTunnel::new().map_name("git.host-only.invalid", "127.0.0.1"));
    let mut via_host = ProbeContext::for_tests(20);
    via_host.tunnel = Some(tunnel.clone());
    via_host.via_host = true;
    let table = format!(
        "url = \"http://git.host-only.invalid:{}/rave/hello-world.git\"\npassword = \"{password}\"",
        addr.port()
    );
    let v = run(&spec(&table), &via_host).await;
    assert_fails_with(&v, "the remote refused the credentials (username oauth2)");
    assert!(
        v.evidence
            .starts_with("via ssh relay@test-host:22 (forwarded)"),
        "{v:?}"
    );
    assert!(
        tunnel.connections() >= 1,
        "git did not go through the tunnel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_remote_is_killed_at_the_deadline() {
    let _serial = SERIAL.lock().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut ctx = ProbeContext::for_tests(10);
    ctx.deadline = Instant::now() + Duration::from_millis(1500);
    let started = Instant::now();
    let v = run(&spec(&format!("url = \"http://{addr}/x.git\"")), &ctx).await;
    assert_fails_with(&v, "no exit before the check's deadline");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
