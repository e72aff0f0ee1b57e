//! The plan as a tree (`spinup-smoke list`): phase, then its checks with
//! their kind, severity, description and dependencies.

use crate::check::Severity;
use crate::plan::Plan;

/// The plan as a tree: phase, then checks with their dependencies.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for phase in plan.phases() {
        let checks: Vec<_> = plan.in_phase(phase).collect();
        out.push_str(&format!(
            "phase {}/10 {phase} ({} checks)\n",
            phase.number(),
            checks.len()
        ));
        for (i, c) in checks.iter().enumerate() {
            let last = i + 1 == checks.len();
            let branch = if last { "└─" } else { "├─" };
            let mut line = format!("{branch} {} [{}", c.id, c.probe.kind());
            if c.severity == Severity::Warn {
                line.push_str(", warn");
            }
            line.push(']');
            if !c.description.is_empty() {
                line.push_str(&format!(" {}", c.description));
            }
            out.push_str(&line);
            out.push('\n');
            if !c.needs.is_empty() {
                let pad = if last { "  " } else { "│ " };
                out.push_str(&format!("{pad}   needs: {}\n", c.needs.join(", ")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_then_checks_with_kind_severity_description_and_needs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let tcp = "[check.tcp]\naddress = \"127.0.0.1:1\"\n";
        std::fs::write(
            &path,
            format!(
                "[[check]]\nid = \"a.first\"\nphase = \"config\"\ndescription = \"The first\"\n{tcp}\n\
                 [[check]]\nid = \"a.second\"\nphase = \"config\"\nseverity = \"warn\"\nneeds = [\"a.first\"]\n{tcp}\n\
                 [[check]]\nid = \"b.later\"\nphase = \"services\"\nneeds = [\"a.first\", \"a.second\"]\n{tcp}"
            ),
        )
        .unwrap();
        let profiles = crate::profile::load(
            &[path],
            &crate::profile::Target::local(),
            Default::default(),
        )
        .unwrap();
        let plan = Plan::build(profiles.checks, &[]).unwrap();
        assert_eq!(
            render(&plan),
            "phase 1/10 config (2 checks)\n\
             ├─ a.first [tcp] The first\n\
             └─ a.second [tcp, warn]\n\
             \x20    needs: a.first\n\
             phase 4/10 services (1 checks)\n\
             └─ b.later [tcp]\n\
             \x20    needs: a.first, a.second\n"
        );
    }
}
