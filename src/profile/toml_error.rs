//! TOML parse errors as user errors: file, line, column, field and a hint.

use std::path::Path;

use crate::checks::ProbeSpec;
use crate::error::{Location, UserError};

/// Turns a `toml` error into a user error with file, line, column and a hint.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error, hint: &str) -> UserError {
    let message = e.message().trim().to_string();
    let mut err = UserError::new(message.clone()).in_file(path);
    if let Some(span) = e.span() {
        err = err.at(Location::from_offset(path, text, span.start));
        if let Some(field) = field_at(text, span) {
            err = err.field(field);
        }
    }
    let hint = if message.starts_with("unknown field") && message.contains("`tcp`") {
        format!(
            "probe tables are written `[check.<kind>]`; kinds: {}",
            ProbeSpec::KINDS.join(", ")
        )
    } else if message.starts_with("unknown field") {
        format!("remove the field or fix its spelling ({message}); {hint}")
    } else if message.starts_with("unknown variant") {
        format!("use one of the listed values; {hint}")
    } else {
        hint.to_string()
    };
    err.hint(hint)
}

/// The field an error's span points at: the key itself, or, when the span
/// is a value (`timeout = "soon"`), the key it is assigned to.
fn field_at(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    let spanned = text.get(span.clone())?.trim();
    let line_start = text.get(..span.start)?.rfind('\n').map_or(0, |n| n + 1);
    let before = text.get(line_start..span.start)?;
    let field = match before.trim_end().strip_suffix('=') {
        Some(key) => key.trim(),
        None => spanned,
    };
    (!field.is_empty() && field.len() < 60 && !field.contains('\n')).then(|| field.to_string())
}

#[cfg(test)]
mod tests {
    use super::field_at;

    #[test]
    fn the_field_is_the_key_a_value_is_assigned_to() {
        let text = "[[check]]\nid = \"a\"\ntimeout = \"soon\"\nretry.max = 3\n";
        let at = |needle: &str| {
            let start = text.find(needle).unwrap();
            start..start + needle.len()
        };
        for (span, field) in [
            (at("\"soon\""), Some("timeout")),
            (at("3"), Some("retry.max")),
            (at("timeout"), Some("timeout")),
            (at("[[check]]"), Some("[[check]]")),
        ] {
            assert_eq!(field_at(text, span).as_deref(), field);
        }
    }
}
