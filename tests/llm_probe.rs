//! The `llm` kind end to end against a local OpenAI-compatible stand-in (a
//! small HTTP server of this test, labelled a stand-in in the target): a
//! sound answer passes with its latency and tokens per second; a malformed
//! completion fails with the JSON path that broke; a wrong key and a silent
//! server fail; the API key never reaches the transcript.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-local-3f9a7c1e";

/// Answers like an OpenAI-compatible server; `mode` picks a fault.
async fn stand_in(mode: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut n = 0;
                // Headers, then the body its Content-Length announces.
                loop {
                    let Ok(read) = s.read(&mut buf[n..]).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    n += read;
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if n >= end + 4 + length {
                            break;
                        }
                    }
                }
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                if mode == "silent" {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                let authorized = request.contains(&format!("authorization: Bearer {KEY}"))
                    || request.contains(&format!("Authorization: Bearer {KEY}"));
                let (status, body) = if !authorized {
                    (
                        "401 Unauthorized",
                        r#"{"error":{"message":"invalid api key"}}"#.to_string(),
                    )
                } else if request.starts_with("GET /v1/models") {
                    (
                        "200 OK",
                        r#"{"object":"list","data":[{"id":"rave-coder","object":"model"}]}"#
                            .to_string(),
                    )
                } else if request.starts_with("POST /v1/chat/completions") {
                    let role = if mode == "bad-role" {
                        "user"
                    } else {
                        "assistant"
                    };
                    (
                        "200 OK",
                        format!(
                            r#"{{"id":"c1","object":"chat.completion","created":1700000000,"model":"rave-coder","choices":[{{"index":0,"message":{{"role":"{role}","content":"ready"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}}}"#
                        ),
                    )
                } else {
                    ("404 Not Found", "{}".to_string())
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            });
        }
    });
    format!("http://{addr}/v1")
}

fn run(
    dir: &Path,
    url: &str,
    key: &str,
    timeout: &str,
) -> (Option<i32>, serde_json::Value, Duration) {
    std::fs::write(dir.join("key"), key).unwrap();
    std::fs::write(
        dir.join("target.toml"),
        format!("name = \"llm\"\n[vars]\nllm.url = \"{url}\"\n[secrets]\nllm_key = {{ file = \"key\" }}\n[stand_ins]\nllm = \"an OpenAI-compatible stand-in of this test\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("llm.toml"),
        format!("[[check]]\nid = \"llm.chat\"\nphase = \"agent\"\ntimeout = \"{timeout}\"\n[check.llm]\nbase_url = \"${{llm.url}}\"\napi_key = \"${{secret:llm_key}}\"\nassert = \"chat\"\nmodel = \"rave-coder\"\nreply_contains = \"ready\"\n"),
    )
    .unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_spinup-smoke"))
        .args(["run", "--format", "json", "--profile"])
        .arg(dir.join("llm.toml"))
        .arg("--target")
        .arg(dir.join("target.toml"))
        .arg("--out")
        .arg(&out)
        .env("NO_COLOR", "1")
        .env_remove("SPINUP_SIGNING_KEY")
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(!text.contains(KEY), "the key reached the transcript");
    let doc: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (
        output.status.code(),
        doc["validation_results"][0].clone(),
        took,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openai_compatible_endpoint_is_judged_by_its_answers() {
    let dir = tempfile::tempdir().unwrap();
    let good = stand_in("good").await;
    let bad_role = stand_in("bad-role").await;
    let silent = stand_in("silent").await;
    let dir_path = dir.path().to_path_buf();
    let result = tokio::task::spawn_blocking(move || {
        let (code, r, _) = run(&dir_path, &good, KEY, "10s");
        assert_eq!(code, Some(0), "{r}");
        assert_eq!(r["status"], "PASS", "{r}");
        assert_eq!(r["stand_in"], true, "{r}");
        assert!(
            r["metrics"]["tokens_per_second"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        assert!(r["metrics"]["chat_latency_ms"].as_f64().is_some(), "{r}");

        let (code, r, _) = run(&dir_path, &bad_role, KEY, "10s");
        assert_eq!(code, Some(1), "{r}");
        assert!(
            r["found"]
                .as_str()
                .unwrap()
                .contains("$.choices[0].message.role is \"user\", expected \"assistant\""),
            "{r}"
        );

        let (_, r, _) = run(&dir_path, &good, "sk-wrong", "10s");
        assert_eq!(r["status"], "FAIL", "{r}");
        assert!(r["found"].as_str().unwrap().contains("answered 401"), "{r}");

        let (_, r, took) = run(&dir_path, &silent, KEY, "2s");
        assert_eq!(r["status"], "FAIL", "{r}");
        assert!(took < Duration::from_secs(10), "took {took:?}: {r}");
    })
    .await;
    result.unwrap();
}
