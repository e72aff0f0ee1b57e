//! `rave-agent`: the reference RAVE agent. It logs in to a Matrix
//! homeserver, joins the rooms allow-listed users invite it to, and obeys
//! their `!rave` commands through the GitLab API; everyone else is refused.
//!
//!     rave-agent --config agent.toml
//!     rave-agent --check-config agent.toml
//!
//! The contract it keeps (and any RAVE bridge can be held to) is in
//! README.md, "Agent contract".

mod bot;
mod command;
mod config;
mod gitlab;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: rave-agent --config FILE | --check-config FILE\n\
    The password and GitLab token come from `password_file`/`gitlab_token_file`\n\
    or the environment (RAVE_AGENT_PASSWORD, RAVE_AGENT_GITLAB_TOKEN), never from arguments.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check_only, path) = match args.as_slice() {
        [flag, path] if flag == "--config" => (false, PathBuf::from(path)),
        [flag, path] if flag == "--check-config" => (true, PathBuf::from(path)),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match config::load(&path, &|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rave-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("{}: ok", path.display());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rave-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = bot::run(config) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rave-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
