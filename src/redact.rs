//! Redaction: masks secrets in any text before it reaches evidence, error
//! messages or a transcript. Known secret values (and their base64 forms) are
//! masked exactly; well-known shapes are masked by pattern: PEM private key
//! blocks, `password=...` / `"password": "..."` style key/value pairs (also
//! `secret`, `token`, `api_key`...), `Authorization:` credentials, bearer
//! tokens and passwords inside URLs (`postgres://user:pw@host`).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::ops::Range;

/// What every masked value becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Secret values shorter than this are not masked by value (masking "a" would
/// mask everything); the patterns still apply.
pub const MIN_SECRET_LEN: usize = 4;

/// Key names (lowercase suffixes) whose values are secrets.
const SENSITIVE_KEY_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "secret_key",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "access_key",
];

/// Masks secrets in text. Cheap to clone; build one per run from the target's
/// resolved `[secrets]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Secret values and their base64 forms, longest first.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values (values shorter than
    /// [`MIN_SECRET_LEN`] are ignored for exact masking).
    pub fn new(secret_values: Vec<String>) -> Redactor {
        let mut needles = Vec::new();
        for secret in secret_values {
            if secret.chars().count() < MIN_SECRET_LEN {
                continue;
            }
            for encoded in [
                STANDARD.encode(&secret),
                STANDARD_NO_PAD.encode(&secret),
                URL_SAFE_NO_PAD.encode(&secret),
            ] {
                needles.push(encoded);
            }
            needles.push(secret);
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// `text` with every secret replaced by `[REDACTED]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = mask_pem_private_keys(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        out = apply(&out, url_password_ranges(&out));
        out = apply(&out, authorization_ranges(&out));
        out = apply(&out, bearer_token_ranges(&out));
        out = apply(&out, key_value_ranges(&out));
        out
    }

    /// Redacts every string (and the value of every sensitive key) inside a
    /// JSON document, in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                let redacted = self.redact(s);
                if redacted != *s {
                    *s = redacted;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if is_sensitive_key(key) && v.is_string() {
                        *v = serde_json::Value::String(REDACTED.to_string());
                    } else {
                        self.redact_json(v);
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_sensitive_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SENSITIVE_KEY_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// Replaces the (possibly overlapping) byte ranges of `text` with `[REDACTED]`.
fn apply(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    if ranges.is_empty() {
        return text.to_string();
    }
    ranges.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for range in ranges {
        if range.end <= cursor {
            continue;
        }
        let start = range.start.max(cursor);
        out.push_str(&text[cursor..start]);
        out.push_str(REDACTED);
        cursor = range.end;
    }
    out.push_str(&text[cursor..]);
    out
}

/// A value that is already masked (or empty) needs no range.
fn worth_masking(value: &str) -> bool {
    !value.is_empty() && value != REDACTED && value != "null"
}

/// `-----BEGIN ... PRIVATE KEY----- ... -----END ... PRIVATE KEY-----`, or to
/// the end of the text when the block was cut off.
fn mask_pem_private_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let header_end = rest[begin + 11..].find("-----").map(|i| begin + 11 + i);
        let is_private = header_end.is_some_and(|end| rest[begin..end].ends_with("PRIVATE KEY"));
        let Some(header_end) = header_end.filter(|_| is_private) else {
            out.push_str(&rest[..begin + 11]);
            rest = &rest[begin + 11..];
            continue;
        };
        out.push_str(&rest[..begin]);
        out.push_str(REDACTED);
        let after_header = header_end + 5;
        let block_end = rest[after_header..]
            .find("-----END ")
            .map(|i| after_header + i)
            .and_then(|end| rest[end + 9..].find("-----").map(|j| end + 9 + j + 5))
            .unwrap_or(rest.len());
        rest = &rest[block_end..];
    }
    out.push_str(rest);
    out
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

/// The password part of `scheme://user:password@host` (postgres, redis, http...).
fn url_password_ranges(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find("://") {
        let authority_start = search_from + found + 3;
        let authority_end = text[authority_start..]
            .find(|c: char| c.is_whitespace() || "/?#\"'<>".contains(c))
            .map_or(text.len(), |i| authority_start + i);
        let authority = &text[authority_start..authority_end];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                let start = authority_start + colon + 1;
                let end = authority_start + at;
                if worth_masking(&text[start..end]) {
                    ranges.push(start..end);
                }
            }
        }
        search_from = authority_end.max(authority_start);
        if search_from >= bytes.len() {
            break;
        }
    }
    ranges
}

/// `Authorization: <scheme> <credentials>` (Bearer, Basic, token...): the credentials.
fn authorization_ranges(text: &str) -> Vec<Range<usize>> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut search_from = 0;
    while let Some(found) = lower[search_from..].find("authorization") {
        let mut i = search_from + found + "authorization".len();
        search_from = i;
        // Optional closing quote of a JSON key, then `:` or `=`.
        if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() || (bytes[i] != b':' && bytes[i] != b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'"' || bytes[i] == b'\'') {
            i += 1;
        }
        // Skip the scheme word when one is present ("Bearer abc"), else mask the whole value.
        let word_end = (i..bytes.len())
            .find(|&j| !bytes[j].is_ascii_alphabetic())
            .unwrap_or(bytes.len());
        let start = if word_end < bytes.len() && bytes[word_end] == b' ' {
            word_end + 1
        } else {
            i
        };
        let end = (start..bytes.len())
            .find(|&j| !is_token_byte(bytes[j]))
            .unwrap_or(bytes.len());
        if worth_masking(&text[start..end]) {
            ranges.push(start..end);
        }
    }
    ranges
}

/// `Bearer <token>` anywhere (tokens of 8+ characters, so prose survives).
fn bearer_token_ranges(text: &str) -> Vec<Range<usize>> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut search_from = 0;
    while let Some(found) = lower[search_from..].find("bearer ") {
        let start = search_from + found + "bearer ".len();
        let end = (start..bytes.len())
            .find(|&j| !is_token_byte(bytes[j]))
            .unwrap_or(bytes.len());
        if end - start >= 8 && worth_masking(&text[start..end]) {
            ranges.push(start..end);
        }
        search_from = start;
    }
    ranges
}

/// The values of sensitive keys: `password=x`, `password: x`, `"password": "x"`,
/// `client_secret = 'x'`, `PGPASSWORD=x`, `access_token=x&...`.
fn key_value_ranges(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let is_key_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.';
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_key_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let key_start = i;
        while i < bytes.len() && is_key_byte(bytes[i]) {
            i += 1;
        }
        let key = &lower[key_start..i];
        if !SENSITIVE_KEY_SUFFIXES.iter().any(|s| key.ends_with(s)) {
            continue;
        }
        let mut j = i;
        if bytes[j..].starts_with(b"\\\"") {
            j += 2;
        } else if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
            j += 1;
        }
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j >= bytes.len() || (bytes[j] != b'=' && bytes[j] != b':') {
            continue;
        }
        j += 1;
        // `==` / `:=` style operators.
        if j < bytes.len() && bytes[j] == b'=' {
            j += 1;
        }
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j >= bytes.len() {
            break;
        }
        if text[j..].starts_with(REDACTED) {
            i = j + REDACTED.len();
            continue;
        }
        let (start, end) = match bytes[j] {
            b'"' => (j + 1, closing_quote(bytes, j + 1, b'"')),
            b'\'' => (j + 1, closing_quote(bytes, j + 1, b'\'')),
            // A JSON escaped quote inside an already-serialised string: `\"x\"`.
            b'\\' if bytes.get(j + 1) == Some(&b'"') => {
                let start = j + 2;
                let end = lower[start..]
                    .find("\\\"")
                    .map_or(bytes.len(), |k| start + k);
                (start, end)
            }
            _ => {
                let end = (j..bytes.len())
                    .find(|&k| bytes[k].is_ascii_whitespace() || b"&;,}\"')]".contains(&bytes[k]))
                    .unwrap_or(bytes.len());
                (j, end)
            }
        };
        if worth_masking(&text[start..end]) {
            ranges.push(start..end);
        }
        i = end.max(i);
    }
    ranges
}

/// Index of the closing `quote` (skipping backslash escapes), or the end.
fn closing_quote(bytes: &[u8], from: usize, quote: u8) -> usize {
    let mut k = from;
    while k < bytes.len() {
        match bytes[k] {
            b'\\' => k += 2,
            b if b == quote => return k,
            _ => k += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(secrets: &[&str], input: &str, expect: &str) {
        let redactor = Redactor::new(secrets.iter().map(|s| s.to_string()).collect());
        assert_eq!(redactor.redact(input), expect, "input: {input}");
    }

    #[test]
    fn known_secret_values_and_their_base64_forms() {
        check(
            &["hunter22"],
            "login with hunter22 ok",
            "login with [REDACTED] ok",
        );
        check(&["hunter22"], "b64 aHVudGVyMjI= end", "b64 [REDACTED] end");
        check(
            &["hunter2!x"],
            "url-safe aHVudGVyMiF4 end",
            "url-safe [REDACTED] end",
        );
        check(
            &["abc"],
            "abc is too short to mask",
            "abc is too short to mask",
        );
        check(&[], "nothing secret here", "nothing secret here");
    }

    #[test]
    fn pem_private_key_blocks() {
        let pem = "key:\n-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\ndone";
        check(&[], pem, "key:\n[REDACTED]\ndone");
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\\nabc\\n-----END RSA PRIVATE KEY-----";
        check(&[], rsa, "[REDACTED]");
        check(
            &[],
            "cut -----BEGIN EC PRIVATE KEY-----\nabc",
            "cut [REDACTED]",
        );
        let public = "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----";
        check(&[], public, public);
    }

    #[test]
    fn password_key_values() {
        check(
            &[],
            "host=db password=s3cr3t user=x",
            "host=db password=[REDACTED] user=x",
        );
        check(
            &[],
            r#"{"password": "p\"w", "user": "a"}"#,
            r#"{"password": "[REDACTED]", "user": "a"}"#,
        );
        check(&[], "PGPASSWORD=abc psql", "PGPASSWORD=[REDACTED] psql");
        check(&[], "client_secret = 'xyz'", "client_secret = '[REDACTED]'");
        check(&[], "db_password: hunter", "db_password: [REDACTED]");
        check(
            &[],
            r#"{\"password\":\"p4ss\"}"#,
            r#"{\"password\":\"[REDACTED]\"}"#,
        );
        check(&[], "password_min_length is 8", "password_min_length is 8");
    }

    #[test]
    fn authorization_headers_and_bearer_tokens() {
        check(
            &[],
            "Authorization: Bearer eyJhbGciOi.x.y\n",
            "Authorization: Bearer [REDACTED]\n",
        );
        check(
            &[],
            "authorization: Basic dXNlcjpwYXNz",
            "authorization: Basic [REDACTED]",
        );
        check(
            &[],
            r#""Authorization": "token glpat-abcdef""#,
            r#""Authorization": "token [REDACTED]""#,
        );
        check(
            &[],
            "curl -H 'bearer abcdefgh12345'",
            "curl -H 'bearer [REDACTED]'",
        );
        check(&[], "expects a Bearer token", "expects a Bearer token");
    }

    #[test]
    fn access_tokens() {
        check(
            &[],
            r#"{"access_token":"syt_abc_123","device_id":"D"}"#,
            r#"{"access_token":"[REDACTED]","device_id":"D"}"#,
        );
        check(
            &[],
            "cb?access_token=abc123&state=s",
            "cb?access_token=[REDACTED]&state=s",
        );
        check(
            &[],
            "refresh_token=r1 id_token=i2",
            "refresh_token=[REDACTED] id_token=[REDACTED]",
        );
    }

    #[test]
    fn url_passwords() {
        check(
            &[],
            "postgres://synapse:pw0rd@db:5432/synapse",
            "postgres://synapse:[REDACTED]@db:5432/synapse",
        );
        check(
            &[],
            "postgresql://u:p%40ss@h/db?sslmode=off",
            "postgresql://u:[REDACTED]@h/db?sslmode=off",
        );
        check(&[], "postgres://user@host/db", "postgres://user@host/db");
        check(
            &[],
            "see https://example.org:443/x",
            "see https://example.org:443/x",
        );
    }

    #[test]
    fn json_documents_are_redacted_everywhere() {
        let redactor = Redactor::new(vec!["topsecret".into()]);
        let mut doc = serde_json::json!({
            "evidence": "said topsecret",
            "nested": [{"client_secret": "abc"}, {"n": 1}],
            "access_token": "t"
        });
        redactor.redact_json(&mut doc);
        assert_eq!(
            doc,
            serde_json::json!({
                "evidence": "said [REDACTED]",
                "nested": [{"client_secret": "[REDACTED]"}, {"n": 1}],
                "access_token": "[REDACTED]"
            })
        );
    }

    #[test]
    fn redaction_is_idempotent_and_keeps_unicode_intact() {
        let redactor = Redactor::new(vec!["pässwörd".into()]);
        let once = redactor.redact("ünïcode pässwörd password=ä€ end");
        assert_eq!(once, "ünïcode [REDACTED] password=[REDACTED] end");
        assert_eq!(redactor.redact(&once), once);
    }
}
