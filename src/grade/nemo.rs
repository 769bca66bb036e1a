//! NeMo-Skills' `math_equal(gt_answer, predicted_answer)`
//! (nemo_skills/evaluation/math_grader.py at NVIDIA/NeMo-Skills@0b012df8),
//! step by step:
//!
//! 1. `_additional_normalization` on both: a pure number followed by `%` or
//!    `\%` loses the sign; trailing `.` and `\` are stripped.
//! 2. `normalize_latex(x, NormalizationConfig)` on both (boxed content,
//!    `\left`/`\right`, `$`, `\$`, `\displaystyle`, `\dfrac`, …: see
//!    [`super::latex_norm`]). If both results are *literal* (only letters,
//!    spaces and commas, or only digits and spaces), or they are equal
//!    ignoring spaces, the answer is whether they are equal ignoring spaces
//!    (so `073` ≠ `73`).
//! 3. Otherwise math-verify: each side is wrapped in `$…$` unless it holds a
//!    LaTeX environment, `parse(…, [LatexExtractionConfig()])` normalises it
//!    again with units, malformed-operator fixes and nits, and `verify`
//!    compares the parsed values ([`super::latex_parse`],
//!    [`super::latex_value`]) or, failing that, the normalised strings.
//!
//! Not ported (docs/grading-math.md lists them): the multiple-choice branch
//! (a gold answer that is one letter A–J), `take_modulo`, and the parts of
//! math-verify's extraction and SymPy's algebra outside the evaluated subset.

use std::sync::LazyLock;

use fancy_regex::Regex;

use super::latex_norm::{NormalizationConfig, NormalizationError, normalize_latex, py_strip};
use super::latex_parse::parse_value;
use super::latex_value::{Value, value_eq};

static PERCENTAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d+\.?\d*)(?:\\%|%)$").expect("constant pattern"));
static LITERAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:[a-zA-Z ,]+|[0-9 ]+)$").expect("constant pattern"));
static LATEX_ENV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)\$.*\$|\\\(.*\\\)|\\\[.*\\\]|\\boxed\{").expect("constant pattern")
});

fn matches(re: &Regex, s: &str) -> Result<bool, NormalizationError> {
    re.is_match(s).map_err(NormalizationError)
}

/// `_additional_normalization`.
fn additional_normalization(expr: &str) -> Result<String, NormalizationError> {
    let mut expr = expr.to_string();
    if let Some(caps) = PERCENTAGE.captures(&expr).map_err(NormalizationError)? {
        expr = caps[1].to_string();
    }
    Ok(expr.trim_end_matches(['.', '\\']).to_string())
}

/// What `math_verify.parse(s, [LatexExtractionConfig()])` returned: the
/// parsed value (when inside the evaluated subset) and the first fallback
/// string (the normalised LaTeX).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub value: Option<Value>,
    pub text: Option<String>,
}

/// `parse` for an answer that NeMo wrapped in `$…$`: the inline-dollar
/// pattern matches the whole of it when it has no newline and no `$` of its
/// own (an escaped `\$` is fine). `None` for answers whose extraction this
/// port does not model (an unwrapped environment, a newline, the word
/// "answer" that would anchor another pattern).
fn parse_wrapped(inner: &str) -> Result<Option<Parsed>, NormalizationError> {
    let unescaped_dollar = inner
        .char_indices()
        .any(|(i, c)| c == '$' && !inner[..i].ends_with('\\'));
    if inner.is_empty()
        || inner.contains('\n')
        || unescaped_dollar
        || inner.to_lowercase().contains("answer")
    {
        return Ok(None);
    }
    let normalized = normalize_latex(inner, &NormalizationConfig::MATH_VERIFY)?;
    Ok(Some(Parsed {
        value: parse_value(&normalized),
        text: (!normalized.is_empty()).then_some(normalized),
    }))
}

/// The symbolic fallback for one side: `None` when the port cannot say what
/// math-verify would extract (then the comparison is `false`).
fn symbolic_side(answer: &str) -> Result<Option<Parsed>, NormalizationError> {
    if matches(&LATEX_ENV, answer)? {
        return Ok(None);
    }
    parse_wrapped(answer)
}

/// `verify(gold, pred)` over the two `parse` results: any pair of values
/// equal, or the two fallback strings equal (stripped, non-empty).
fn verify(gold: &Parsed, pred: &Parsed) -> bool {
    if let (Some(g), Some(p)) = (&gold.value, &pred.value)
        && value_eq(g, p)
    {
        return true;
    }
    match (&gold.text, &pred.text) {
        (Some(g), Some(p)) => {
            let (g, p) = (py_strip(g), py_strip(p));
            !g.is_empty() && g == p
        }
        _ => false,
    }
}

/// NeMo-Skills `math_equal(gt_answer, predicted_answer)`.
///
/// # Errors
/// [`NormalizationError`] when a normalisation pattern exceeds the regex
/// engine's backtracking limit (the reference would have run on).
pub fn math_equal(gt_answer: &str, predicted_answer: &str) -> Result<bool, NormalizationError> {
    let gt = additional_normalization(gt_answer)?;
    let pred = additional_normalization(predicted_answer)?;

    let normalized_gt = normalize_latex(&gt, &NormalizationConfig::NEMO_LITERAL)?;
    let normalized_pred = normalize_latex(&pred, &NormalizationConfig::NEMO_LITERAL)?;
    let is_literal = matches(&LITERAL, &normalized_gt)? && matches(&LITERAL, &normalized_pred)?;
    let is_equal = normalized_gt.replace(' ', "") == normalized_pred.replace(' ', "");
    if is_literal || is_equal {
        return Ok(is_equal);
    }

    let (Some(gold), Some(pred)) = (symbolic_side(&gt)?, symbolic_side(&pred)?) else {
        return Ok(false);
    };
    Ok(verify(&gold, &pred))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(g: &str, p: &str) -> bool {
        math_equal(g, p).unwrap()
    }

    #[test]
    fn additional_normalization_strips_percent_and_trailing_dots() {
        assert_eq!(additional_normalization("10%").unwrap(), "10");
        assert_eq!(additional_normalization(r"12.5\%").unwrap(), "12.5");
        assert_eq!(additional_normalization(r"185\").unwrap(), "185");
        assert_eq!(additional_normalization("73.").unwrap(), "73");
        assert_eq!(additional_normalization("x%").unwrap(), "x%");
    }

    #[test]
    fn literal_stage_compares_digit_strings_literally() {
        assert!(eq("73", "73"));
        assert!(!eq("73", "073"));
        assert!(eq("23", "2 3"));
        assert!(eq("80", r"\$80"));
    }

    #[test]
    fn symbolic_stage_evaluates_the_subset() {
        assert!(eq("204", r"204 \text{ minutes}"));
        assert!(eq("32", "2^5"));
        assert!(eq("75", r"3\cdot 25"));
        assert!(eq("73", r"\frac{146}2"));
        assert!(eq("918.5", r"918\frac{1}{2}"));
        assert!(!eq("6", "2(3)"));
        assert!(!eq("73", "74"));
        assert!(!eq("1", "1.0000004"));
    }
}
