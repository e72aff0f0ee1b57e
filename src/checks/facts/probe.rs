//! The facts are the configuration's own values, interpolated into the
//! table when the profile loaded (from the facts file the NixOS
//! configuration is built from): this names each number.

use super::spec::Spec;

/// `(name, number)` of each value: a table's keys (nested ones joined with
/// `.`), an array's indices; a value that is not a number is an error.
pub fn probe(spec: &Spec) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    flatten(&spec.values, "", &mut out)?;
    Ok(out)
}

/// `(name, text)` of each value, for `services_examined`: a table's keys
/// (nested ones joined with `.`), an array's indices; a value that is not a
/// string is an error.
pub fn names(spec: &Spec) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    flatten_names(&spec.values, "", &mut out)?;
    Ok(out)
}

fn flatten_names(value: &toml::Value, name: &str, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let join = |k: &str| if name.is_empty() { k.to_string() } else { format!("{name}.{k}") };
    match value {
        toml::Value::String(s) => out.push((name.to_string(), s.clone())),
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten_names(v, &join(k), out)?;
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_names(v, &join(&i.to_string()), out)?;
            }
        }
        other => {
            let name = if name.is_empty() { "values" } else { name };
            return Err(format!("`{name}` is a {}, not a service name", other.type_str()));
        }
    }
    Ok(())
}

fn flatten(value: &toml::Value, name: &str, out: &mut Vec<(String, f64)>) -> Result<(), String> {
    let join = |k: &str| if name.is_empty() { k.to_string() } else { format!("{name}.{k}") };
    match value {
        toml::Value::Integer(i) => out.push((name.to_string(), *i as f64)),
        toml::Value::Float(f) => out.push((name.to_string(), *f)),
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(v, &join(k), out)?;
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, &join(&i.to_string()), out)?;
            }
        }
        other => {
            let name = if name.is_empty() { "values" } else { name };
            return Err(format!("`{name}` is a {}, not a number", other.type_str()));
        }
    }
    Ok(())
}
