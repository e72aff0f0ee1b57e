//! `${...}` interpolation of target values into profile strings. Pure.
//!
//! - `${name}`: a var from the target's `[vars]` (nested tables join with dots)
//!   or from the profile's facts file (`facts.*`, `budget.*`)
//! - `${secret:name}`: a secret from the target's `[secrets]` (redacted in output)
//! - `$${`: a literal `${`
//!
//! A string that is exactly one `${name}` takes the var's type (a number, a
//! list), so `allowed = "${facts.ports.open}"` can fill a list of ports.

use std::collections::BTreeMap;

/// The values a profile may refer to.
#[derive(Debug, Default, Clone)]
pub struct Values {
    pub vars: BTreeMap<String, toml::Value>,
    pub secrets: BTreeMap<String, String>,
}

impl Values {
    pub fn set(&mut self, name: &str, value: impl Into<toml::Value>) {
        self.vars.insert(name.to_string(), value.into());
    }
}

/// How a var reads inside a longer string: lists join with commas.
fn as_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(as_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpError {
    UnknownVar(String),
    UnknownSecret(String),
    Unclosed,
}

/// Replaces every `${...}` in `text`.
pub fn interpolate(text: &str, values: &Values) -> Result<String, InterpError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(InterpError::Unclosed)?;
            let name = body[..end].trim();
            if let Some(secret) = name.strip_prefix("secret:") {
                let value = values
                    .secrets
                    .get(secret)
                    .ok_or_else(|| InterpError::UnknownSecret(secret.to_string()))?;
                out.push_str(value);
            } else {
                let value = values
                    .vars
                    .get(name)
                    .ok_or_else(|| InterpError::UnknownVar(name.to_string()))?;
                out.push_str(&as_text(value));
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Interpolates every string inside a TOML value, in place. Returns the
/// dotted path of the first failing string with its error.
pub fn interpolate_value(
    value: &mut toml::Value,
    values: &Values,
    path: &str,
) -> Result<(), (String, InterpError)> {
    match value {
        toml::Value::String(s) => {
            if let Some(typed) = whole_var(s, values) {
                *value = typed;
            } else {
                *s = interpolate(s, values).map_err(|e| (path.to_string(), e))?;
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, values, &format!("{path}[{i}]"))?;
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                interpolate_value(v, values, &format!("{path}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A string that is exactly `${name}` of a non-string var becomes that value.
fn whole_var(text: &str, values: &Values) -> Option<toml::Value> {
    let name = text.strip_prefix("${")?.strip_suffix('}')?.trim();
    if name.contains(['{', '}', '$']) || name.starts_with("secret:") {
        return None;
    }
    match values.vars.get(name)? {
        toml::Value::String(_) => None,
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::default();
        v.set("pg.host", "127.0.0.1");
        v.set("pg.port", 5432);
        v.set("ports", vec![22, 3002]);
        v.secrets.insert("pg_password".into(), "hunter2".into());
        v
    }

    fn check(input: &str, expect: Result<&str, InterpError>) {
        assert_eq!(
            interpolate(input, &values())
                .as_deref()
                .map_err(Clone::clone),
            expect,
            "{input}"
        );
    }

    #[test]
    fn cases() {
        check("plain", Ok("plain"));
        check("${pg.host}:${pg.port}", Ok("127.0.0.1:5432"));
        check("${ pg.host }", Ok("127.0.0.1"));
        check("pw=${secret:pg_password}", Ok("pw=hunter2"));
        check("cost $5 and $${literal}", Ok("cost $5 and ${literal}"));
        check("${nope}", Err(InterpError::UnknownVar("nope".into())));
        check(
            "${secret:nope}",
            Err(InterpError::UnknownSecret("nope".into())),
        );
        check("${unclosed", Err(InterpError::Unclosed));
        check("trailing $", Ok("trailing $"));
        check("open: ${ports}", Ok("open: 22,3002"));
    }

    #[test]
    fn values_nested_in_tables_and_arrays() {
        let mut v: toml::Value = toml::from_str(
            r#"url = "http://${pg.host}"
list = ["${pg.port}", 3]
[inner]
x = "${pg.host}"
"#,
        )
        .unwrap();
        interpolate_value(&mut v, &values(), "http").unwrap();
        assert_eq!(v["url"].as_str(), Some("http://127.0.0.1"));
        assert_eq!(
            v["list"][0].as_integer(),
            Some(5432),
            "a whole reference keeps its type"
        );
        assert_eq!(v["inner"]["x"].as_str(), Some("127.0.0.1"));
        let mut ports: toml::Value = toml::from_str("allowed = \"${ports}\"").unwrap();
        interpolate_value(&mut ports, &values(), "ports").unwrap();
        assert_eq!(ports["allowed"].as_array().map(|a| a.len()), Some(2));
        let mut bad: toml::Value = toml::from_str("[a]\nb = [\"${missing}\"]").unwrap();
        let (path, _) = interpolate_value(&mut bad, &values(), "http").unwrap_err();
        assert_eq!(path, "http.a.b[0]");
    }
}
