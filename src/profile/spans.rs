//! Where a value of a `[check.<kind>]` table sits in the profile text. The
//! probe tables are read as plain `toml::Value`s, which keep no positions;
//! when one of their strings is at fault, this second, position-keeping
//! read of the file finds the string so the error points at its line.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::interp::Step;

/// A TOML value whose parts keep their byte ranges.
#[derive(Debug)]
enum Node {
    String,
    Array(Vec<Spanned<Node>>),
    Table(BTreeMap<String, Spanned<Node>>),
    Other,
}

/// The `[[check]]` tables of a profile, every value with its range.
#[derive(Debug, serde::Deserialize)]
struct Checks {
    #[serde(default)]
    check: Vec<BTreeMap<String, Spanned<Node>>>,
}

/// The byte range of the value at `steps` inside table `kind` of the
/// `index`-th `[[check]]`, or `None` when the text does not say (a table
/// written with dotted keys keeps no position).
pub fn value_span(text: &str, index: usize, kind: &str, steps: &[Step]) -> Option<Range<usize>> {
    let checks: Checks = toml::from_str(text).ok()?;
    let mut node = checks.check.get(index)?.get(kind)?;
    for step in steps {
        node = match (node.get_ref(), step) {
            (Node::Table(table), Step::Key(key)) => table.get(key)?,
            (Node::Array(items), Step::Index(i)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node.span())
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::String)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut table = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            // A datetime arrives as a map with one private key.
            if key.starts_with("$__toml_private") {
                map.next_value::<IgnoredAny>()?;
                return Ok(Node::Other);
            }
            table.insert(key, map.next_value()?);
        }
        Ok(Node::Table(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, index: usize, kind: &str, steps: &[Step]) -> Option<String> {
        value_span(text, index, kind, steps).map(|r| text[r].to_string())
    }

    #[test]
    fn strings_of_probe_tables_are_found() {
        let text = "[[check]]\nid = \"a\"\n[check.tcp]\naddress = \"x:1\"\n\n[[check]]\nid = \"b\"\n[check.http]\nurl = \"http://${h}/\"\nheaders = { x = \"${y}\" }\nwhen = 1979-05-27T07:32:00Z\nlist = [1, \"${z}\"]\n";
        let key = |k: &str| Step::Key(k.into());
        assert_eq!(
            at(text, 0, "tcp", &[key("address")]).as_deref(),
            Some("\"x:1\"")
        );
        assert_eq!(
            at(text, 1, "http", &[key("url")]).as_deref(),
            Some("\"http://${h}/\"")
        );
        assert_eq!(
            at(text, 1, "http", &[key("headers"), key("x")]).as_deref(),
            Some("\"${y}\"")
        );
        assert_eq!(
            at(text, 1, "http", &[key("list"), Step::Index(1)]).as_deref(),
            Some("\"${z}\"")
        );
        assert_eq!(at(text, 1, "http", &[key("nope")]), None);
        assert_eq!(at(text, 2, "http", &[]), None);
    }
}
