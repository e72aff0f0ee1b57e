//! Bounded text: excerpts and tails that fit a transcript field; shell-style glob
//! matching of `/`-separated paths.

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

/// The last `max` bytes of `text` (fewer, to start on a char boundary).
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// [`tail`], marked with a leading `...` when something was cut.
pub fn marked_tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!("...{}", tail(text, max))
}

/// Whether `path` (components separated by `/`) matches the glob `pattern`:
/// `*` any run of characters within a component, `?` one character, `**` a
/// whole component matching any number of components (none included).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let path: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    match_components(&pattern, &path)
}

fn match_components(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_components(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((name, tail)) => component_match(first, name) && match_components(rest, tail),
            None => false,
        },
    }
}

/// `*` and `?` within one path component.
pub fn component_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_end_the_text_and_start_on_a_char_boundary() {
        let cases = [
            ("abcdef", 3, "def", "...def"),
            ("abc", 3, "abc", "abc"),
            ("abc", 10, "abc", "abc"),
            // "é" is two bytes: a cut inside it moves past it.
            ("xéyz", 3, "yz", "...yz"),
        ];
        for (text, max, plain, marked) in cases {
            assert_eq!(tail(text, max), plain, "{text} {max}");
            assert_eq!(marked_tail(text, max), marked, "{text} {max}");
        }
    }

    #[test]
    fn globs_match_components_and_any_depth() {
        for (pattern, path, want) in [
            ("*.yaml", "a.yaml", true),
            ("*.yaml", "dir/a.yaml", false),
            ("**/*.yaml", "dir/sub/a.yaml", true),
            ("**/*.yaml", "a.yaml", true),
            ("secrets/*.sops.?aml", "secrets/x.sops.yaml", true),
            (".demo*", ".demo-keys", true),
            (".demo*", "demo", false),
            ("tests/data/**", "tests/data/sops/a.yaml", true),
            ("tests/data/**", "tests/other.rs", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ] {
            assert_eq!(glob_match(pattern, path), want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        assert_eq!(excerpt("hello", 10), "hello");
        assert_eq!(excerpt("héllo", 2), "h... [5 more bytes]");
    }
}
