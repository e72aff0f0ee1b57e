//! `${...}` interpolation of target values into profile strings. Pure.
//!
//! - `${name}`: a var from the target's `[vars]` (nested tables join with dots)
//! - `${secret:name}`: a secret from the target's `[secrets]` (redacted in output)
//! - `$${`: a literal `${`

use std::collections::BTreeMap;

/// The values a profile may refer to.
#[derive(Debug, Default, Clone)]
pub struct Values {
    pub vars: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
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
            let value = if let Some(secret) = name.strip_prefix("secret:") {
                values
                    .secrets
                    .get(secret)
                    .ok_or_else(|| InterpError::UnknownSecret(secret.to_string()))?
            } else {
                values
                    .vars
                    .get(name)
                    .ok_or_else(|| InterpError::UnknownVar(name.to_string()))?
            };
            out.push_str(value);
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
            *s = interpolate(s, values).map_err(|e| (path.to_string(), e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::default();
        v.vars.insert("pg.host".into(), "127.0.0.1".into());
        v.vars.insert("pg.port".into(), "5432".into());
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
        assert_eq!(v["list"][0].as_str(), Some("5432"));
        assert_eq!(v["inner"]["x"].as_str(), Some("127.0.0.1"));
        let mut bad: toml::Value = toml::from_str("[a]\nb = [\"${missing}\"]").unwrap();
        let (path, _) = interpolate_value(&mut bad, &values(), "http").unwrap_err();
        assert_eq!(path, "http.a.b[0]");
    }
}
