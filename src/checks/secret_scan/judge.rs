//! The rules of the secret scan (pure: lines in, findings out) and the
//! judgement of a scan against its allow-list.
//!
//! Rules: `private-key` (a PEM or OpenSSH private key header), `aws-key`
//! (AKIA/ASIA access key ids), `gitlab-token` (glpat-, glrt-, gldt-, glptt-),
//! `github-token` (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_), `slack-token`
//! (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xapp-), `matrix-token` (syt_),
//! `age-key` (AGE-SECRET-KEY-1), `password-assignment` (a secret-named key
//! assigned a quoted literal) and `high-entropy` (a long random-looking
//! quoted literal in any assignment). A finding never carries the secret:
//! only a rule's public prefix and the length.

use super::spec::Spec;
use crate::check::Verdict;
use crate::text::glob_match;

/// One hit: where, which rule, and the secret redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Relative to the scanned root.
    pub file: String,
    pub line: usize,
    pub rule: &'static str,
    pub redacted: String,
}

/// What the scan saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub findings: Vec<Finding>,
    pub files_scanned: usize,
    pub bytes_scanned: u64,
    pub skipped_binary: usize,
    /// Files over `max_file_size` (relative paths): not scanned.
    pub skipped_large: Vec<String>,
    /// Roots or files that could not be read.
    pub errors: Vec<String>,
    /// Set when the scan stopped early (the deadline).
    pub incomplete: Option<String>,
}

/// The entropy rule's knobs.
#[derive(Debug, Clone, Copy)]
pub struct Entropy {
    pub min_length: usize,
    pub min_bits: f64,
}

/// A token rule: name, prefix, the characters that follow, how many at least.
type TokenRule = (&'static str, &'static str, fn(u8) -> bool, usize);

const TOKENS: &[TokenRule] = &[
    ("gitlab-token", "glpat-", token_char, 20),
    ("gitlab-token", "glrt-", token_char, 20),
    ("gitlab-token", "gldt-", token_char, 20),
    ("gitlab-token", "glptt-", token_char, 20),
    ("github-token", "ghp_", alnum, 36),
    ("github-token", "gho_", alnum, 36),
    ("github-token", "ghu_", alnum, 36),
    ("github-token", "ghs_", alnum, 36),
    ("github-token", "ghr_", alnum, 36),
    ("github-token", "github_pat_", token_char, 40),
    ("slack-token", "xoxb-", slack_char, 10),
    ("slack-token", "xoxp-", slack_char, 10),
    ("slack-token", "xoxa-", slack_char, 10),
    ("slack-token", "xoxr-", slack_char, 10),
    ("slack-token", "xoxs-", slack_char, 10),
    ("slack-token", "xapp-", slack_char, 10),
    ("matrix-token", "syt_", token_char, 20),
    ("age-key", "AGE-SECRET-KEY-1", upper_alnum, 50),
    ("aws-key", "AKIA", upper_alnum, 16),
    ("aws-key", "ASIA", upper_alnum, 16),
];

/// Key names whose quoted value is a secret.
const SECRET_NAMES: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "access_key",
    "client_secret",
];

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn slack_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}
fn upper_alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

/// Every finding in `text` (the file `file`), one per rule and line.
pub fn scan_text(file: &str, text: &str, entropy: Entropy) -> Vec<Finding> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut hit = |rule: &'static str, redacted: String| {
            if !out
                .iter()
                .any(|f: &Finding| f.line == index + 1 && f.rule == rule)
            {
                out.push(Finding {
                    file: file.to_string(),
                    line: index + 1,
                    rule,
                    redacted,
                });
            }
        };
        if let Some(label) = private_key_label(line) {
            hit("private-key", format!("{label} block"));
        }
        for (rule, prefix, allowed, min) in TOKENS {
            if let Some(len) = token_at(line, prefix, *allowed, *min) {
                hit(rule, format!("{prefix}… ({len} chars)"));
            }
        }
        for (key, value) in assignments(line) {
            let name = key.to_ascii_lowercase();
            if SECRET_NAMES.iter().any(|n| name.ends_with(n))
                && is_literal_secret(value)
                && !names_a_store_entry(&name, value)
            {
                hit(
                    "password-assignment",
                    format!("`{key}` = … ({} chars)", value.chars().count()),
                );
            } else if is_high_entropy(value, entropy) {
                hit(
                    "high-entropy",
                    format!("`{key}` = … ({} chars)", value.chars().count()),
                );
            }
        }
    }
    out
}

/// `secret = "host_ssh_key"`: a target's reference to an entry of its
/// secret store (`identity = { secret = "NAME" }`), a name, not a value.
fn names_a_store_entry(key: &str, value: &str) -> bool {
    key == "secret"
        && value.contains('_')
        && value.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// `RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`... of a `-----BEGIN <label>-----`
/// header that opens a key: at the start of the line (a PEM file, a YAML
/// block), or followed by an escaped newline and a base64 body (a key in a
/// JSON string). A header merely mentioned in code is not a key.
fn private_key_label(line: &str) -> Option<&str> {
    let at = line.find("-----BEGIN ")?;
    let rest = &line[at + "-----BEGIN ".len()..];
    let end = rest.find("-----")?;
    let label = &rest[..end];
    let is_key = label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ')
        && (label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK"));
    let body = rest[end + 5..].strip_prefix("\\n").unwrap_or("");
    let body_len = body
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .count();
    let opens = line[..at].trim().is_empty() || body_len >= 40;
    (is_key && opens).then_some(label)
}

/// The length of a token starting with `prefix` at a word start in `line`.
fn token_at(line: &str, prefix: &str, allowed: fn(u8) -> bool, min: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(pos) = line[from..].find(prefix) {
        let at = from + pos;
        from = at + prefix.len();
        if at > 0 && bytes[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let body = bytes[from..].iter().take_while(|b| allowed(**b)).count();
        if body >= min {
            return Some(prefix.len() + body);
        }
    }
    None
}

/// `(key, value)` of each `key = "value"` / `key: 'value'` / `"key": "value"`
/// in `line`: a name, then `=` or `:` (not `==`, `=>`, `::`), then a quoted
/// literal.
fn assignments(line: &str) -> Vec<(&str, &str)> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'=' && b != b':' {
            continue;
        }
        let next = bytes.get(i + 1).copied();
        let prev = if i > 0 { bytes[i - 1] } else { b' ' };
        if next == Some(b'=') || next == Some(b'>') || next == Some(b':') || prev == b':' || prev == b'=' || prev == b'!' || prev == b'<' || prev == b'>' {
            continue;
        }
        // The key: name characters before, past spaces and a closing quote.
        let mut end = i;
        while end > 0 && bytes[end - 1] == b' ' {
            end -= 1;
        }
        if end > 0 && (bytes[end - 1] == b'"' || bytes[end - 1] == b'\'') {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || matches!(bytes[start - 1], b'_' | b'-' | b'.')) {
            start -= 1;
        }
        if start == end {
            continue;
        }
        // The value: a quoted literal after spaces.
        let mut v = i + 1;
        while v < bytes.len() && bytes[v] == b' ' {
            v += 1;
        }
        let Some(&quote) = bytes.get(v) else { continue };
        if quote != b'"' && quote != b'\'' {
            continue;
        }
        let Some(close) = line[v + 1..].find(quote as char) else {
            continue;
        };
        out.push((&line[start..end], &line[v + 1..v + 1 + close]));
    }
    out
}

/// Words that mark a value as a placeholder or a test value.
const PLACEHOLDER_WORDS: [&str; 12] = [
    "example", "fake", "dummy", "placeholder", "test", "not-", "changeme", "redacted", "removed",
    "secret", "password", "token",
];

/// A literal that looks like a real credential rather than a placeholder,
/// a reference or prose.
fn is_literal_secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.chars().count() >= 8
        && !PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w))
        && !value.starts_with('[')
        && !value.contains(char::is_whitespace)
        && !value.contains("${")
        && !value.contains("{{")
        && !value.contains('{')
        && !value.starts_with('$')
        && !value.starts_with('<')
        && !value.starts_with("ENC[")
        && !value.starts_with('/')
        && !value.contains("REDACTED")
        && !value.chars().all(|c| c == value.chars().next().unwrap_or(' '))
}

/// A long, mixed-case, digit-bearing token of base64/url-safe characters
/// whose Shannon entropy reaches the threshold; digests (`sha256-...`) and
/// lowercase hex (commit ids) are not secrets.
fn is_high_entropy(value: &str, entropy: Entropy) -> bool {
    let b = value.as_bytes();
    b.len() >= entropy.min_length
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-'))
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_uppercase)
        && !["sha1-", "sha256-", "sha384-", "sha512-"].iter().any(|p| value.starts_with(p))
        && shannon_bits(value) >= entropy.min_bits
}

/// Bits per character of `text`'s character distribution.
pub fn shannon_bits(text: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in text.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&n| {
            let p = n as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}

/// At most this many findings are listed in `found`.
const LISTED: usize = 10;

pub fn judge(spec: &Spec, facts: &Facts) -> Verdict {
    let roots: Vec<String> = spec.paths.iter().map(|p| p.display().to_string()).collect();
    let expected = format!("no hardcoded secret in {}", roots.join(", "));
    let (allowed, open): (Vec<&Finding>, Vec<&Finding>) = facts.findings.iter().partition(|f| allow_for(spec, f).is_some());
    let mut evidence: Vec<String> = open
        .iter()
        .map(|f| format!("{}:{} {} {}", f.file, f.line, f.rule, f.redacted))
        .collect();
    evidence.extend(allowed.iter().filter_map(|f| {
        allow_for(spec, f).map(|reason| format!("allowed {}:{} {} ({reason})", f.file, f.line, f.rule))
    }));
    if !facts.skipped_large.is_empty() {
        evidence.push(format!(
            "not scanned (over {} bytes): {}",
            spec.max_file_size.0,
            facts.skipped_large.join(", ")
        ));
    }
    let mut problems: Vec<String> = Vec::new();
    if let Some((first, rest)) = open.split_first() {
        let mut listed = vec![format!("{}:{} {} {}", first.file, first.line, first.rule, first.redacted)];
        listed.extend(rest.iter().take(LISTED - 1).map(|f| format!("{}:{} {} {}", f.file, f.line, f.rule, f.redacted)));
        let more = open.len().saturating_sub(LISTED);
        problems.push(format!(
            "{} findings: {}{}",
            open.len(),
            listed.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    problems.extend(facts.errors.iter().cloned());
    if let Some(why) = &facts.incomplete {
        problems.push(format!("scan incomplete: {why}"));
    }
    if facts.files_scanned == 0 && problems.is_empty() {
        problems.push("no file scanned (check `paths` and `exclude`)".into());
    }
    let found = if problems.is_empty() {
        format!(
            "{} files ({} KiB) scanned, no finding{}",
            facts.files_scanned,
            facts.bytes_scanned / 1024,
            if allowed.is_empty() { String::new() } else { format!(" beyond {} allowed", allowed.len()) }
        )
    } else {
        problems.join("; ")
    };
    let verdict = if problems.is_empty() {
        Verdict::pass(expected, found)
    } else {
        Verdict::fail(expected, found)
    };
    verdict
        .with_evidence(evidence.join("\n"))
        .with_metric("files_scanned", facts.files_scanned as f64)
        .with_metric("findings", open.len() as f64)
        .with_metric("allowed", allowed.len() as f64)
        .with_metric("skipped_large", facts.skipped_large.len() as f64)
}

/// The reason of the allow-list entry covering `finding`, if one does.
fn allow_for<'a>(spec: &'a Spec, finding: &Finding) -> Option<&'a str> {
    spec.allow
        .iter()
        .find(|a| glob_match(&a.path, &finding.file) && a.rule.as_deref().is_none_or(|r| r == finding.rule))
        .map(|a| a.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTROPY: Entropy = Entropy {
        min_length: 24,
        min_bits: 4.0,
    };

    /// A planted secret, assembled so that this source file holds none.
    fn planted(prefix: &str, body: &str) -> String {
        format!("{prefix}{body}")
    }

    fn rules_of(line: &str) -> Vec<(&'static str, String)> {
        scan_text("f", line, ENTROPY)
            .into_iter()
            .map(|f| (f.rule, f.redacted))
            .collect()
    }

    #[test]
    fn each_rule_finds_its_shape_and_redacts_it() {
        let random = planted("Zk3Q9vX2mB7n", "L4pR8sT1wY6u");
        let cases: Vec<(String, &str, String)> = vec![
            (planted("-----BEGIN OPENSSH PRIVATE", " KEY-----"), "private-key", "OPENSSH PRIVATE KEY block".into()),
            (planted("-----BEGIN RSA PRIVATE", " KEY-----"), "private-key", "RSA PRIVATE KEY block".into()),
            (format!("token: {}", planted("glpat", "-abcdefghij0123456789")), "gitlab-token", "glpat-… (26 chars)".into()),
            (format!("t = {}", planted("ghp", "_0123456789abcdefghij0123456789abcdef")), "github-token", "ghp_… (40 chars)".into()),
            (format!("SLACK={}", planted("xoxb", "-1234567890-abcdef")), "slack-token", "xoxb-… (22 chars)".into()),
            (format!("tok {}", planted("syt", "_YWxpY2U_abcdefghijklmnop_0a1b2c")), "matrix-token", "syt_… (35 chars)".into()),
            (planted("AKIA", "IOSFODNN7EXAMPLE"), "aws-key", "AKIA… (20 chars)".into()),
            (format!("{}{}", planted("AGE-SECRET", "-KEY-1"), "QQ".repeat(29)), "age-key", "AGE-SECRET-KEY-1… (74 chars)".into()),
            (format!("password = \"{}\"", "hunter2hunter2"), "password-assignment", "`password` = … (14 chars)".into()),
            (format!("db_password: \"{}\"", "Xq7-pL2v"), "password-assignment", "`db_password` = … (8 chars)".into()),
            (format!("\"client_secret\": '{}'", "s3cr3t-v4lue"), "password-assignment", "`client_secret` = … (12 chars)".into()),
            (format!("secret = \"{}\"", "s3cr3t_v4lue"), "password-assignment", "`secret` = … (12 chars)".into()),
            (format!("\"private_key\": \"{}\\n{}\"", planted("-----BEGIN PRIVATE", " KEY-----"), "MIIE".repeat(12)), "private-key", "PRIVATE KEY block".into()),
            (format!("key = \"{random}\""), "high-entropy", "`key` = … (24 chars)".into()),
        ];
        for (line, rule, redacted) in cases {
            let found = rules_of(&line);
            assert!(found.contains(&(rule, redacted.clone())), "{line}: {found:?}, want {rule} {redacted}");
            for (_, r) in &found {
                assert!(!r.contains("hunter2") && !r.contains(&random) && !r.contains("0123456789"), "{r}");
            }
        }
    }

    #[test]
    fn placeholders_digests_and_code_are_not_findings() {
        for line in [
            "password = \"${secret:db}\"",
            "password = \"short\"",
            "password: String,",
            "let token = \"{{ vault }}\";",
            "password = \"********\"",
            "error: \"the token expired\"",
            "narHash = \"sha256-H++/2dMt+5+tErKU+t5z6c4Xedvj9w+UPQYrpygwIPw=\"",
            "rev = \"b8d87f76ea4e4b6f30f2e6eaf3fbb60ff7d87167\"",
            "checksum = \"3fce3b5d91a8fc9492378f23cba86b81770c6d16de6ebba0aaaa\"",
            "name = \"ThisIsAVeryLongIdentifierName\"",
            "password = \"ENC[AES256_GCM,data:abc,iv:x,tag:y,type:str]\"",
            "if a == \"AbCdEfGhIjKlMnOpQrStUvWxYz0123\" {}",
            "ghp_ alone, glpat-short",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN AGE ENCRYPTED FILE-----",
            "xAKIAIOSFODNN7EXAMPLE",
            "assert!(text.starts_with(\"-----BEGIN PRIVATE KEY-----\"));",
            "\"a\\n-----BEGIN PRIVATE KEY-----\\nMC4CAQ\\n-----END PRIVATE KEY-----\"",
            "token_endpoint_auth_method: 'client_secret_basic',",
            "idp_password = \"not-the-password\"",
            "identity = { secret = \"host_ssh_key\" }",
            "\"access_token\": \"[removed]\"",
            "client_secret = \"client-secret-for-tests\"",
        ] {
            assert!(rules_of(line).is_empty(), "{line}: {:?}", rules_of(line));
        }
    }

    fn spec(extra: &str) -> Spec {
        toml::from_str(&format!("paths = [\"/repo\"]\n{extra}")).unwrap()
    }

    fn finding(file: &str, rule: &'static str) -> Finding {
        Finding {
            file: file.into(),
            line: 3,
            rule,
            redacted: "glpat-… (26 chars)".into(),
        }
    }

    #[test]
    fn findings_fail_unless_allowed_with_a_reason() {
        let facts = Facts {
            findings: vec![finding("src/a.rs", "gitlab-token"), finding("tests/data/k.yaml", "password-assignment")],
            files_scanned: 2,
            ..Facts::default()
        };
        let v = judge(&spec(""), &facts);
        assert!(!v.pass && v.found.starts_with("2 findings: src/a.rs:3 gitlab-token glpat-… (26 chars), tests/data/k.yaml:3"), "{v:?}");
        let allow = "[[allow]]\npath = \"tests/data/**\"\nrule = \"password-assignment\"\nreason = \"fixture\"\n";
        let v = judge(&spec(allow), &facts);
        assert!(!v.pass && v.found.starts_with("1 findings: src/a.rs:3"), "{v:?}");
        assert!(v.evidence.contains("allowed tests/data/k.yaml:3 password-assignment (fixture)"), "{v:?}");
        let wrong_rule = "[[allow]]\npath = \"src/**\"\nrule = \"aws-key\"\nreason = \"x\"\n";
        assert!(!judge(&spec(wrong_rule), &facts).pass);
        let all = "[[allow]]\npath = \"**\"\nreason = \"everything\"\n";
        let v = judge(&spec(all), &facts);
        assert!(v.pass && v.found.contains("beyond 2 allowed"), "{v:?}");

        let v = judge(&spec(""), &Facts { files_scanned: 5, ..Facts::default() });
        assert!(v.pass && v.found.starts_with("5 files"), "{v:?}");
        let v = judge(&spec(""), &Facts::default());
        assert!(!v.pass && v.found.contains("no file scanned"), "{v:?}");
        let v = judge(&spec(""), &Facts { files_scanned: 1, incomplete: Some("deadline".into()), ..Facts::default() });
        assert!(!v.pass && v.found.contains("scan incomplete: deadline"), "{v:?}");
        let v = judge(&spec(""), &Facts { files_scanned: 1, errors: vec!["/nope: cannot read".into()], ..Facts::default() });
        assert!(!v.pass && v.found.contains("/nope: cannot read"), "{v:?}");
    }
}
