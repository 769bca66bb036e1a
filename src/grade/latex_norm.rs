//! LaTeX answer normalisation, ported rule for rule from
//! `latex2sympy2_extended.math_normalization.normalize_latex` (version
//! 1.11.0, the one `math-verify` 0.9.0 installs), which NeMo-Skills'
//! `math_grader.math_equal` calls twice: once with the class defaults
//! ([`NormalizationConfig::NEMO_LITERAL`]: boxed content and basic LaTeX
//! clean-up only) for its literal comparison, and once through
//! `math_verify.parse` with [`NormalizationConfig::MATH_VERIFY`] (units,
//! malformed operators and nits as well) before its symbolic comparison.
//!
//! Every regular expression here is the reference's, in the reference's
//! order; only the escaping differs (`{`/`}` are escaped for Rust, Python
//! replacement templates become `${n}`). Positions are counted in `char`s, as
//! Python counts code points. See `docs/grading-math.md`.

use std::sync::LazyLock;

use fancy_regex::{Captures, Regex};

/// Which groups of rules [`normalize_latex`] applies (the reference's
/// `NormalizationConfig`; `equations` is deprecated there and off in both
/// configurations NeMo uses, so it is not ported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalizationConfig {
    /// `\mathrm{T}`, `\left`/`\right`, `$`, `\displaystyle`, `\dfrac`, `and`, …
    pub basic_latex: bool,
    /// Trailing `\text{…}`/`\mbox{…}` and unit words (`cm`, `minutes`, …).
    pub units: bool,
    /// `\frac12`, `\sqrt3`, `^(x)`, `a/b` → `\frac{a}{b}`.
    pub malformed_operators: bool,
    /// A leading `.` gets a `0`; `0.5` becomes `\frac{1}{2}`.
    pub nits: bool,
    /// Replace the text by the content of its `\boxed{}`/`\fbox{}`s.
    pub boxed: BoxedMode,
}

/// The reference's `boxed` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxedMode {
    /// Every box, right to left, joined with `,` (`"all"`).
    All,
    /// The last box, plus earlier ones close to it (`"last"`).
    Last,
    /// Leave boxes alone (`"none"`).
    None,
}

impl NormalizationConfig {
    /// The dataclass defaults: NeMo passes the class itself,
    /// `normalize_latex(x, NormalizationConfig)`, so its fields are these.
    pub const NEMO_LITERAL: Self = Self {
        basic_latex: true,
        units: false,
        malformed_operators: false,
        nits: false,
        boxed: BoxedMode::All,
    };
    /// `math_verify.LatexExtractionConfig().normalization_config`.
    pub const MATH_VERIFY: Self = Self {
        basic_latex: true,
        units: true,
        malformed_operators: true,
        nits: true,
        boxed: BoxedMode::All,
    };
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants checked by the unit tests below.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad built-in pattern {pattern:?}: {e}"))
}

/// A regex failed at run time (the backtracking limit); the normalised text
/// cannot be computed the way the reference computes it.
#[derive(Debug, thiserror::Error)]
#[error("latex normalisation gave up on a pathological answer")]
pub struct NormalizationError(#[source] pub fancy_regex::Error);

type Result<T> = std::result::Result<T, NormalizationError>;

fn sub(re: &Regex, text: &str, replacement: &str) -> Result<String> {
    re.try_replacen(text, 0, replacement)
        .map(|s| s.into_owned())
        .map_err(NormalizationError)
}

fn sub_literal(re: &Regex, text: &str, replacement: &str) -> Result<String> {
    re.try_replacen(text, 0, fancy_regex::NoExpand(replacement))
        .map(|s| s.into_owned())
        .map_err(NormalizationError)
}

static R_LEFT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\\m?left(\\\{|\{|\\\||\||\[|\(|\\rbracl|\\lgroup|\\lbrace|\\lbrack|\\vert|\\lvert|\\lceil|\\lfloor|\\vert|\\lvert|\\langle|\\llcorner|\\ulcorner)",
    )
});
static R_RIGHT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\\m?right(\\\}|\}|\\\||\||\]|\)|\\rbrack|\\rgroup|\\rbrace|\\rbrack|\\vert|\\rvert|\\rceil|\\rfloor|\\vert|\\rvert|\\rangle|\\lrcorner|\\urcorner)",
    )
});

/// The reference's unit list, in its order. `"integer" "point"` is one
/// entry there (Python joins adjacent literals), and the entries are joined
/// into the pattern unescaped (so `.` in `"q ."` matches any character).
const UNITS: &[&str] = &[
    "integerpoint",
    "feet",
    "sue",
    "digit",
    "pound",
    "meal",
    "edge",
    "student",
    "children ticket",
    "multiple",
    "east",
    "degree",
    "mph",
    "kmph",
    "ft",
    "m square",
    " m east",
    "sq m",
    "deg",
    "mile",
    "q .",
    "monkey",
    "prime",
    "ratio",
    "profit of rs",
    "rd",
    "o",
    "gm",
    "p . m",
    "lb",
    "tile",
    "per",
    "dm",
    "lt",
    "gain",
    "ab",
    "way",
    "west",
    "a .",
    "b .",
    "c .",
    "d .",
    "e .",
    "f .",
    "g .",
    "h .",
    "t",
    "h",
    "no change",
    "men",
    "soldier",
    "pie",
    "bc",
    "excess",
    "st",
    "inches",
    "noon",
    "cent",
    "by",
    "gal",
    "kmh",
    "c",
    "acre",
    "rise",
    "a . m",
    "th",
    "π r 2",
    "sq",
    "mark",
    "l",
    "toy",
    "coin",
    "sq . m",
    "gallon",
    "° f",
    "profit",
    "minw",
    "yr",
    "women",
    "am",
    "pm",
    "hr",
    "cu cm",
    "square",
    "v â € ™",
    "are",
    "rupee",
    "rounds",
    "cubic",
    "cc",
    "mtr",
    "s",
    "ohm",
    "number",
    "kmph",
    "day",
    "hour",
    "minute",
    "min",
    "second",
    "man",
    "woman",
    "sec",
    "cube",
    "mt",
    "sq inch",
    "mp",
    "∏ cm ³",
    "hectare",
    "more",
    "sec",
    "unit",
    "cu . m",
    "cm 2",
    "rs .",
    "rs",
    "kg",
    "g",
    "month",
    "km",
    "m",
    "cm",
    "mm",
    "apple",
    "liter",
    "loss",
    "yard",
    "pure",
    "year",
    "increase",
    "decrease",
    "d",
    "less",
    "Surface",
    "litre",
    "pi sq m",
    "s .",
    "metre",
    "meter",
    "inch",
];

static UNITS_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(\d|\}}|\s)\s*(?:(?:{})(?:s|es)?)\s*$",
        UNITS.join("|")
    ))
});

static TO_REMOVE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"\\mathrm\{th\}|\\!\s*|\\text\s*\{\s*\}|\\text\s*\{\s*\}|\\\$|\$|(?<!\\)["']|\\displaystyle"#,
    )
});

/// `(name, pattern, replacement)`, the reference's `to_replace_patterns`.
const TO_REPLACE: &[(&str, &str, &str)] = &[
    ("math", r"\\math(?:rm|it|bf)", r"\text"),
    ("text", r"\\text(?:normal|bf|it|rm)", r"\text"),
    ("frac", r"\\(?:d|t|c)frac", r"\frac"),
    ("decimal_space", r"\s\.", r" 0."),
    ("decimal_brace", r"\{\.", r"{0."),
    ("approx", r"~=", r"\approx"),
    ("comma", r"\s*\{\s*,\s*\}", r","),
    (
        "and_or",
        r"(?<![a-zA-Z])(,?\s*(?:and|or))(?![a-zA-Z])",
        r",",
    ),
    ("and_or_text", r"(,?\s*\\text\{\s*(?:and|or)\s*\})", r","),
    ("backslash_space", r"(?<!\\)\\\s", r" "),
    ("infinity", r"infinity", r"\infty"),
    ("dot", r",?(\\ldots)", r" "),
    ("percentage", r"\s*\bpercentage\b", r"\%"),
    ("percentage_in_text", r"\\text\{percentage\}", r"%"),
    ("percent", r"\s*\bpercent\b", r"\%"),
    ("percent_in_text", r"\\text\{percent\}", r"%"),
    ("pct", r"\s*\bpct\b", r"\%"),
    ("pct_in_text", r"\\text\{pct\}", r"%"),
    ("inf", r"((?<!\\)inf(?!inity))", r"\infty"),
    ("sqrt", r" sqrt", r"\sqrt"),
];

static TO_REPLACE_RE: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = TO_REPLACE
        .iter()
        .map(|(name, pattern, _)| format!("(?P<{name}>{pattern})"))
        .collect();
    re(&alternatives.join("|"))
});

static COMMAND_SLASH_FIX: LazyLock<Regex> = LazyLock::new(|| re(r"\\\\(?=[a-zA-Z])"));
static PERMUTATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"\(([a-zA-Z0-9+\-*/\\ ]+?)\)_\{([a-zA-Z0-9+\-*/\\ ]+?)\}"));
static UNIT_SUPERSCRIPT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(\\(?:text|mbox)\{.*?\})(\^\d|\{\^\d\})?$"));
static VALID_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| re(r"\b(and|or)\b|,|;"));

static MALFORMED: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        (re(r"\^\s?\((.*?)\)"), r"^{${1}}"),
        (re(r"sqrt\s?\((.*?)\)"), r"\sqrt{${1}}"),
        (re(r"\\frac\s?(\d)\s?(\d+)"), r"\frac{${1}}{${2}}"),
        (re(r"\\log_\s?(\d)\s?(\d+)"), r"\log_{${1}}{${2}}"),
        (re(r"\\frac\s?\{(.*?)\}\s?(\d)"), r"\frac{${1}}{${2}}"),
        (re(r"\\frac\s?(\d)\s?\{(.*?)\}"), r"\frac{${1}}{${2}}"),
        (re(r"\\sqrt\s?(\d)"), r"\sqrt{${1}}"),
    ]
});

/// Python's `str.isspace` for one character.
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// `normalize_latex(text, config)`.
pub fn normalize_latex(text: &str, config: &NormalizationConfig) -> Result<String> {
    let mut text = match config.boxed {
        BoxedMode::All => extract_boxed_content(text, BoxedMode::All)?,
        BoxedMode::Last => extract_boxed_content(text, BoxedMode::Last)?,
        BoxedMode::None => text.to_string(),
    };
    if config.basic_latex {
        text = text.replace(r"\mathrm{T}", "T");
        text = text.replace(r"\mathrm{d}", "d").replace(r"{\rm d}", "d");
        text = text
            .replace(r"\left[\begin{matrix}", r"\begin{bmatrix}")
            .replace(r"\end{matrix}\right]", r"\end{bmatrix}");
        text = sub(&R_LEFT, &text, "${1}")?;
        text = sub(&R_RIGHT, &text, "${1}")?;
        text = sub(&PERMUTATION, &text, r"\frac{(${1})!}{((${1})-(${2}))!}")?;
        text = sub_literal(&TO_REMOVE, &text, "")?;
        text = replace_in_latex(&text)?;
        text = text.replace(['\n', '\t'], " ");
        if !text.contains("matrix") {
            text = sub_literal(&COMMAND_SLASH_FIX, &text, r"\")?;
        }
    }
    if config.units {
        let stripped = sub_literal(&UNIT_SUPERSCRIPT, &text, "")?;
        let stripped = py_strip(&stripped);
        if !stripped.is_empty() && stripped != text {
            text = stripped.to_string();
        }
        for _ in 0..2 {
            let stripped = sub(&UNITS_RE, &text, "${1}")?;
            if !stripped.is_empty() && stripped != text {
                text = stripped;
            }
        }
    }
    if config.nits {
        if text.starts_with('.') {
            text.insert(0, '0');
        }
        if text == "0.5" {
            text = r"\frac{1}{2}".to_string();
        }
    }
    if config.malformed_operators {
        for (pattern, replacement) in MALFORMED.iter() {
            text = sub(pattern, &text, replacement)?;
        }
        text = text.replace(" sqrt", r"\sqrt");
        text = fix_sqrt(&text);
        text = fix_fracs(&text);
        text = fix_a_slash_b(&text);
    }
    Ok(py_strip(&text).to_string())
}

/// `replace_in_latex`: one pass of the combined pattern, each match replaced
/// by its group's replacement, taken literally.
fn replace_in_latex(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in TO_REPLACE_RE.captures_iter(text) {
        let caps: Captures<'_> = caps.map_err(NormalizationError)?;
        let whole = caps.get(0).expect("group 0 always matches");
        let replacement = TO_REPLACE
            .iter()
            .find(|(name, _, _)| caps.name(name).is_some())
            .map_or("", |(_, _, r)| r);
        out.push_str(&text[last..whole.start()]);
        out.push_str(replacement);
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Python's `s.rfind(needle, 0, end)` over chars.
fn rfind_before(s: &[char], needle: &str, end: usize) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    let end = end.min(s.len());
    if needle.len() > end {
        return None;
    }
    (0..=end - needle.len())
        .rev()
        .find(|&i| s[i..i + needle.len()] == needle[..])
}

/// `extract_boxed_content(text, mode)`: the boxes right to left; `All` keeps
/// every one, `Last` stops at the first that is far from the box after it
/// (or close but without a separator); consecutive duplicates are kept once.
/// No box: the text unchanged.
fn extract_boxed_content(text: &str, mode: BoxedMode) -> Result<String> {
    let chars: Vec<char> = text.chars().collect();
    let string = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    let mut results: Vec<String> = Vec::new();
    let mut current_pos = chars.len();
    let mut last_boxed_start: Option<usize> = None;
    let mut max_pos = chars.len();
    loop {
        let boxed_idx = rfind_before(&chars, r"\boxed", current_pos);
        let fbox_idx = rfind_before(&chars, r"\fbox", current_pos);
        let start_idx = match (boxed_idx, fbox_idx) {
            (None, None) => break,
            (b, f) => b.max(f).expect("one is Some"),
        };
        let command_end = start_idx + if boxed_idx > fbox_idx { 6 } else { 5 };
        let mut next = command_end;
        while next < max_pos && py_isspace(chars[next]) {
            next += 1;
        }
        if next >= max_pos {
            break;
        }
        if chars[next] != '{' {
            if results.is_empty() {
                results.push(string(next, chars.len()));
            }
            break;
        }
        // find_content_boundaries
        let mut i = next;
        let mut open = 1usize;
        let mut close = None;
        while i + 1 < max_pos {
            i += 1;
            if chars[i] == '{' {
                open += 1;
            } else if chars[i] == '}' {
                open -= 1;
                if open == 0 {
                    close = Some(i);
                    break;
                }
            }
        }
        let Some(content_end) = close else {
            if results.is_empty() {
                results.push(string(next, chars.len()));
            }
            break;
        };
        let content = py_strip(&string(next + 1, content_end)).to_string();
        if let (BoxedMode::Last, Some(next_start)) = (mode, last_boxed_start) {
            let previous = results.last().map_or("", String::as_str);
            // should_extract_boxed(text, content, previous, content_end, next_start)
            let between = string((content_end + 1).min(next_start), next_start);
            let between_len = between.chars().count();
            let close_enough = between_len < 10
                || (previous != content
                    && between_len < 70
                    && VALID_SEPARATOR
                        .is_match(&between)
                        .map_err(NormalizationError)?);
            if !close_enough {
                break;
            }
        }
        if results.last() != Some(&content) {
            results.push(content);
        }
        last_boxed_start = Some(start_idx);
        max_pos = start_idx;
        current_pos = start_idx;
    }
    if results.is_empty() {
        return Ok(text.to_string());
    }
    results.reverse();
    Ok(results.join(","))
}

/// `_fix_fracs` (Hendrycks MATH): `\frac12` → `\frac{1}{2}`, `\frac1{2}` →
/// `\frac{1}{2}`; a `\frac` followed by fewer than two characters returns
/// the input unchanged.
fn fix_fracs(text: &str) -> String {
    let mut parts = text.split(r"\frac");
    let mut out = parts.next().unwrap_or("").to_string();
    for part in parts {
        let part: Vec<char> = part.trim_start_matches(py_isspace).chars().collect();
        out.push_str(r"\frac");
        if part.first() == Some(&'{') {
            out.extend(part.iter());
        } else if part.len() < 2 {
            return text.to_string();
        } else {
            let (a, b) = (part[0], part[1]);
            let rest: String = part[2..].iter().collect();
            if b != '{' {
                out.push_str(&format!("{{{a}}}{{{b}}}{rest}"));
            } else {
                out.push_str(&format!("{{{a}}}{b}{rest}"));
            }
        }
    }
    out
}

/// `_fix_a_slash_b`: `a/b` with both sides canonical Python integers (the
/// reference checks `text == f"{int(a)}/{int(b)}"`) → `\frac{a}{b}`.
fn fix_a_slash_b(text: &str) -> String {
    let parts: Vec<&str> = text.split('/').collect();
    let canonical = |s: &str| {
        let digits = s.strip_prefix('-').unwrap_or(s);
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" && s == "0" || !digits.starts_with('0'))
    };
    match parts[..] {
        [a, b] if canonical(a) && canonical(b) => format!(r"\frac{{{a}}}{{{b}}}"),
        _ => text.to_string(),
    }
}

/// `_fix_sqrt`: `\sqrt3` → `\sqrt{3}` (one character), `\sqrt{…}` and
/// `\sqrt[…]` unchanged.
fn fix_sqrt(text: &str) -> String {
    if !text.contains(r"\sqrt") {
        return text.to_string();
    }
    let mut parts = text.split(r"\sqrt");
    let mut out = parts.next().unwrap_or("").to_string();
    for part in parts {
        let part = part.trim_start_matches(py_isspace);
        let mut chars = part.chars();
        match chars.next() {
            Some(a) if a != '{' && a != '[' => {
                out.push_str(&format!(r"\sqrt{{{a}}}{}", chars.as_str()));
            }
            _ => {
                out.push_str(r"\sqrt");
                out.push_str(part);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(s: &str) -> String {
        normalize_latex(s, &NormalizationConfig::NEMO_LITERAL).unwrap()
    }
    fn full(s: &str) -> String {
        normalize_latex(s, &NormalizationConfig::MATH_VERIFY).unwrap()
    }

    #[test]
    fn every_builtin_pattern_compiles() {
        for r in [
            &*R_LEFT,
            &*R_RIGHT,
            &*UNITS_RE,
            &*TO_REMOVE,
            &*TO_REPLACE_RE,
            &*COMMAND_SLASH_FIX,
            &*PERMUTATION,
            &*UNIT_SUPERSCRIPT,
            &*VALID_SEPARATOR,
        ] {
            assert!(r.is_match("x").is_ok());
        }
        assert_eq!(MALFORMED.len(), 7);
    }

    #[test]
    fn literal_config_strips_dollars_left_right_and_displaystyle() {
        assert_eq!(literal(r"\$80"), "80");
        assert_eq!(literal(r"\left( 5 \right)"), "( 5 )");
        assert_eq!(literal(r"\displaystyle 5"), "5");
        assert_eq!(literal(r"\dfrac{1}{2}"), r"\frac{1}{2}");
        assert_eq!(literal(r"1{,}073"), "1,073");
        assert_eq!(literal(r"204 \text{ minutes}"), r"204 \text{ minutes}");
        assert_eq!(literal(r"a \boxed{1} b \boxed{2}"), "1,2");
    }

    #[test]
    fn full_config_strips_units_and_fixes_operators() {
        assert_eq!(full(r"204 \text{ minutes}"), "204");
        assert_eq!(full(r"7\text{cm}^2"), "7");
        assert_eq!(full("30 degrees"), "30");
        assert_eq!(full(r"\frac{146}2"), r"\frac{146}{2}");
        assert_eq!(full(r"\frac12"), r"\frac{1}{2}");
        assert_eq!(full(r"\sqrt4"), r"\sqrt{4}");
        assert_eq!(full("3/4"), r"\frac{3}{4}");
        assert_eq!(full(".5"), r"\frac{1}{2}");
    }
}
