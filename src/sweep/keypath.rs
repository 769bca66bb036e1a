//! Naming the key a TOML error points at: the error's byte span is mapped
//! back to a dotted key path (`grid.methods[1].cr`) by walking the parsed
//! document's spans, so every config error names its key in one line.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The dotted path of the innermost key or value at `span.start`, if any.
pub fn key_at(text: &str, span: Range<usize>) -> Option<String> {
    let doc = DeTable::parse(text).ok()?;
    // A span on a table header starts at its brackets; the key follows.
    let at = span.start
        + text
            .get(span.start..)?
            .bytes()
            .take_while(|b| matches!(b, b'[' | b' ' | b'\t'))
            .count();
    let mut found: Option<(usize, String)> = None;
    walk_table(doc.get_ref(), "", at, &mut found);
    found.map(|(_, path)| path)
}

/// Keep the candidate that starts last at or before `at` (the innermost one).
fn offer(found: &mut Option<(usize, String)>, start: usize, at: usize, path: &str) {
    if start <= at && found.as_ref().is_none_or(|(s, _)| start >= *s) {
        *found = Some((start, path.to_string()));
    }
}

fn walk_table(table: &DeTable<'_>, prefix: &str, at: usize, found: &mut Option<(usize, String)>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        offer(found, key.span().start, at, &path);
        walk_value(value, &path, at, found);
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    at: usize,
    found: &mut Option<(usize, String)>,
) {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, path, at, found),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}[{i}]");
                offer(found, item.span().start, at, &path);
                walk_value(item, &path, at, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[grid]\nwidths = [1, 0]\n\n[[grid.methods]]\npolicy = \"dense\"\n\n[[grid.methods]]\npolicy = \"tova\"\ncr = [2]\n";

    fn at(needle: &str, nth: usize) -> Range<usize> {
        let start = DOC.match_indices(needle).nth(nth).unwrap().0;
        start..start + needle.len()
    }

    #[test]
    fn spans_map_to_dotted_paths() {
        assert_eq!(key_at(DOC, at("0]", 0)).as_deref(), Some("grid.widths[1]"));
        assert_eq!(
            key_at(DOC, at("cr", 0)).as_deref(),
            Some("grid.methods[1].cr")
        );
        assert_eq!(
            key_at(DOC, at("policy", 0)).as_deref(),
            Some("grid.methods[0].policy")
        );
        assert_eq!(key_at(DOC, at("widths", 0)).as_deref(), Some("grid.widths"));
        // A table header names its table, not the key before it.
        let doc = "[a]\nx = [1]\n\n[grid]\ny = 2\n";
        let header = doc.find("[grid]").unwrap();
        assert_eq!(key_at(doc, header..header + 6).as_deref(), Some("grid"));
    }
}
