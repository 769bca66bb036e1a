//! The multiple-choice grader (GPQA Diamond): find the chosen letter in the
//! answer region and compare it with the expected letter.
//!
//! The default, [`ChoiceMode::SimpleEvals`], is openai/simple-evals at HEAD
//! (ee3b0318, pattern since 5ca150b): the **first** match of
//! `(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?`, compared case-sensitively, so
//! `Answer: b` is extracted as `b` and graded wrong.
//! [`ChoiceMode::Nemo`] is NeMo-Skills `eval_mcq` (relaxed): the last
//! `\boxed{}` first, else the last relaxed `Answer:` match, uppercased.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::boxed::last_boxed_strict;
use super::verdict::{Outcome, Verdict};

/// Which reference's letter extraction to follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChoiceMode {
    /// simple-evals HEAD regex, first match, case-sensitive compare (default).
    #[default]
    SimpleEvals,
    /// NeMo-Skills `eval_mcq` with `relaxed=True`.
    Nemo,
}

static SIMPLE_EVALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?").expect("simple-evals pattern is valid")
});

static NEMO_RELAXED: LazyLock<Regex> = LazyLock::new(|| {
    // NeMo's `(?![a-zA-Z0-9])` look-ahead is checked by hand after the match.
    Regex::new(r"(?i)[\*_]{0,2}Answer[\*_]{0,2}\s*:[\s\*_]{0,2}\s*([A-Z])")
        .expect("nemo pattern is valid")
});

static WORD_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z]\b").expect("letter pattern is valid"));

/// Extracts the chosen letter as written (simple-evals may return a
/// lowercase letter; NeMo uppercases).
pub fn extract_choice(region: &str, mode: ChoiceMode) -> Option<String> {
    match mode {
        ChoiceMode::SimpleEvals => SIMPLE_EVALS.captures(region).map(|c| c[1].to_string()),
        ChoiceMode::Nemo => extract_nemo(region),
    }
}

fn extract_nemo(region: &str) -> Option<String> {
    if let Some(inner) = last_boxed_strict(region) {
        let inner = inner.trim();
        if inner.chars().count() == 1 {
            return Some(inner.to_string());
        }
        if let Some(m) = WORD_LETTER.find_iter(inner).last() {
            return Some(m.as_str().to_string());
        }
    }
    let mut last = None;
    for caps in NEMO_RELAXED.captures_iter(region) {
        let whole = caps.get(0).expect("group 0 always exists");
        let next = region[whole.end()..].chars().next();
        if next.is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        last = Some(caps[1].to_ascii_uppercase());
    }
    last
}

/// Grades one answer region against the expected letter (exact,
/// case-sensitive compare).
pub fn grade_choice(region: Option<&str>, expected: char, mode: ChoiceMode) -> Verdict {
    let Some(letter) = region.and_then(|r| extract_choice(r, mode)) else {
        return Verdict::no_answer();
    };
    let correct = letter.chars().eq(std::iter::once(expected));
    let outcome = if correct {
        Outcome::Correct
    } else {
        Outcome::Incorrect
    };
    Verdict::answer(outcome, Some(letter.clone()), Some(letter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_letter_is_extracted_and_wrong() {
        let v = grade_choice(Some("Answer: b"), 'B', ChoiceMode::SimpleEvals);
        assert_eq!(v.outcome, Outcome::Incorrect);
        assert_eq!(v.extracted.as_deref(), Some("b"));
        let v = grade_choice(Some("Answer: b"), 'B', ChoiceMode::Nemo);
        assert_eq!(v.outcome, Outcome::Correct);
    }

    #[test]
    fn nemo_skips_matches_followed_by_a_word() {
        assert_eq!(extract_choice("Answer: Because", ChoiceMode::Nemo), None);
        assert_eq!(
            extract_choice("Answer: A\nAnswer: Because", ChoiceMode::Nemo).as_deref(),
            Some("A")
        );
    }

    #[test]
    fn no_region_is_no_answer() {
        let v = grade_choice(None, 'A', ChoiceMode::SimpleEvals);
        assert_eq!(v.outcome, Outcome::NoAnswer);
    }
}
