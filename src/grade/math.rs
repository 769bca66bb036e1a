//! The math grader: extraction ([`super::boxed`]), normalisation and
//! comparison of a final answer against a gold answer (AIME: an integer).
//!
//! # Which reference the default follows
//!
//! [`MathMode::Nemo`] (the default) follows **NeMo-Skills**
//! (`extract_answer` = `search_boxed`, then `math_equal`, at
//! NVIDIA/NeMo-Skills@0b012df8), the harness behind the R1-style
//! `pass@1[avg-of-n]` numbers: [`super::nemo::math_equal`] ports its literal
//! comparison after `normalize_latex` and its math-verify fallback, which
//! evaluates LaTeX arithmetic exactly (`2^5` = 32, `204 \text{ minutes}` =
//! 204). Its deliberate strictnesses are NeMo's: a leading zero is wrong
//! (`073` ≠ `73`, pure-digit strings are compared literally) and only a
//! braced `\boxed{…}` counts. `docs/grading-math.md` lists every rule and the
//! remaining differences; `tests/data/vectors/math_nemo_reference_vectors.json`
//! holds the reference's own verdicts.
//!
//! [`MathMode::BoxedInt`] is `docs/grading.md` §2.2 ("boxed-int"): it also reads
//! `\boxed 7` and `\fbox{…}` and compares numbers by value after
//! [`normalise`], so `073` = `73`.
//!
//! [`MathMode::Arith`] is `BoxedInt` plus Qwen2.5-Math's last resort: when
//! nothing is boxed, the last number in the answer region is the answer. It is
//! meant for the synthetic `arith` task, where small models rarely box.

use serde::{Deserialize, Serialize};

use super::boxed::{last_boxed_lenient, last_boxed_strict, last_number, remove_digit_commas};
use super::nemo::math_equal;
use super::verdict::{Outcome, Verdict};

/// Extraction and comparison rules for math answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MathMode {
    /// NeMo-Skills parity (default): strict `\boxed{}`, then NeMo's
    /// `math_equal` (literal comparison after `normalize_latex`, math-verify
    /// fallback).
    #[default]
    Nemo,
    /// `docs/grading.md` §2.2: lenient boxes (`\boxed 7`, `\fbox`), compare by value.
    BoxedInt,
    /// `BoxedInt`, falling back to the last number when nothing is boxed.
    Arith,
}

/// Grades one math answer region against a gold answer.
///
/// `region` is the answer region (text after `</think>`); `None` means the
/// sample has none and gives [`Outcome::NoAnswer`], as does a region without
/// an extractable answer.
pub fn grade_math(region: Option<&str>, gold: &str, mode: MathMode) -> Verdict {
    let Some(region) = region else {
        return Verdict::no_answer();
    };
    let extracted = match mode {
        MathMode::Nemo => last_boxed_strict(region).map(str::to_string),
        MathMode::BoxedInt => last_boxed_lenient(region).map(str::to_string),
        MathMode::Arith => last_boxed_lenient(region)
            .map(str::to_string)
            .or_else(|| last_number(region)),
    };
    let Some(extracted) = extracted else {
        return Verdict::no_answer();
    };
    let pred = normalise(&extracted);
    let correct = match mode {
        MathMode::Nemo => match math_equal(gold, &extracted) {
            Ok(correct) => correct,
            Err(e) => {
                return Verdict {
                    detail: Some(e.to_string()),
                    ..Verdict::answer(Outcome::Error, Some(extracted), Some(pred))
                };
            }
        },
        MathMode::BoxedInt | MathMode::Arith => equal_by_value(&normalise(gold), &pred),
    };
    let vote_key = match mode {
        MathMode::Nemo => pred.clone(),
        MathMode::BoxedInt | MathMode::Arith => parse_rational(&pred)
            .map(|r| r.to_string())
            .unwrap_or_else(|| pred.clone()),
    };
    let outcome = if correct {
        Outcome::Correct
    } else {
        Outcome::Incorrect
    };
    Verdict::answer(outcome, Some(extracted), Some(vote_key))
}

/// Equal exact values when both parse; equal strings otherwise.
fn equal_by_value(gold: &str, pred: &str) -> bool {
    gold == pred || values_equal(gold, pred)
}

fn values_equal(gold: &str, pred: &str) -> bool {
    match (parse_rational(gold), parse_rational(pred)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Normalises a math answer for comparison (`docs/grading.md` §2.2):
/// removes `$`, unwraps `\text{}`, `\textbf{}`, `\mathrm{}`, `\mathbf{}`,
/// `\mbox{}`, maps `\dfrac`/`\tfrac` to `\frac`, deletes `\!`, `\,`, `\;`,
/// `\:`, `\left`, `\right`, `{,}` and thousands commas, degree marks
/// (`^\circ`, `^{\circ}`) and percent signs, keeps the text after the last
/// `=`, removes trailing `.` and `\`, and removes all whitespace.
pub fn normalise(answer: &str) -> String {
    let mut s = answer.trim().replace('$', "");
    for wrapper in ["\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\mbox"] {
        s = unwrap_command(&s, wrapper);
    }
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac");
    for noise in [
        "\\!",
        "\\,",
        "\\;",
        "\\:",
        "\\left",
        "\\right",
        "{,}",
        "^{\\circ}",
        "^\\circ",
        "\\%",
        "%",
    ] {
        s = s.replace(noise, "");
    }
    s = remove_digit_commas(&s);
    s.retain(|c| !c.is_whitespace());
    if let Some((_, rhs)) = s.rsplit_once('=') {
        s = rhs.to_string();
    }
    s.trim_end_matches(['.', '\\']).to_string()
}

/// Replaces every `\cmd{X}` by `X` (brace-matched), leaving other text alone.
fn unwrap_command(s: &str, command: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(command) {
        let after = &rest[i + command.len()..];
        let Some(body) = after.strip_prefix('{') else {
            // `\textit` when looking for `\text`, or an unbraced use: keep it.
            out.push_str(&rest[..i + command.len()]);
            rest = after;
            continue;
        };
        let mut depth = 1usize;
        let mut close = None;
        for (j, ch) in body.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(j) = close else {
            out.push_str(&rest[..i + command.len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..i]);
        out.push_str(&body[..j]);
        rest = &body[j + 1..];
    }
    out.push_str(rest);
    out
}

/// An exact rational `num/den` in lowest terms with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rational {
    pub num: i128,
    pub den: i128,
}

impl Rational {
    fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs());
        let g = i128::try_from(g).ok()?.max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Self {
            num: sign * num / g,
            den: sign * den / g,
        })
    }

    fn div(self, other: Self) -> Option<Self> {
        Self::new(
            self.num.checked_mul(other.den)?,
            self.den.checked_mul(other.num)?,
        )
    }
}

impl std::fmt::Display for Rational {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Parses a normalised answer as an exact rational: `[+-]digits`,
/// `[+-]digits.digits` (either side may be empty, not both),
/// `[+-]\frac{a}{b}` and `a/b` with `a`, `b` themselves parseable.
/// `None` for anything else or on overflow of `i128`.
pub fn parse_rational(s: &str) -> Option<Rational> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let value = if let Some(frac) = body.strip_prefix("\\frac") {
        let (a, rest) = braced(frac)?;
        let (b, rest) = braced(rest)?;
        if !rest.is_empty() {
            return None;
        }
        parse_rational(a)?.div(parse_rational(b)?)?
    } else if let Some((a, b)) = body.split_once('/') {
        parse_decimal(a)?.div(parse_decimal(b)?)?
    } else {
        parse_decimal(body)?
    };
    if negative {
        Rational::new(value.num.checked_neg()?, value.den)
    } else {
        Some(value)
    }
}

/// `{X}rest` → (`X`, `rest`), brace-matched.
fn braced(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('{')?;
    let mut depth = 1usize;
    for (i, ch) in body.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&body[..i], &body[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_decimal(s: &str) -> Option<Rational> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut num: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        num = num.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let den = 10i128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    Rational::new(num, den)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_latex_noise() {
        assert_eq!(normalise(r" \text{73} "), "73");
        assert_eq!(normalise(r"73^\circ"), "73");
        assert_eq!(normalise(r"73^{\circ}"), "73");
        assert_eq!(normalise(r"73\%"), "73");
        assert_eq!(normalise(r"n = 73"), "73");
        assert_eq!(normalise(r"1{,}073"), "1073");
        assert_eq!(normalise("1,073,000"), "1073000");
        assert_eq!(normalise(r"73."), "73");
        assert_eq!(normalise(r"\dfrac{1}{2}"), r"\frac{1}{2}");
        assert_eq!(normalise(r"\mathbf{\text{5}}"), "5");
        assert_eq!(normalise(r"\textit{x}"), r"\textit{x}");
        assert_eq!(normalise(r"1\!000"), "1000");
    }

    #[test]
    fn rationals_parse_exactly() {
        let r = |n, d| Some(Rational { num: n, den: d });
        assert_eq!(parse_rational("073"), r(73, 1));
        assert_eq!(parse_rational("73.00"), r(73, 1));
        assert_eq!(parse_rational("-.5"), r(-1, 2));
        assert_eq!(parse_rational(r"\frac{146}{2}"), r(73, 1));
        assert_eq!(parse_rational(r"-\frac{3}{-6}"), r(1, 2));
        assert_eq!(parse_rational("6/4"), r(3, 2));
        assert_eq!(parse_rational(r"\frac{1}{0}"), None);
        assert_eq!(parse_rational("."), None);
        assert_eq!(parse_rational("7a"), None);
        assert_eq!(parse_rational(&"9".repeat(60)), None);
    }

    #[test]
    fn modes_differ_only_where_documented() {
        let g = |text: &str, mode| grade_math(Some(text), "73", mode).outcome;
        assert_eq!(g(r"\boxed{073}", MathMode::Nemo), Outcome::Incorrect);
        assert_eq!(g(r"\boxed{073}", MathMode::BoxedInt), Outcome::Correct);
        assert_eq!(g("we get 73", MathMode::BoxedInt), Outcome::NoAnswer);
        assert_eq!(g("we get 73", MathMode::Arith), Outcome::Correct);
        assert_eq!(
            g(r"\boxed{72}, not 73", MathMode::Arith),
            Outcome::Incorrect
        );
        assert_eq!(
            grade_math(None, "73", MathMode::Arith).outcome,
            Outcome::NoAnswer
        );
    }

    #[test]
    fn vote_keys_are_canonical_values_outside_nemo_mode() {
        let v = grade_math(Some(r"\boxed{073}"), "73", MathMode::BoxedInt);
        assert_eq!(v.vote_key.as_deref(), Some("73"));
        assert_eq!(v.extracted.as_deref(), Some("073"));
        let v = grade_math(Some(r"\boxed{073}"), "73", MathMode::Nemo);
        assert_eq!(v.vote_key.as_deref(), Some("073"));
    }
}
