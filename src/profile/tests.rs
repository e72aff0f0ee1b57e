//! Profile errors, table-driven: each case is a TOML snippet and the text
//! the error must contain (file:line:column, field, hint).

use super::*;
use crate::checks::ProbeSpec;

fn load_text(text: &str) -> Result<Profiles, UserErrors> {
    load_texts(&[("p.toml", text)])
}

fn load_texts(files: &[(&str, &str)]) -> Result<Profiles, UserErrors> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    std::fs::write(dir.path().join("facts.json"), r#"{"ports":{"ssh":22,"open":[22,3002]},"budgets":{"safe":{"build_seconds":900},"full_pipe":{"build_seconds":1800}}}"#).unwrap();
    let mut target = Target::local();
    target.values.set("db.host", "127.0.0.1");
    load(&paths, &target, LoadOptions::default())
}

fn check_err(text: &str, needles: &[&str]) {
    let err = load_text(text)
        .expect_err("profile must be rejected")
        .to_string();
    for needle in needles {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

const OK: &str = r#"
[profile]
service = "db"
[defaults]
timeout = "3s"
retry = { initial = "100ms", max = "1s" }

[[check]]
id = "db.reachable"
phase = "services"
description = "db port open"
[check.tcp]
address = "${db.host}:5432"

[[check]]
id = "db.more"
phase = "security"
needs = ["db.reachable"]
severity = "warn"
timeout = "1m"
retry = { attempts = 2 }
[check.tcp]
address = "127.0.0.1:1"
open = false
"#;

#[test]
fn a_good_profile_loads_with_defaults_applied() {
    let p = load_text(OK).unwrap();
    assert_eq!(p.checks.len(), 2);
    let a = &p.checks[0];
    assert_eq!(a.service, "db");
    assert_eq!(a.timeout, Duration::from_secs(3));
    assert_eq!(a.retry.max_attempts, None);
    assert_eq!(a.location.line, 9);
    match spec_of(a) {
        ProbeSpec::Tcp(spec) => assert_eq!(spec.address, "127.0.0.1:5432"),
        #[allow(unreachable_patterns)]
        other => panic!("{other:?}"),
    }
    let b = &p.checks[1];
    assert_eq!(b.severity, Severity::Warn);
    assert_eq!(b.timeout, Duration::from_secs(60));
    assert_eq!(b.retry.max_attempts, Some(2));
    assert_eq!(p.sources.len(), 1);
    assert_eq!(p.sources[0].sha256.len(), 64);
    assert!(p.digest().starts_with("sha256:"));
}

#[test]
fn checks_of_a_stand_in_service_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, OK.replace("${db.host}", "127.0.0.1")).unwrap();
    let other = dir.path().join("q.toml");
    std::fs::write(
        &other,
        "[[check]]\nid = \"web.up\"\nphase = \"services\"\n[check.tcp]\naddress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let mut target = Target::local();
    target
        .stand_ins
        .insert("db".into(), "a fake database".into());
    let p = load(&[path, other], &target, LoadOptions::default()).unwrap();
    let marked: Vec<(&str, bool)> = p
        .checks
        .iter()
        .map(|c| (c.id.as_str(), c.stand_in))
        .collect();
    assert_eq!(
        marked,
        [("db.reachable", true), ("db.more", true), ("web.up", false)]
    );
}

#[test]
fn malformed_toml_names_line_and_column() {
    check_err("[[check]]\nid = \"a\"\nphase = \n", &["p.toml:3:", "hint:"]);
}

#[test]
fn unknown_field_is_named_with_its_position() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\ntimout = \"1s\"\n[check.tcp]\naddress = \"x:1\"\n",
        &["unknown field `timout`", "p.toml:4:1", "field: timout"],
    );
}

#[test]
fn unknown_probe_kind_lists_the_kinds() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcpp]\naddress = \"x:1\"\n",
        &["unknown field `tcpp`", "p.toml:4:", "kinds: tcp"],
    );
}

#[test]
fn unknown_field_inside_a_probe_table() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcp]\nadress = \"x:1\"\n",
        &["unknown field `adress`", "p.toml:4:", "check[0].tcp"],
    );
}

#[test]
fn a_wrong_via_names_both_routes_and_the_table() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:1\"\nvia = \"ssh\"\n",
        &["`via = \"ssh\"` is not a route", "via = \"direct\"", "via = \"host\"", "p.toml:4:", "check[0].tcp"],
    );
}

#[test]
fn a_systemd_field_its_assertion_ignores_stops_the_load() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.systemd]\nassert = \"system_running\"\nmax_restarts = 2\n",
        &["`max_restarts` does not apply to `assert = \"system_running\"`", "p.toml:4:"],
    );
}

#[test]
fn unknown_phase_lists_the_phases() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"servces\"\n[check.tcp]\naddress = \"x:1\"\n",
        &["unknown variant `servces`", "services", "p.toml:3:"],
    );
}

#[test]
fn when_is_on_success_unless_always_and_nothing_else() {
    let p = load_text(
        "[[check]]\nid = \"a\"\nphase = \"e2e\"\n[check.tcp]\naddress = \"x:1\"\n\n[[check]]\nid = \"b\"\nphase = \"e2e\"\nneeds = [\"a\"]\nwhen = \"always\"\n[check.tcp]\naddress = \"x:1\"\n",
    )
    .unwrap();
    assert_eq!(p.checks[0].when, crate::check::When::OnSuccess);
    assert_eq!(p.checks[1].when, crate::check::When::Always);
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"e2e\"\nwhen = \"sometimes\"\n[check.tcp]\naddress = \"x:1\"\n",
        &["unknown variant `sometimes`", "always", "p.toml:4:", "field: when"],
    );
}

#[test]
fn missing_or_extra_probe_tables() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\n",
        &["has no probe table", "p.toml:2:"],
    );
}

#[test]
fn duplicate_ids_point_at_both_definitions() {
    let one = "[[check]]\nid = \"a.b\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:1\"\n";
    let err = load_texts(&[("one.toml", one), ("two.toml", one)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("duplicate check id `a.b`"), "{err}");
    assert!(err.contains("two.toml:2:"), "{err}");
    assert!(
        err.contains("first defined at") && err.contains("one.toml:2:"),
        "{err}"
    );
}

#[test]
fn unknown_need_suggests_the_closest_id() {
    // The appended check starts on line 26 of the text: its `needs` is line 29.
    check_err(
        &format!("{OK}\n[[check]]\nid = \"c\"\nphase = \"security\"\nneeds = [\"db.reachble\"]\n[check.tcp]\naddress = \"x:1\"\n"),
        &[
            "needs unknown check `db.reachble`",
            "p.toml:29:10",
            "did you mean `db.reachable`?",
        ],
    );
}

#[test]
fn needing_a_later_phase_is_refused() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\nneeds = [\"b\"]\n[check.tcp]\naddress = \"x:1\"\n[[check]]\nid = \"b\"\nphase = \"security\"\n[check.tcp]\naddress = \"x:1\"\n",
        &["needs `b` of the later phase security", "p.toml:4:10"],
    );
}

/// `needs` errors point at the entry at fault, not at the check's `id`.
#[test]
fn needs_errors_point_at_the_entry() {
    let two = |a_needs: &str, b_needs: &str| {
        format!("[[check]]\nid = \"a\"\nphase = \"config\"\nneeds = {a_needs}\n[check.tcp]\naddress = \"x:1\"\n[[check]]\nid = \"b\"\nphase = \"config\"\nneeds = {b_needs}\n[check.tcp]\naddress = \"x:1\"\n")
    };
    // The second entry of a one-line list.
    check_err(
        &two("[\"b\", \"zz\"]", "[]"),
        &["needs unknown check `zz`", "p.toml:4:15", "field: needs"],
    );
    // An entry on its own line of a multi-line list.
    check_err(
        &two("[\n  \"b\",\n  \"zz\",\n]", "[]"),
        &["needs unknown check `zz`", "p.toml:6:3"],
    );
    check_err(
        &two("[\"a\"]", "[]"),
        &["check `a` needs itself", "p.toml:4:10"],
    );
    // A cycle points at the entry of its first check that names the next.
    check_err(
        &two("[\"b\"]", "[\"a\"]"),
        &[
            "dependency cycle: a -> b -> a",
            "p.toml:4:10",
            "remove one of these",
        ],
    );
    // The entry of the second check, in the second file.
    let err = load_texts(&[
        ("one.toml", "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:1\"\n"),
        ("two.toml", "[[check]]\nid = \"b\"\nphase = \"config\"\n\nneeds = [\"a\", \"c\"]\n[check.tcp]\naddress = \"x:1\"\n"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("two.toml:5:15"), "{err}");
}

#[test]
fn undefined_target_var_names_the_var_and_the_fix() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcp]\naddress = \"${nope.host}:1\"\n",
        &[
            "`${nope.host}`",
            "p.toml:5:12",
            "check[0].tcp.address",
            "add `nope.host",
            "[vars]",
        ],
    );
}

/// Unknown `${var}` and `${secret:...}` point at the reference inside the
/// string that holds it, not at the table header.
#[test]
fn unknown_references_point_at_the_string() {
    let tcp = |body: &str| {
        format!("[[check]]\nid = \"a\"\nphase = \"config\"\n\n[check.tcp]\nopen = true\n{body}\n")
    };
    check_err(
        &tcp("address = \"x:${secret:pw}\""),
        &[
            "refers to secret `pw`, which the target does not define",
            "p.toml:7:14",
            "field: check[0].tcp.address",
        ],
    );
    check_err(
        &tcp("address = \"${db.host}:${db.port}\""),
        &["`${db.port}`", "p.toml:7:23"],
    );
    // In a list, in an inline table, in a multi-line string.
    check_err(
        &tcp("list = [\"echo\", \"${nope}\"]"),
        &["`${nope}`", "p.toml:7:18", "field: check[0].tcp.list[1]"],
    );
    check_err(
        &tcp("inner = { x = 1, y = \"${nope}\" }"),
        &["`${nope}`", "p.toml:7:23", "field: check[0].tcp.inner.y"],
    );
    check_err(
        &tcp("address = \"\"\"\nhost ${nope}\"\"\""),
        &["`${nope}`", "p.toml:8:6"],
    );
    check_err(
        &tcp("address = \"x:${open\""),
        &["unclosed `${`", "p.toml:7:14"],
    );
    // The second check of the file.
    check_err(
        &format!(
            "{}{}",
            tcp("address = \"x:1\"").replace("id = \"a\"", "id = \"z\""),
            tcp("address = \"${nope}\"")
        ),
        &["`${nope}`", "p.toml:14:12", "field: check[1].tcp.address"],
    );
}

#[test]
fn bad_values_are_explained() {
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\ntimeout = \"10\"\n[check.tcp]\naddress = \"x:1\"\n",
        &["missing unit", "p.toml:4:"],
    );
    check_err(
        "[[check]]\nid = \"A B\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:1\"\n",
        &["invalid check id `A B`", "dotted lowercase"],
    );
    check_err(
        "[[check]]\nid = \"a\"\nphase = \"config\"\nretry = { attempts = 0 }\n[check.tcp]\naddress = \"x:1\"\n",
        &["retry.attempts must be at least 1"],
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let err = load_text(
        "[[check]]\nid = \"a\"\nphase = \"config\"\n\n[[check]]\nid = \"B\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:1\"\n",
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
}

#[test]
fn facts_become_typed_vars_and_budgets_follow_safe_mode() {
    let text = "[profile]\nfacts = \"facts.json\"\n[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcp]\naddress = \"127.0.0.1:${facts.ports.ssh}\"\n[[check]]\nid = \"b\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:${budget.build_seconds}\"\n";
    let p = load_text(text).unwrap();
    match (spec_of(&p.checks[0]), spec_of(&p.checks[1])) {
        (ProbeSpec::Tcp(a), ProbeSpec::Tcp(b)) => {
            assert_eq!(a.address, "127.0.0.1:22");
            assert_eq!(b.address, "x:900");
        }
        #[allow(unreachable_patterns)]
        other => panic!("{other:?}"),
    }
    check_err(
        "[profile]\nfacts = \"missing.json\"\n",
        &["cannot read facts file", "profile.facts"],
    );
}

#[test]
fn a_profile_without_checks_is_an_error_naming_the_file() {
    for text in ["", "# only a comment\n", "[profile]\nname = \"x\"\n"] {
        let err = load_text(text).expect_err(text).to_string();
        assert!(
            err.contains("profile holds no [[check]]") && err.contains("p.toml"),
            "{text:?}: {err}"
        );
        assert!(err.contains("hint: add a `[[check]]` table"), "{err}");
    }
}

#[test]
fn an_empty_file_in_a_profile_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = "[[check]]\nid = \"a\"\nphase = \"config\"\n[check.tcp]\naddress = \"x:1\"\n";
    std::fs::write(dir.path().join("a.toml"), good).unwrap();
    std::fs::write(dir.path().join("b.toml"), "").unwrap();
    let err = load(
        &[dir.path().to_path_buf()],
        &Target::local(),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("holds no [[check]]") && text.contains("b.toml") && !text.contains("a.toml"),
        "{text}"
    );
}

#[test]
fn missing_profile_path_is_a_clear_error() {
    let err = load(
        &[PathBuf::from("/nonexistent/x.toml")],
        &Target::local(),
        LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("profile not found") && err.contains("/nonexistent/x.toml"),
        "{err}"
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Arbitrary text never panics the profile loader.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = load_text(&text);
        }

        /// Mutations of a valid profile never panic either.
        #[test]
        fn mutated_profiles_never_panic(pos in 0usize..400, byte in any::<u8>()) {
            let mut bytes = OK.as_bytes().to_vec();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let _ = load_text(&text);
        }
    }
}

fn spec_of(check: &crate::check::Check) -> &ProbeSpec {
    check
        .probe
        .as_any()
        .downcast_ref::<ProbeSpec>()
        .expect("profiles load into ProbeSpec")
}

#[test]
fn run_id_is_one_per_load_and_the_target_may_fix_it() {
    let text = |id: &str| {
        format!("[[check]]\nid = \"{id}\"\nphase = \"config\"\n[check.command]\nrun = [\"echo\", \"p-${{run.id}}\"]\n")
    };
    let loaded = load_texts(&[("a.toml", &text("a.one")), ("b.toml", &text("b.two"))]).unwrap();
    let argv: Vec<String> = loaded
        .checks
        .iter()
        .map(|c| format!("{:?}", c.probe))
        .collect();
    let id_of = |debug: &str| {
        let start = debug.find("p-").unwrap() + 2;
        debug[start..start + 8].to_string()
    };
    let first = id_of(&argv[0]);
    assert!(first.chars().all(|c| c.is_ascii_hexdigit()), "{first}");
    assert_eq!(first, id_of(&argv[1]), "one id per load");
    let again = load_texts(&[("a.toml", &text("a.one"))]).unwrap();
    assert_ne!(first, id_of(&format!("{:?}", again.checks[0].probe)));
}
