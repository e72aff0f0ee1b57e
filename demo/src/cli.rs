//! `spinup-smoke-demo [up|down]` (also run as `spinup-smoke demo ...`): the
//! arguments, and the full run: start the stack, validate every phase
//! through the validator's library, verify the signed transcript, stop.

use std::path::{Path, PathBuf};

use clap::Parser;
use spinup_smoke::cli::{
    report_user_errors, runtime, EnvSettings, Format, RunArgs, Selection, VerifyArgs,
};
use spinup_smoke::exit;

use crate::assets::Assets;

/// The embedded demo stack of spinup-smoke: without a subcommand, start it,
/// validate it (every phase), verify the signed transcript and stop it; `up`
/// and `down` start or stop it alone.
///
/// Exit codes: those of `spinup-smoke run` (0 pass, 1 a check failed or the
/// transcript did not verify, 2 usage or start-up error, 3 aborted, 4 the
/// artifacts were not written); the highest wins.
#[derive(Debug, Parser)]
#[command(name = "spinup-smoke-demo", version)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub action: Option<DemoAction>,
    /// Where the stack keeps its data, logs, secrets and target file.
    #[arg(long, value_name = "DIR", default_value = ".demo", global = true)]
    pub state: PathBuf,
    /// Where the demo's files are (demo/idp, demo/standins, scripts/,
    /// health-checks/, scenarios/). Default: <dir of this program>/../share/spinup-smoke,
    /// else the current directory if it is a checkout.
    #[arg(long, value_name = "DIR", env = "SPINUP_SMOKE_ASSETS", global = true)]
    pub assets: Option<PathBuf>,
    /// Signing key for the demo run (default: an ephemeral key).
    #[arg(long, value_name = "PATH", env = "SPINUP_SIGNING_KEY")]
    pub key: Option<PathBuf>,
    /// Where the demo run writes its artifacts.
    #[arg(long, value_name = "DIR", default_value = "artifacts/demo")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum DemoAction {
    /// Start the stack, prepare the guest image and write STATE/target.toml
    /// (every phase the demo runs).
    Up,
    /// Stop the stack and remove STATE (safe to repeat, safe after a crash).
    Down,
}

/// Entry point of `spinup-smoke-demo`: returns the process exit code.
pub fn main() -> i32 {
    let args = DemoArgs::parse();
    let settings = match EnvSettings::from_lookup(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => return report_user_errors(&e.into()),
    };
    match runtime() {
        Ok(rt) => {
            let code = rt.block_on(demo(args, settings));
            // As `spinup-smoke run`: nothing left to wait for once it is done.
            rt.shutdown_background();
            code
        }
        Err(code) => code,
    }
}

/// The assets, found as `Assets::find` documents.
fn assets(args: &DemoArgs) -> Result<Assets, spinup_smoke::error::UserError> {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    Assets::find(args.assets.as_deref(), exe.as_deref(), cwd.as_deref())
}

async fn demo(args: DemoArgs, settings: EnvSettings) -> i32 {
    let state = args.state.clone();
    if args.action == Some(DemoAction::Down) {
        return down(&state).await;
    }
    let assets = match assets(&args) {
        Ok(a) => a,
        Err(e) => return report_user_errors(&e.into()),
    };
    let started = match crate::up(&state, &assets).await {
        Ok(info) => info,
        Err(e) => return report_user_errors(&e.into()),
    };
    println!("demo: stack up in {}", state.display());
    for (component, took) in &started.timings {
        println!("  {component:<26} {:>7.2}s", took.as_secs_f64());
    }
    println!("demo: target file {}", started.target.display());
    if args.action.is_some() {
        println!("demo: validate it with `spinup-smoke run --profile health-checks --phase services --phase sandbox --target {}`; stop it with `spinup-smoke demo down`", started.target.display());
        return exit::SUCCESS;
    }
    let run_args = RunArgs {
        selection: Selection {
            profiles: crate::PROFILES.iter().map(|p| assets.join(p)).collect(),
            target: Some(started.target.clone()),
            phases: Vec::new(),
            smoke: false,
        },
        image: Some(started.image.clone()),
        key: args.key.clone(),
        out: args.out.clone(),
        jobs: 16,
        format: Format::Human,
        require_phases: crate::required_phases(),
        quiet: false,
    };
    let (mut code, written) = spinup_smoke::cli::run(run_args, settings).await;
    if let Some(written) = &written {
        println!("\n==> verify the signed transcript and its attestation");
        // Pinned to the .pub beside --key; without one there is no key to
        // pin, so the demo trusts the embedded key openly and says what that proves.
        let pubkey = args
            .key
            .as_ref()
            .map(|k| k.with_extension("pub"))
            .filter(|p| p.exists());
        match (&pubkey, &args.key) {
            (Some(pubkey), _) => println!("demo: verifying against {}", pubkey.display()),
            (None, Some(key)) => println!(
                "demo: no {} beside {}: trusting the key embedded in the files (--trust-embedded-key); this proves they are intact, not who signed them",
                key.with_extension("pub").display(),
                key.display()
            ),
            (None, None) => println!(
                "demo: signed with an EPHEMERAL key: trusting the key embedded in the files (--trust-embedded-key); this proves they are intact, not who signed them"
            ),
        }
        for file in [&written.transcript, &written.attestation] {
            let verdict = spinup_smoke::cli::verify(&VerifyArgs {
                file: file.clone(),
                trust_embedded_key: pubkey.is_none(),
                pubkey: pubkey.clone(),
                image: Some(started.image.clone()),
                format: "human".into(),
            });
            code = code.max(verdict);
        }
    }
    match crate::down(&state).await {
        Ok(stopped) => println!("\ndemo: stopped {}", stopped.join(", ")),
        Err(e) => {
            eprintln!("{e}");
            code = code.max(exit::USAGE);
        }
    }
    if let Some(written) = written {
        println!(
            "demo: artifacts in {}",
            written
                .transcript
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    code
}

/// `down`: stops what `up` started under `state`.
async fn down(state: &Path) -> i32 {
    match crate::down(state).await {
        Ok(stopped) if stopped.is_empty() => {
            println!("demo: nothing was running in {}", state.display());
            exit::SUCCESS
        }
        Ok(stopped) => {
            println!(
                "demo: stopped {} and removed {}",
                stopped.join(", "),
                state.display()
            );
            exit::SUCCESS
        }
        Err(e) => report_user_errors(&e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        DemoArgs::command().debug_assert();
    }
}
