//! Pulling the final answer out of a math completion: the last `\boxed{…}`
//! (brace-matched), the lenient variants (`\boxed 7`, `\fbox{…}`), and the
//! last-number fallback. Pure functions over `&str`; no normalisation here.

/// NeMo-Skills `search_boxed` (evaluation/math_grader.py), exactly:
/// the last `\boxed`; from there, the first `}` that brings the brace count
/// back to zero closes the span; the span must be `\boxed{…}`, otherwise
/// `None` (so `\boxed 7` and `\boxed {7}` give `None`, and `\fbox` is never
/// looked at).
pub fn last_boxed_strict(text: &str) -> Option<&str> {
    let start = text.rfind("\\boxed")?;
    let span = &text[start..];
    let mut depth: i64 = 0;
    for (i, ch) in span.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return span[..=i].strip_prefix("\\boxed{")?.strip_suffix('}');
                }
            }
            _ => {}
        }
    }
    None
}

/// The lenient extraction of `docs/grading.md` §2.2: the last `\boxed`
/// (or, when there is none, the last `\fbox`); if the next non-space
/// character is `{` the brace-matched content, otherwise (Qwen style,
/// `\boxed 7`) the text up to the next `$` or the end of the line, trimmed.
/// `None` when there is no such command, the braces never close, or the
/// unbraced form is empty.
pub fn last_boxed_lenient(text: &str) -> Option<&str> {
    let (start, command) = match text.rfind("\\boxed") {
        Some(i) => (i, "\\boxed"),
        None => (text.rfind("\\fbox")?, "\\fbox"),
    };
    let rest = &text[start + command.len()..];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if let Some(inner) = trimmed.strip_prefix('{') {
        let mut depth: i64 = 1;
        for (i, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&inner[..i]);
                    }
                }
                _ => {}
            }
        }
        return None;
    }
    // `\boxedfoo` is another macro, not a box.
    if trimmed.len() == rest.len() {
        return None;
    }
    let end = trimmed.find(['$', '\n']).unwrap_or(trimmed.len());
    let value = trimmed[..end].trim();
    (!value.is_empty()).then_some(value)
}

/// The last number in `text` (Qwen2.5-Math's final fallback: the last match
/// of `-?\d*\.?\d+` once thousands commas are removed), as written.
pub fn last_number(text: &str) -> Option<String> {
    let without_commas = remove_digit_commas(text);
    let bytes = without_commas.as_bytes();
    // Scan right to left for the last run of digits, then extend it to the
    // left over one `.` and further digits and an optional `-`.
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let mut start = end;
    while start > 0 && bytes[start - 1].is_ascii_digit() {
        start -= 1;
    }
    if start > 0 && bytes[start - 1] == b'.' {
        start -= 1;
        while start > 0 && bytes[start - 1].is_ascii_digit() {
            start -= 1;
        }
    }
    if start > 0 && bytes[start - 1] == b'-' {
        start -= 1;
    }
    Some(without_commas[start..end].to_string())
}

/// Removes `,` between a digit and exactly three digits (a thousands
/// separator), repeatedly: `1,234,567` → `1234567`, `1,2` stays.
pub(crate) fn remove_digit_commas(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ',' && i > 0 && chars[i - 1].is_ascii_digit() {
            let digits = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 3 {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_takes_the_last_box_and_matches_braces() {
        assert_eq!(last_boxed_strict(r"a \boxed{72} b \boxed{73}"), Some("73"));
        assert_eq!(
            last_boxed_strict(r"\boxed{\frac{1}{2}} done"),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(last_boxed_strict(r"\boxed 7"), None);
        assert_eq!(last_boxed_strict(r"\boxed {7}"), None);
        assert_eq!(last_boxed_strict(r"\fbox{7}"), None);
        assert_eq!(last_boxed_strict(r"\boxed{7"), None);
        assert_eq!(last_boxed_strict("no box"), None);
    }

    #[test]
    fn lenient_accepts_unbraced_and_fbox() {
        assert_eq!(last_boxed_lenient(r"\boxed 7"), Some("7"));
        assert_eq!(last_boxed_lenient(r"so $\boxed 42$."), Some("42"));
        assert_eq!(last_boxed_lenient(r"\boxed {7}"), Some("7"));
        assert_eq!(last_boxed_lenient(r"\fbox{73}"), Some("73"));
        assert_eq!(last_boxed_lenient(r"\fbox{1} \boxed{2}"), Some("2"));
        assert_eq!(last_boxed_lenient(r"\boxed{\text{a}}"), Some(r"\text{a}"));
        assert_eq!(last_boxed_lenient(r"\boxedfoo"), None);
        assert_eq!(last_boxed_lenient(r"\boxed{7"), None);
        assert_eq!(last_boxed_lenient(r"\boxed   "), None);
    }

    #[test]
    fn last_number_reads_signs_decimals_and_commas() {
        assert_eq!(last_number("So we get 73").as_deref(), Some("73"));
        assert_eq!(last_number("The answer is 73.").as_deref(), Some("73"));
        assert_eq!(last_number("x = -2.5, y").as_deref(), Some("-2.5"));
        assert_eq!(last_number("total 1,234 apples").as_deref(), Some("1234"));
        assert_eq!(last_number("none"), None);
    }
}
