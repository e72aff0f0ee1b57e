//! health-checks/config.toml and health-checks/performance.toml load with
//! the real loader against a target like the demo's, their checks judge
//! this checkout, and the performance budgets follow SAFE_MODE: a peak that
//! passes under FULL_PIPE fails under SAFE.

use std::path::{Path, PathBuf};

use spinup_smoke::check::ProbeContext;
use spinup_smoke::checks::ProbeSpec;
use spinup_smoke::profile::{self, LoadOptions};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target(dir: &Path) -> spinup_smoke::profile::target::Target {
    let path = dir.join("target.toml");
    let pid_dir = dir.join("run");
    std::fs::create_dir_all(&pid_dir).unwrap();
    std::fs::write(
        &path,
        format!(
            "name = \"t\"\n[vars]\nrepo.root = {:?}\nconfig.sops_files = {:?}\nstack.pid_dir = {:?}\npostgres.data_dir = \"/pg\"\n",
            root().display().to_string(),
            root()
                .join("nixos/secrets/*.sops.yaml")
                .display()
                .to_string(),
            pid_dir.display().to_string()
        ),
    )
    .unwrap();
    profile::target::load(&path).unwrap()
}

fn load(name: &str, safe_mode: bool) -> profile::Profiles {
    let dir = tempfile::tempdir().unwrap();
    profile::load(
        &[root().join("health-checks").join(name)],
        &target(dir.path()),
        LoadOptions { safe_mode },
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn spec_of<'a>(profiles: &'a profile::Profiles, id: &str) -> &'a ProbeSpec {
    let check = profiles
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"));
    check.probe.as_any().downcast_ref::<ProbeSpec>().unwrap()
}

/// config.toml with the profiles of the stack's services, against a target
/// that fills their vars and secrets.
fn load_with_services(dir: &Path) -> profile::Profiles {
    let path = dir.join("services-target.toml");
    std::fs::write(dir.join("secret"), "x").unwrap();
    let mut text = format!(
        "name = \"t\"\n[vars]\nrepo.root = {:?}\nconfig.sops_files = {:?}\n",
        root().display().to_string(),
        root()
            .join("nixos/secrets/*.sops.yaml")
            .display()
            .to_string()
    );
    for (var, value) in [
        ("gitlab.url", "http://127.0.0.1:1"),
        ("gitlab.sign_in_offers", "user[password]"),
        ("grafana.url", "http://127.0.0.1:1"),
        ("grafana.oauth_provider", "gitlab"),
        ("idp.issuer", "http://127.0.0.1:1"),
        ("prometheus.url", "http://127.0.0.1:1"),
        ("synapse.url", "http://127.0.0.1:1"),
        ("synapse.server_name", "localhost"),
        ("synapse.operator_user", "op"),
        ("postgres.admin_user", "postgres"),
        ("postgres.databases", "gitlab,synapse,grafana"),
        ("postgres.host", "127.0.0.1"),
        ("postgres.port", "1"),
    ] {
        text.push_str(&format!("{var} = {value:?}\n"));
    }
    text.push_str("[secrets]\n");
    for name in [
        "gitlab_db_password",
        "gitlab_token",
        "grafana_db_password",
        "postgres_admin_password",
        "synapse_db_password",
        "synapse_operator_password",
    ] {
        text.push_str(&format!("{name} = {{ file = \"secret\" }}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let target = profile::target::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    let paths: Vec<PathBuf> = [
        "config.toml",
        "postgres.toml",
        "gitlab.toml",
        "matrix.toml",
        "grafana.toml",
        "prometheus.toml",
    ]
    .iter()
    .map(|n| root().join("health-checks").join(n))
    .collect();
    profile::load(&paths, &target, LoadOptions { safe_mode: true })
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Every service of the facts has a check once its profile is loaded; with
/// config.toml alone, none has, and the check names each one.
#[tokio::test]
async fn a_service_without_checks_fails_services_examined() {
    let ctx = ProbeContext::for_tests(5);
    let dir = tempfile::tempdir().unwrap();
    let all = load_with_services(dir.path());
    let check = all
        .checks
        .iter()
        .find(|c| c.id == "config.p6.services_examined")
        .unwrap();
    let v = check.probe.run(&ctx).await;
    assert!(v.pass, "{v:?}");
    assert!(v.found.contains("postgresql (service `postgres`)"), "{v:?}");

    let alone = load("config.toml", true);
    let check = alone
        .checks
        .iter()
        .find(|c| c.id == "config.p6.services_examined")
        .unwrap();
    let v = check.probe.run(&ctx).await;
    assert!(!v.pass, "{v:?}");
    assert!(
        v.found.starts_with("no check examines gitlab, grafana, postgresql (service `postgres`), prometheus, synapse:"),
        "{v:?}"
    );
}

/// Every config check passes on this checkout (the services examined by
/// the service profiles loaded beside it).
#[tokio::test]
async fn the_config_phase_passes_on_this_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let mut profiles = load_with_services(dir.path());
    profiles.checks.retain(|c| c.phase.to_string() == "config");
    assert!(profiles
        .checks
        .iter()
        .any(|c| c.id == "config.p6.services_examined"));
    let ctx = ProbeContext::for_tests(30);
    for check in &profiles.checks {
        let v = check.probe.run(&ctx).await;
        assert!(v.pass, "{}: {v:?}", check.id);
    }
}

#[tokio::test]
async fn budgets_follow_safe_mode() {
    let measured = spinup_smoke::checks::memory::judge::Facts::Processes {
        processes: vec![spinup_smoke::checks::memory::judge::Process {
            pid: 1,
            comm: "gitlab".into(),
            hwm_kib: 10 << 20,
        }],
        gone: vec![],
    };
    for (safe_mode, budget, pass) in [(true, 8.0, false), (false, 16.0, true)] {
        let profiles = load("performance.toml", safe_mode);
        let ProbeSpec::Memory(spec) = spec_of(&profiles, "performance.peak_memory") else {
            panic!("performance.peak_memory is not a memory check");
        };
        assert_eq!(spec.max_gib, budget, "SAFE_MODE={safe_mode}");
        let v = spinup_smoke::checks::memory::judge::judge(spec, &Ok(measured.clone()));
        assert_eq!(v.pass, pass, "SAFE_MODE={safe_mode}: {v:?}");
        assert!(v.found.starts_with("10.00 GiB"), "{v:?}");

        let ProbeSpec::Budget(build) = spec_of(&profiles, "performance.build_within_budget") else {
            panic!("not a budget check");
        };
        assert_eq!(build.max, 900.0);
        let ProbeSpec::Budget(boot) = spec_of(&profiles, "performance.boot_to_healthy") else {
            panic!("not a budget check");
        };
        assert_eq!(boot.max, 600.0);
        assert_eq!(boot.phases.len(), 2);
    }
}

/// A run that measured a phase beyond its budget fails that budget.
#[tokio::test]
async fn a_phase_over_its_budget_fails() {
    let profiles = load("performance.toml", true);
    let ctx = ProbeContext::for_tests(5);
    ctx.so_far
        .record_phase(spinup_smoke::check::Phase::Services, 301_000);
    ctx.so_far
        .record_phase(spinup_smoke::check::Phase::Boot, 400_000);
    ctx.so_far
        .record_phase(spinup_smoke::check::Phase::Build, 60_000);
    let run = |id: &str| {
        let check = profiles.checks.iter().find(|c| c.id == id).unwrap();
        check.probe.run(&ctx)
    };
    let v = run("performance.health_phase").await;
    assert!(!v.pass && v.found == "phase services = 301.00s", "{v:?}");
    let v = run("performance.boot_to_healthy").await;
    assert!(
        !v.pass && v.found == "phases boot + services = 701.00s",
        "{v:?}"
    );
    // The build phase's own time (a cache lookup) does not count: the
    // build check's build_seconds, the real build's, does.
    let v = run("performance.build_within_budget").await;
    assert!(!v.pass && v.found.contains("recorded no metric"), "{v:?}");
    ctx.so_far.record_metrics(
        "vm.image-builds",
        &[("build_seconds".to_string(), 1200.0)].into(),
    );
    let v = run("performance.build_within_budget").await;
    assert!(!v.pass && v.found.contains("1200"), "{v:?}");
    ctx.so_far.record_metrics(
        "vm.image-builds",
        &[("build_seconds".to_string(), 372.0)].into(),
    );
    let v = run("performance.build_within_budget").await;
    assert!(v.pass, "{v:?}");
}
