//! Bounded text: excerpts that fit a transcript field.

use std::fmt::Write as _;

/// Cuts `text` to at most `max` bytes on a char boundary, marking the cut.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text[..end].to_string();
    let _ = write!(out, "... [{} more bytes]", text.len() - end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("hello", 10), "hello");
        assert_eq!(excerpt("héllo", 2), "h... [5 more bytes]");
    }
}
