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
        let key = text.get(span.clone()).unwrap_or("").trim();
        if !key.is_empty() && key.len() < 60 && !key.contains('\n') {
            err = err.field(key.to_string());
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
