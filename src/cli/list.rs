//! `spinup-smoke list`: the plan, as a tree (`report::tree`) or as JSON,
//! without running anything.

use crate::exit;

use super::shared::{prepare, report_user_errors, EnvSettings, Format, Selection};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn list(args: &ListArgs, settings: &EnvSettings) -> i32 {
    let (_, profiles, plan) = match prepare(&args.selection, settings) {
        Ok(p) => p,
        Err(e) => return report_user_errors(&e),
    };
    match args.format {
        Format::Json => {
            let checks: Vec<serde_json::Value> = plan
                .checks
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id,
                        "phase": c.phase,
                        "service": c.service,
                        "kind": c.probe.kind(),
                        "severity": c.severity,
                        "timeout_ms": c.timeout.as_millis() as u64,
                        "needs": c.needs,
                        "description": c.description,
                        "profile": c.location.file.display().to_string(),
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "profiles_digest": profiles.digest(),
                "phases": plan.phases(),
                "checks": checks,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => print!("{}", crate::report::tree::render(&plan)),
    }
    exit::SUCCESS
}
