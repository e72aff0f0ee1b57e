//! Judges what git found on the remote: the ref, its commit (against the
//! API's), the head commit's subject, the files and the absent paths.

use std::collections::BTreeMap;

use super::spec::Spec;
use crate::check::{all_of, excerpt, Verdict};

/// How many of the tree's names a missing file's verdict lists.
const TREE_NAMES: usize = 20;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// The remote as shown (never with credentials).
    pub remote: String,
    /// The user name the credentials were offered as, when any.
    pub username: Option<String>,
    /// Each git step as run and how it ended, for the evidence.
    pub steps: Vec<String>,
    /// The step that failed, when one did.
    pub failure: Option<StepFailure>,
    /// The branch the remote's HEAD names.
    pub remote_head: Option<String>,
    /// Branch and tag names the remote advertises.
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    /// The ref examined (the asked one, else the remote's HEAD branch).
    pub ref_name: Option<String>,
    /// The commit the remote advertises for it; `None`: no such ref.
    pub advertised: Option<String>,
    /// The shallow clone's head commit and its subject.
    pub commit: Option<String>,
    pub subject: Option<String>,
    /// Every file of the clone's tree, sorted.
    pub tree: Vec<String>,
    /// The files read (each up to the probe's cap).
    pub contents: BTreeMap<String, FileText>,
    /// The commit id `commit_from` names, or why none could be read.
    pub expected_commit: Option<Result<String, String>>,
    pub duration_ms: f64,
}

/// A git step that did not succeed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepFailure {
    /// `ls-remote`, `clone`, ...
    pub step: String,
    /// Exit code, timeout or start failure.
    pub reason: String,
    /// The tail of git's stderr, URLs' credentials stripped.
    pub stderr: String,
}

/// One file's text at the ref.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileText {
    pub text: String,
    /// Only the first bytes were read.
    pub truncated: bool,
}

/// Why a git step failed, as a person would say it.
fn failure_text(f: &StepFailure, remote: &str, username: Option<&str>) -> String {
    let err = f.stderr.to_ascii_lowercase();
    let last = f
        .stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or_else(|| f.stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .map(|l| excerpt(l.trim(), 300))
        .unwrap_or_else(|| f.reason.clone());
    let refused = err.contains("authentication failed")
        || err.contains(" 401")
        || err.contains("could not read username")
        || err.contains("could not read password");
    if refused {
        return match username {
            Some(user) => format!("the remote refused the credentials (username {user})"),
            None => format!(
                "{remote} asks for credentials and the check sends none: set `password = \"${{secret:gitlab_token}}\"`"
            ),
        };
    }
    if err.contains(" 403") {
        return format!(
            "the remote denied access (HTTP 403) to {}: {last}",
            username.map_or("anonymous".to_string(), |u| format!("username {u}"))
        );
    }
    if err.contains("ssl certificate problem") || err.contains("server certificate verification")
    {
        return format!("git {} failed: {last} (set `ca_file` to the CA that signed the server's certificate)", f.step);
    }
    if f.reason == "exit code 127" && err.contains("no such file") {
        return format!("git is not installed on this machine (not on PATH): {last}");
    }
    if f.stderr.trim().is_empty() {
        return format!("git {} failed: {}", f.step, f.reason);
    }
    format!("git {} failed ({}): {last}", f.step, f.reason)
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// Up to `TREE_NAMES` names of the tree, for a missing file's verdict.
fn tree_sample(tree: &[String]) -> String {
    if tree.is_empty() {
        return "the tree is empty".into();
    }
    let shown: Vec<&str> = tree.iter().take(TREE_NAMES).map(String::as_str).collect();
    let more = tree.len().saturating_sub(shown.len());
    if more == 0 {
        format!("the tree has: {}", shown.join(", "))
    } else {
        format!("the tree has: {} and {more} more", shown.join(", "))
    }
}

/// Whether `path` is a file of the tree or a directory holding some.
fn exists(tree: &[String], path: &str) -> bool {
    let dir = format!("{path}/");
    tree.iter().any(|p| p == path || p.starts_with(&dir))
}

fn evidence(spec: &Spec, f: &Facts, file_lines: &[String]) -> String {
    let mut e = format!("remote: {}", f.remote);
    if let Some(user) = &f.username {
        e.push_str(&format!(" (as {user})"));
    }
    e.push('\n');
    if let Some(head) = &f.remote_head {
        e.push_str(&format!("remote HEAD: {head}\n"));
    }
    if let Some(r) = &f.ref_name {
        e.push_str(&format!(
            "ref {r}: {}\n",
            f.advertised.as_deref().unwrap_or("not on the remote")
        ));
    }
    if let Some(c) = &f.commit {
        e.push_str(&format!(
            "clone head: {c} {:?}\n",
            f.subject.as_deref().unwrap_or("")
        ));
    }
    if let (Some(c), Some(got)) = (&spec.commit_from, &f.expected_commit) {
        match got {
            Ok(id) => e.push_str(&format!("commit_from: GET {} -> {} = {id}\n", c.url, c.pointer)),
            Err(why) => e.push_str(&format!("commit_from: GET {} -> {why}\n", c.url)),
        }
    }
    for line in file_lines {
        e.push_str(line);
        e.push('\n');
    }
    for step in &f.steps {
        e.push_str(&format!("{step}\n"));
    }
    if let Some(fail) = &f.failure {
        if !fail.stderr.trim().is_empty() {
            e.push_str(&format!("git {} stderr:\n{}\n", fail.step, fail.stderr.trim_end()));
        }
    }
    e.trim_end().to_string()
}

pub fn judge(spec: &Spec, f: &Facts) -> Verdict {
    let wanted = spec
        .git_ref
        .clone()
        .unwrap_or_else(|| "the remote's HEAD".into());
    let head_expected = format!("{} readable at {wanted}", f.remote);
    let early = |found: String| {
        Verdict::fail(head_expected.clone(), found)
            .with_evidence(evidence(spec, f, &[]))
            .with_metric("duration_ms", f.duration_ms)
    };
    if let Some(fail) = &f.failure {
        return early(failure_text(fail, &f.remote, f.username.as_deref()));
    }
    let Some(ref_name) = &f.ref_name else {
        return early(format!(
            "the remote has no HEAD (an empty repository?); branches: {}",
            names(&f.branches)
        ));
    };
    if f.advertised.is_none() {
        return early(format!(
            "no branch or tag `{ref_name}` on the remote (branches: {}; tags: {})",
            names(&f.branches),
            names(&f.tags)
        ));
    }
    let Some(commit) = &f.commit else {
        return early(format!("the clone of {ref_name} has no head commit"));
    };
    let short = &commit[..commit.len().min(12)];
    let mut parts = Vec::new();
    if let Some(from) = &spec.commit_from {
        let e = format!("{ref_name} at the commit {} names", from.url);
        parts.push(match &f.expected_commit {
            Some(Ok(id)) if id.eq_ignore_ascii_case(commit) => {
                Verdict::pass(e, format!("{ref_name} at {commit}, as the API says"))
            }
            Some(Ok(id)) => Verdict::fail(
                e,
                format!("{ref_name} is at {commit}, but {} says {id}", from.url),
            ),
            Some(Err(why)) => Verdict::fail(e, format!("commit_from: {why}")),
            None => Verdict::fail(e, "commit_from was not read"),
        });
    }
    if let Some(needle) = &spec.message_contains {
        let subject = f.subject.clone().unwrap_or_default();
        let e = format!("head commit's subject contains {needle:?}");
        parts.push(if subject.contains(needle.as_str()) {
            Verdict::pass(e, format!("subject {subject:?}"))
        } else {
            Verdict::fail(e, format!("{ref_name}'s head commit {short} has the subject {subject:?}"))
        });
    }
    let mut file_lines = Vec::new();
    for (path, needles) in &spec.files {
        let e = if needles.is_empty() {
            format!("{path} exists")
        } else {
            format!("{path} contains {needles:?}")
        };
        let Some(text) = f.contents.get(path) else {
            let why = if exists(&f.tree, path) {
                format!("{path} at {ref_name} is a directory, not a file")
            } else {
                format!("{path} is missing at {ref_name} ({})", tree_sample(&f.tree))
            };
            file_lines.push(format!("{path}: {why}"));
            parts.push(Verdict::fail(e, why));
            continue;
        };
        let lacking: Vec<&String> = needles
            .iter()
            .filter(|n| !text.text.contains(n.as_str()))
            .collect();
        if lacking.is_empty() {
            file_lines.push(format!("{path}: present, {} byte(s) read", text.text.len()));
            parts.push(Verdict::pass(e, format!("{path} as expected")));
        } else {
            let cut = if text.truncated { " (first 64 KiB read)" } else { "" };
            let found = lacking
                .iter()
                .map(|n| format!("{path} at {ref_name} lacks {n:?}{cut}"))
                .collect::<Vec<_>>()
                .join("; ");
            file_lines.push(format!("{path}: {found}; it begins:\n{}", excerpt(&text.text, 400)));
            parts.push(Verdict::fail(e, found));
        }
    }
    for path in &spec.absent {
        let e = format!("{path} absent");
        if exists(&f.tree, path) {
            file_lines.push(format!("{path}: present"));
            parts.push(Verdict::fail(e, format!("{path} exists at {ref_name}")));
        } else {
            file_lines.push(format!("{path}: absent"));
            parts.push(Verdict::pass(e.clone(), e));
        }
    }
    if parts.is_empty() {
        parts.push(Verdict::pass(
            format!("{ref_name} readable"),
            format!(
                "{ref_name} at {short}: {:?}",
                f.subject.as_deref().unwrap_or("")
            ),
        ));
    }
    let mut v = all_of(parts)
        .with_evidence(evidence(spec, f, &file_lines))
        .with_metric("duration_ms", f.duration_ms);
    if v.pass {
        v.found = format!("{ref_name} at {short}: {}", v.found);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!("url = \"http://git.local/rave/x.git\"\n{extra}")).unwrap()
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn cloned() -> Facts {
        let mut contents = BTreeMap::new();
        contents.insert(
            "README.md".to_string(),
            FileText {
                text: "# hello-world\n".into(),
                truncated: false,
            },
        );
        Facts {
            remote: "http://git.local/rave/x.git".into(),
            ref_name: Some("main".into()),
            remote_head: Some("main".into()),
            branches: vec!["main".into()],
            advertised: Some(A.into()),
            commit: Some(A.into()),
            subject: Some("Add hello world".into()),
            tree: vec!["README.md".into(), ".gitlab-ci.yml".into(), "src/main.rs".into()],
            contents,
            expected_commit: Some(Ok(A.into())),
            ..Facts::default()
        }
    }

    #[test]
    fn cases() {
        let refused = Facts {
            username: Some("oauth2".into()),
            failure: Some(StepFailure {
                step: "ls-remote".into(),
                reason: "exit code 128".into(),
                stderr: "remote: HTTP Basic: Access denied\nfatal: Authentication failed for 'http://git.local/rave/x.git/'\n".into(),
            }),
            ..cloned()
        };
        let no_creds = Facts {
            username: None,
            failure: Some(StepFailure {
                step: "ls-remote".into(),
                reason: "exit code 128".into(),
                stderr: "fatal: could not read Username for 'http://git.local': terminal prompts disabled\n".into(),
            }),
            ..cloned()
        };
        let mut wrong_commit = cloned();
        wrong_commit.expected_commit = Some(Ok(B.into()));
        let no_ref = Facts {
            advertised: None,
            ref_name: Some("hello-world".into()),
            ..cloned()
        };
        let mismatch = format!("main is at {A}, but http://api/b says {B}");
        let table: Vec<(&str, Facts, bool, &str)> = vec![
            ("files = { \"README.md\" = [\"# hello\"] }", cloned(), true, "main at 111111111111"),
            ("files = { \"README.md\" = [\"bye\"] }", cloned(), false, "README.md at main lacks \"bye\""),
            ("files = { \"hello.txt\" = [] }", cloned(), false, "hello.txt is missing at main (the tree has: README.md, .gitlab-ci.yml, src/main.rs)"),
            ("files = { \"src\" = [] }", cloned(), false, "is a directory"),
            ("absent = [\"src\"]", cloned(), false, "src exists at main"),
            ("absent = [\"secret.txt\"]", cloned(), true, "secret.txt absent"),
            ("message_contains = \"goodbye\"", cloned(), false, "has the subject \"Add hello world\""),
            ("message_contains = \"hello world\"", cloned(), true, ""),
            ("commit_from = { url = \"http://api/b\" }", cloned(), true, "as the API says"),
            ("commit_from = { url = \"http://api/b\" }", wrong_commit, false, &mismatch),
            ("password = \"t\"", refused, false, "the remote refused the credentials (username oauth2)"),
            ("", no_creds, false, "asks for credentials and the check sends none"),
            ("ref = \"hello-world\"", no_ref, false, "no branch or tag `hello-world` on the remote (branches: main; tags: none)"),
            ("", Facts { ref_name: None, ..cloned() }, false, "no HEAD"),
        ];
        for (extra, facts, pass, found) in table {
            let v = judge(&spec(extra), &facts);
            assert_eq!(v.pass, pass, "{extra}: {v:?}");
            assert!(v.found.contains(found), "{extra}: {:?}", v.found);
        }
    }

    #[test]
    fn a_missing_file_lists_at_most_twenty_names_and_stderr_is_evidence() {
        let mut f = cloned();
        f.tree = (0..30).map(|i| format!("f{i:02}")).collect();
        let v = judge(&spec("files = { \"x\" = [] }"), &f);
        assert!(v.found.contains("f19 and 10 more") && !v.found.contains("f20"), "{v:?}");
        let f = Facts {
            failure: Some(StepFailure {
                step: "clone".into(),
                reason: "exit code 128".into(),
                stderr: "fatal: unable to access 'https://git.local/': SSL certificate problem: unable to get local issuer certificate\n".into(),
            }),
            ..cloned()
        };
        let v = judge(&spec(""), &f);
        assert!(!v.pass && v.found.contains("set `ca_file`"), "{v:?}");
        assert!(v.evidence.contains("git clone stderr:\nfatal: unable to access"), "{v:?}");
    }
}
