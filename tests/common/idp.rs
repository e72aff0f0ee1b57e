//! The demo's IdP (npm oidc-provider with a sign-in form that checks
//! passwords, `demo/idp/server.mjs` under node), started alone on a free
//! port with one client and one user; stopped when dropped.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::detect::Server;
use super::ServerProcess;

/// The redirect URI the client `spinup-smoke` registered.
pub const REDIRECT: &str = "http://127.0.0.1/spinup-smoke/callback";

pub struct Idp {
    /// `http://127.0.0.1:<port>`.
    pub issuer: String,
    /// The password of the user `alice`.
    pub password: String,
    /// The secret of the client `spinup-smoke`.
    pub client_secret: String,
    // Dropped in this order: the server, then its directory.
    _process: ServerProcess,
    _dir: tempfile::TempDir,
}

/// Starts the IdP; returns once it listens.
pub fn start() -> Idp {
    if Server::Idp.missing(&super::repo()).is_some() {
        super::missing(Server::Idp);
    }
    let idp_dir = super::repo().join("demo/idp");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let password = "correct horse battery staple";
    let client_secret = "client-secret-for-tests";
    let port = super::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let config = serde_json::json!({
        "issuer": issuer,
        "port": port,
        "jwks_path": dir.path().join("jwks.json"),
        "cookie_key_file": write("cookie.key", "cookie-key-for-tests"),
        "clients": [{
            "client_id": "spinup-smoke",
            "client_secret_file": write("client_secret", client_secret),
            "redirect_uris": [REDIRECT],
            "pkce_required": true,
        }],
        "users": [{ "username": "alice", "password_file": write("alice", password) }],
    });
    let config_path = write("config.json", &config.to_string());
    let log = dir.path().join("stderr.log");
    let mut process = ServerProcess::spawn(
        "the IdP",
        Command::new("node")
            .arg(idp_dir.join("server.mjs"))
            .arg(&config_path)
            .current_dir(&idp_dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
        Some(&log),
    );
    process.wait_ready(Duration::from_secs(30), Duration::from_millis(100), || {
        super::listening(port)
    });
    Idp {
        issuer,
        password: password.into(),
        client_secret: client_secret.into(),
        _process: process,
        _dir: dir,
    }
}
