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

/// One step of the path to a value inside a TOML value: a key or an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// `prefix` followed by `steps` in dotted form: `http.headers.x`, `list[0]`.
pub fn dotted(prefix: &str, steps: &[Step]) -> String {
    let mut out = prefix.to_string();
    for step in steps {
        match step {
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Interpolates every string inside a TOML value, in place. Returns the
/// path of the first failing string with its error.
pub fn interpolate_value(
    value: &mut toml::Value,
    values: &Values,
) -> Result<(), (Vec<Step>, InterpError)> {
    match value {
        toml::Value::String(s) => {
            if let Some(typed) = whole_var(s, values) {
                *value = typed;
            } else {
                *s = interpolate(s, values).map_err(|e| (Vec::new(), e))?;
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(item, values)
                    .map_err(|(path, e)| (within(Step::Index(i), path), e))?;
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                interpolate_value(v, values)
                    .map_err(|(path, e)| (within(Step::Key(k.clone()), path), e))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn within(step: Step, mut path: Vec<Step>) -> Vec<Step> {
    path.insert(0, step);
    path
}

/// Where in the raw text of a string literal the reference that failed
/// with `error` starts (a byte offset into `literal`), when it can be found.
pub fn reference_offset(literal: &str, error: &InterpError) -> Option<usize> {
    let mut opens = literal
        .match_indices("${")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || literal.as_bytes()[i - 1] != b'$');
    let wanted = match error {
        InterpError::UnknownVar(name) => name.clone(),
        InterpError::UnknownSecret(name) => format!("secret:{name}"),
        InterpError::Unclosed => {
            return opens.find(|&i| !literal[i..].contains('}'));
        }
    };
    opens.find(|&i| {
        let body = &literal[i + 2..];
        body.find('}')
            .is_some_and(|end| body[..end].trim() == wanted)
    })
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
        interpolate_value(&mut v, &values()).unwrap();
        assert_eq!(v["url"].as_str(), Some("http://127.0.0.1"));
        assert_eq!(
            v["list"][0].as_integer(),
            Some(5432),
            "a whole reference keeps its type"
        );
        assert_eq!(v["inner"]["x"].as_str(), Some("127.0.0.1"));
        let mut ports: toml::Value = toml::from_str("allowed = \"${ports}\"").unwrap();
        interpolate_value(&mut ports, &values()).unwrap();
        assert_eq!(ports["allowed"].as_array().map(|a| a.len()), Some(2));
        let mut bad: toml::Value = toml::from_str("[a]\nb = [\"${missing}\"]").unwrap();
        let (path, _) = interpolate_value(&mut bad, &values()).unwrap_err();
        assert_eq!(dotted("http", &path), "http.a.b[0]");
    }

    #[test]
    fn the_failing_reference_is_found_in_the_literal() {
        let var = InterpError::UnknownVar("nope".into());
        let secret = InterpError::UnknownSecret("pw".into());
        assert_eq!(reference_offset(r#""http://${nope}/""#, &var), Some(8));
        assert_eq!(reference_offset(r#""${a} ${ nope }""#, &var), Some(6));
        assert_eq!(reference_offset(r#""$${nope} ${nope}""#, &var), Some(10));
        assert_eq!(reference_offset(r#""x=${secret:pw}""#, &secret), Some(3));
        assert_eq!(reference_offset(r#""x=${secret:pw}""#, &var), None);
        assert_eq!(
            reference_offset(r#""${a} ${open""#, &InterpError::Unclosed),
            Some(6)
        );
    }
}
