//! User-facing errors: what went wrong, where (file, line, column, field) and
//! what to do about it. Internal bugs are not represented here; they panic in
//! debug builds and are reported as such.

use std::fmt;
use std::path::{Path, PathBuf};

/// A location in a user file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Turns a byte offset into `text` into a 1-based line and column.
    pub fn from_offset(file: &Path, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// An error caused by the user's input or environment, mapped to exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    pub message: String,
    pub location: Option<Location>,
    /// The file when no line/column is known.
    pub file: Option<PathBuf>,
    /// The field (key path) at fault, e.g. `check[3].http.url`.
    pub field: Option<String>,
    pub hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> UserError {
        UserError {
            message: message.into(),
            location: None,
            file: None,
            field: None,
            hint: None,
        }
    }
    pub fn at(mut self, location: Location) -> UserError {
        self.file = Some(location.file.clone());
        self.location = Some(location);
        self
    }
    pub fn in_file(mut self, file: &Path) -> UserError {
        self.file = Some(file.to_path_buf());
        self
    }
    pub fn field(mut self, field: impl Into<String>) -> UserError {
        self.field = Some(field.into());
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> UserError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        match (&self.location, &self.file) {
            (Some(loc), _) => write!(
                f,
                "\n  --> {}:{}:{}",
                loc.file.display(),
                loc.line,
                loc.column
            )?,
            (None, Some(file)) => write!(f, "\n  --> {}", file.display())?,
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            write!(f, "\n  = field: {field}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UserError {}

/// Several user errors found in one pass (all profile problems are reported
/// at once, not one per run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserErrors(pub Vec<UserError>);

impl fmt::Display for UserErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{e}")?;
        }
        if self.0.len() > 1 {
            write!(f, "{} errors", self.0.len())?;
        }
        Ok(())
    }
}

impl From<UserError> for UserErrors {
    fn from(e: UserError) -> Self {
        UserErrors(vec![e])
    }
}

/// The error and every cause, on one line ("error sending request: ...:
/// Connection refused").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_columns() {
        let text = "a = 1\nbb = 2\n";
        let loc = Location::from_offset(Path::new("p.toml"), text, 7);
        assert_eq!((loc.line, loc.column), (2, 2));
        let loc = Location::from_offset(Path::new("p.toml"), text, 0);
        assert_eq!((loc.line, loc.column), (1, 1));
        let loc = Location::from_offset(Path::new("p.toml"), text, 999);
        assert_eq!(loc.line, 3);
    }

    #[test]
    fn display_names_file_field_and_hint() {
        let e = UserError::new("unknown check id `x`")
            .at(Location {
                file: "a.toml".into(),
                line: 3,
                column: 9,
            })
            .field("check[0].needs")
            .hint("name a check that exists");
        let s = e.to_string();
        assert!(s.contains("a.toml:3:9"), "{s}");
        assert!(s.contains("field: check[0].needs"), "{s}");
        assert!(s.contains("hint: name a check"), "{s}");
    }
}
