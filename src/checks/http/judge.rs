//! Judges an HTTP answer: status, headers, body, JSON values.

use super::spec::Spec;
use crate::check::{all_of, excerpt, Verdict};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub status: Option<u16>,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub body_truncated: bool,
    pub error: Option<String>,
    pub latency_ms: f64,
}

impl Facts {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn evidence(spec: &Spec, f: &Facts) -> String {
    let mut e = format!(
        "{} {}\n{} {}\n",
        spec.method.as_deref().unwrap_or("GET").to_ascii_uppercase(),
        spec.url,
        f.version,
        f.status.map(|s| s.to_string()).unwrap_or_default()
    );
    for (k, v) in f.headers.iter().filter(|(k, _)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "content-type" | "location" | "server" | "www-authenticate" | "content-length"
        ) || spec
            .header_contains
            .keys()
            .any(|name| name.eq_ignore_ascii_case(k))
    }) {
        e.push_str(&format!("{k}: {v}\n"));
    }
    e.push('\n');
    e.push_str(&excerpt(&f.body, 2048));
    e
}

pub fn judge(spec: &Spec, f: &Facts) -> Verdict {
    let codes = spec
        .status
        .as_ref()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| vec![200]);
    let codes_text = codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    let Some(status) = f.status else {
        return Verdict::fail(
            format!("{} answers with status {codes_text}", spec.url),
            f.error.clone().unwrap_or_else(|| "no answer".into()),
        )
        .with_metric("latency_ms", f.latency_ms);
    };
    let mut parts = Vec::new();
    let e = format!("status {codes_text}");
    parts.push(if codes.contains(&status) {
        Verdict::pass(e, format!("status {status}"))
    } else {
        let body_hint = excerpt(f.body.trim(), 160);
        let found = if body_hint.is_empty() {
            format!("status {status}")
        } else {
            format!("status {status}: {body_hint}")
        };
        Verdict::fail(e, found)
    });
    for (name, needle) in &spec.header_contains {
        let e = format!("header {name} contains {needle:?}");
        parts.push(match f.header(name) {
            Some(v) if v.contains(needle.as_str()) => Verdict::pass(e, format!("{name}: {v}")),
            Some(v) => Verdict::fail(e, format!("{name}: {v}")),
            None => Verdict::fail(e, format!("no {name} header")),
        });
    }
    for (needle, want) in spec
        .body_contains
        .iter()
        .map(|n| (n, true))
        .chain(spec.body_not_contains.iter().map(|n| (n, false)))
    {
        let has = f.body.contains(needle.as_str());
        let e = if want {
            format!("body contains {needle:?}")
        } else {
            format!("body does not contain {needle:?}")
        };
        let found = if has {
            format!("body contains {needle:?}")
        } else {
            format!("body lacks {needle:?}")
        };
        parts.push(if has == want {
            Verdict::pass(e, found)
        } else {
            Verdict::fail(e, found)
        });
    }
    if !spec.json.is_empty() || !spec.json_exists.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&f.body) {
            Err(err) => parts.push(Verdict::fail(
                "a JSON body",
                format!("body is not JSON: {err}"),
            )),
            Ok(doc) => {
                for (pointer, want) in &spec.json {
                    let e = format!("{pointer} = {want}");
                    parts.push(match doc.pointer(pointer) {
                        Some(v) if v == want => Verdict::pass(e, format!("{pointer} = {v}")),
                        Some(v) => Verdict::fail(
                            e,
                            format!("{pointer} = {}", excerpt(&v.to_string(), 200)),
                        ),
                        None => Verdict::fail(e, format!("{pointer} is absent")),
                    });
                }
                for pointer in &spec.json_exists {
                    let e = format!("{pointer} exists");
                    parts.push(if doc.pointer(pointer).is_some() {
                        Verdict::pass(e.clone(), e)
                    } else {
                        Verdict::fail(e, format!("{pointer} is absent"))
                    });
                }
            }
        }
    }
    all_of(parts)
        .with_evidence(evidence(spec, f))
        .with_metric("latency_ms", f.latency_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec_text: &str, status: u16, body: &str, pass: bool, found: &str) {
        let spec: Spec = toml::from_str(&format!("url = \"http://x/\"\n{spec_text}")).unwrap();
        let f = Facts {
            status: Some(status),
            body: body.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            ..Facts::default()
        };
        let v = judge(&spec, &f);
        assert_eq!(v.pass, pass, "{spec_text}: {v:?}");
        assert!(v.found.contains(found), "{spec_text}: {:?}", v.found);
    }

    #[test]
    fn cases() {
        check("", 200, "", true, "status 200");
        check("", 503, "down", false, "status 503: down");
        check("status = [200, 404]", 404, "", true, "");
        check(
            "header_contains = { \"content-type\" = \"json\" }",
            200,
            "",
            true,
            "",
        );
        check(
            "header_contains = { \"x-missing\" = \"a\" }",
            200,
            "",
            false,
            "no x-missing header",
        );
        check(
            "body_not_contains = [\"m.login.dummy\"]",
            200,
            "flows: m.login.dummy",
            false,
            "body contains",
        );
        check("json = { \"/a/0\" = 1 }", 200, r#"{"a":[1]}"#, true, "");
        check(
            "json = { \"/a\" = \"x\" }",
            200,
            "not json",
            false,
            "body is not JSON",
        );
        check(
            "json_exists = [\"/versions\"]",
            200,
            "{}",
            false,
            "/versions is absent",
        );
        let spec: Spec = toml::from_str("url = \"http://x/\"").unwrap();
        let v = judge(
            &spec,
            &Facts {
                error: Some("connection refused".into()),
                ..Facts::default()
            },
        );
        assert!(!v.pass && v.found == "connection refused");
    }

    #[test]
    fn evidence_shows_the_checked_headers_but_not_cookies() {
        let spec: Spec = toml::from_str(
            "url = \"http://x/\"\nheader_contains = { \"X-Gitlab-Version\" = \"16\" }",
        )
        .unwrap();
        let f = Facts {
            status: Some(200),
            headers: vec![
                ("x-gitlab-version".into(), "15.11.2".into()),
                ("set-cookie".into(), "_gitlab_session=secret".into()),
            ],
            ..Facts::default()
        };
        let v = judge(&spec, &f);
        assert!(!v.pass);
        assert!(v.evidence.contains("x-gitlab-version: 15.11.2"), "{v:?}");
        assert!(!v.evidence.contains("secret"), "{v:?}");
    }
}
