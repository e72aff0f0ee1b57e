//! Redaction: masks secrets in every text that could reach a transcript,
//! a console or a JUnit file. Known secret values (from the target) and
//! common secret shapes (PEM private keys, passwords in URLs and key=value
//! pairs, bearer tokens, access tokens) become `[REDACTED]`.

use base64::Engine;

pub const MASK: &str = "[REDACTED]";

/// Secrets shorter than this are not masked by value (they would mask
/// ordinary words); targets should not use such secrets anyway.
pub const MIN_SECRET_LEN: usize = 4;

#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Secret values and their base64 forms, longest first.
    values: Vec<String>,
}

impl Redactor {
    pub fn new(secret_values: Vec<String>) -> Redactor {
        let mut values: Vec<String> = Vec::new();
        for s in secret_values {
            if s.len() < MIN_SECRET_LEN {
                continue;
            }
            values.push(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
            values.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes()));
            values.push(s);
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// Masks every known secret and secret-shaped text in `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        let out = mask_pem_private_keys(&out);
        let out = mask_url_passwords(&out);
        let out = mask_after_keys(&out);
        let out = mask_authorization(&out);
        mask_bearer(&out)
    }

    /// Whether `text` still holds a known secret value (a final guard).
    pub fn leaks(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }
}

fn mask_pem_private_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let header_end = rest[start..]
            .find("-----\n")
            .or_else(|| rest[start + 11..].find("-----").map(|i| i + 11));
        let header = header_end.map(|e| &rest[start..start + e]).unwrap_or("");
        if !header.contains("PRIVATE KEY") {
            out.push_str(&rest[..start + 11]);
            rest = &rest[start + 11..];
            continue;
        }
        out.push_str(&rest[..start]);
        match rest[start..].find("-----END ") {
            Some(end_rel) => {
                let end = start + end_rel;
                let tail = rest[end + 9..]
                    .find("-----")
                    .map(|i| end + 9 + i + 5)
                    .unwrap_or(rest.len());
                out.push_str(MASK);
                rest = &rest[tail..];
            }
            None => {
                out.push_str(MASK);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `scheme://user:password@host` -> `scheme://user:[REDACTED]@host`.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let authority_end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                out.push_str(&authority[..colon + 1]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
                rest = &rest[authority_end..];
                continue;
            }
        }
    }
    out.push_str(rest);
    out
}

const SECRET_KEYS: [&str; 9] = [
    "password",
    "passwd",
    "secret",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "private_token",
    "api_key",
];

/// `password=x`, `password: x`, `"password": "x"`, JSON inside a JSON string
/// (`\"password\":\"x\"`) and header spellings (`PRIVATE-TOKEN: x`) keep the
/// key and lose the value.
fn mask_after_keys(text: &str) -> String {
    // `-` -> `_` keeps byte offsets and lets `private_token` match the
    // `PRIVATE-TOKEN` header GitLab uses.
    let lower = text.to_ascii_lowercase().replace('-', "_");
    let bytes = text.as_bytes();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for key in SECRET_KEYS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(key) {
            let key_end = from + pos + key.len();
            from = key_end;
            // Skip an optional closing quote, spaces, then `=` or `:`.
            let mut i = key_end;
            if bytes[i..].starts_with(b"\\\"") {
                i += 2;
            } else if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                i += 1;
            }
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if i >= bytes.len() || (bytes[i] != b'=' && bytes[i] != b':') {
                continue;
            }
            i += 1;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if bytes[i..].starts_with(b"\\\"") {
                let start = i + 2;
                let end = text[start..].find("\\\"").map_or(text.len(), |e| start + e);
                if end > start {
                    cuts.push((start, end));
                }
                continue;
            }
            let quoted = i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'');
            let start = if quoted { i + 1 } else { i };
            let mut end = start;
            while end < bytes.len() {
                let c = bytes[end];
                let stop = if quoted {
                    c == bytes[i]
                } else {
                    c.is_ascii_whitespace()
                        || c == b'&'
                        || c == b','
                        || c == b';'
                        || c == b'}'
                        || c == b'"'
                };
                if stop {
                    break;
                }
                end += 1;
            }
            if end > start && text.is_char_boundary(start) && text.is_char_boundary(end) {
                cuts.push((start, end));
            }
        }
    }
    apply_cuts(text, cuts)
}

/// `Authorization: <scheme> <credentials>` (Basic, token, Bearer...) and
/// `"authorization": "..."`: the credentials go, the scheme word stays.
fn mask_authorization(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut cuts = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("authorization") {
        let mut i = from + pos + "authorization".len();
        from = i;
        if bytes[i..].starts_with(b"\\\"") {
            i += 2;
        } else if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() || (bytes[i] != b':' && bytes[i] != b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'"' | b'\'' | b'\\') {
            i += 1;
        }
        let word_end = (i..bytes.len())
            .find(|&j| !bytes[j].is_ascii_alphabetic())
            .unwrap_or(bytes.len());
        let start = if word_end < bytes.len() && bytes[word_end] == b' ' {
            word_end + 1
        } else {
            i
        };
        let end = (start..bytes.len())
            .find(|&j| !(bytes[j].is_ascii_alphanumeric() || b"-._~+/=".contains(&bytes[j])))
            .unwrap_or(bytes.len());
        if end > start {
            cuts.push((start, end));
        }
    }
    apply_cuts(text, cuts)
}

fn mask_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut cuts = Vec::new();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("bearer ") {
        let start = from + pos + 7;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .map(|e| start + e)
            .unwrap_or(text.len());
        if end > start {
            cuts.push((start, end));
        }
        from = start;
    }
    apply_cuts(text, cuts)
}

fn apply_cuts(text: &str, mut cuts: Vec<(usize, usize)>) -> String {
    if cuts.is_empty() {
        return text.to_string();
    }
    cuts.sort();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start < at {
            continue;
        }
        if text[start..end] == *MASK {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(secrets: &[&str], input: &str, expect: &str) {
        let r = Redactor::new(secrets.iter().map(|s| s.to_string()).collect());
        assert_eq!(r.redact(input), expect, "input: {input}");
    }

    #[test]
    fn known_values_and_their_base64() {
        check(
            &["hunter22"],
            "login hunter22 failed",
            "login [REDACTED] failed",
        );
        check(&["hunter22"], "basic aHVudGVyMjI=", "basic [REDACTED]");
        check(
            &["abc"],
            "abc is too short to mask",
            "abc is too short to mask",
        );
    }

    #[test]
    fn secret_shapes() {
        check(
            &[],
            "postgresql://rave:s3cr3t@db:5432/x",
            "postgresql://rave:[REDACTED]@db:5432/x",
        );
        check(&[], "password=s3cr3t&user=a", "password=[REDACTED]&user=a");
        check(
            &[],
            r#"{"password": "s3 cr3t", "user": "a"}"#,
            r#"{"password": "[REDACTED]", "user": "a"}"#,
        );
        check(
            &[],
            "client_secret: xyz\nnext",
            "client_secret: [REDACTED]\nnext",
        );
        check(
            &[],
            "Authorization: Bearer syt_abc.def",
            "Authorization: Bearer [REDACTED]",
        );
        check(
            &[],
            r#"{"access_token":"syt_x"}"#,
            r#"{"access_token":"[REDACTED]"}"#,
        );
        check(
            &[],
            "a\n-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----\nb",
            "a\n[REDACTED]\nb",
        );
        check(
            &[],
            "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----",
        );
        check(
            &[],
            "PasswordAuthentication no",
            "PasswordAuthentication no",
        );
        check(&[], "no secrets here", "no secrets here");
    }

    #[test]
    fn authorization_credentials_of_any_scheme() {
        check(
            &[],
            "authorization: Basic dXNlcjpwYXNz\n",
            "authorization: Basic [REDACTED]\n",
        );
        check(
            &[],
            r#""Authorization": "token glpat-abcdef""#,
            r#""Authorization": "token [REDACTED]""#,
        );
        check(&[], "Authorization=c2VjcmV0", "Authorization=[REDACTED]");
        check(&[], "no authorization header", "no authorization header");
    }

    #[test]
    fn gitlab_header_and_json_inside_json_strings() {
        check(
            &[],
            "PRIVATE-TOKEN: glpat-xyz123 next",
            "PRIVATE-TOKEN: [REDACTED] next",
        );
        check(
            &[],
            r#"{\"password\":\"p4ss\",\"user\":\"a\"}"#,
            r#"{\"password\":\"[REDACTED]\",\"user\":\"a\"}"#,
        );
        check(
            &[],
            r#"log: {\"access_token\": \"syt_abc\"}"#,
            r#"log: {\"access_token\": \"[REDACTED]\"}"#,
        );
    }

    #[test]
    fn redaction_is_idempotent() {
        let r = Redactor::new(vec!["topsecret".into()]);
        let input =
            "password=x Authorization: Basic abc topsecret postgres://u:p@h/ \"password\":\"y\"";
        let once = r.redact(input);
        assert_eq!(r.redact(&once), once);
    }

    #[test]
    fn leaks_detects_what_remains() {
        let r = Redactor::new(vec!["topsecret".into()]);
        assert!(r.leaks("x topsecret"));
        assert!(!r.leaks(&r.redact("x topsecret")));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;
        proptest! {
            #[test]
            fn never_panics_and_never_leaks(text in "\\PC{0,200}", secret in "[a-z0-9]{6,12}") {
                let r = Redactor::new(vec![secret.clone()]);
                let input = format!("{text}{secret}{text}");
                let out = r.redact(&input);
                prop_assert!(!out.contains(&secret));
            }
        }
    }
}
