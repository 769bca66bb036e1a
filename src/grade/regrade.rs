//! Re-grading saved completions (`hyperscale grade`): read a JSONL file of
//! `{problem_id, repeat?, sample, text}` lines and grade each one against
//! what its problem expects. Usable without any model.
//!
//! The task side is passed in as two closures, so this stage does not depend
//! on how tasks are loaded: `expected(problem_id, repeat, sample)` gives the
//! [`Expected`] for that sample (for multiple choice it depends on the
//! repeat: simple-evals draws a choice order per repeat of each problem),
//! and `answer_region(text)` cuts the graded part out of the completion
//! (`None` when there is none, e.g. no `</think>`).
//!
//! A line without `repeat` belongs to [`Regrade::default_repeat`]. Each
//! `(problem_id, repeat, sample)` may appear once: a file that repeats one
//! is refused ([`GradeError::Duplicate`], naming both lines) rather than
//! counted twice.

use std::collections::HashMap;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::GradeError;
use super::grader::Grader;
use super::sandbox::Sandbox;
use super::verdict::Verdict;
use crate::task::Expected;

/// One line of a completions file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionLine {
    pub problem_id: String,
    /// The repeat the sample belongs to; `None`: not given on the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    pub sample: u64,
    pub text: String,
    /// 1-based line number in the file it was read from (not serialised).
    #[serde(skip)]
    pub line: usize,
}

/// One graded sample: the verdict with the sample's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedSample {
    pub problem_id: String,
    /// The repeat the sample was graded as (its line's, else the default).
    #[serde(default)]
    pub repeat: u32,
    pub sample: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What the regrade needs from the task side.
pub struct Regrade<'a> {
    pub grader: &'a Grader,
    /// Required for code graders.
    pub sandbox: Option<&'a Sandbox>,
    /// `(problem_id, repeat, sample)` → what the sample is graded against.
    pub expected: &'a (dyn Fn(&str, u32, u64) -> Option<Expected> + Sync),
    /// The repeat of lines that do not name one (`hyperscale grade --repeat`).
    pub default_repeat: u32,
    pub answer_region: &'a (dyn for<'t> Fn(&'t str) -> Option<&'t str> + Sync),
}

/// Reads a completions file; blank lines are skipped.
///
/// # Errors
/// [`GradeError::Read`] when the file cannot be read, and
/// [`GradeError::Completion`] naming `file:line` and the field at fault.
pub fn read_completions(path: &Path) -> Result<Vec<CompletionLine>, GradeError> {
    let text = std::fs::read_to_string(path).map_err(|source| GradeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        lines.push(parse_line(path, i + 1, raw)?);
    }
    Ok(lines)
}

fn parse_line(path: &Path, line: usize, raw: &str) -> Result<CompletionLine, GradeError> {
    let bad = |field: &str, reason: String| GradeError::Completion {
        path: PathBuf::from(path),
        line,
        field: field.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| bad("(line)", format!("not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("(line)", "not a JSON object".to_string()))?;
    let field = |name: &str| {
        object
            .get(name)
            .ok_or_else(|| bad(name, "missing".to_string()))
    };
    let problem_id = match field("problem_id")? {
        serde_json::Value::String(s) => s.clone(),
        // Numeric ids (e.g. AIME ids) are accepted as their decimal text.
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(bad("problem_id", format!("expected a string, got {other}"))),
    };
    let sample = field("sample")?
        .as_u64()
        .ok_or_else(|| bad("sample", "expected a non-negative integer".to_string()))?;
    let repeat = match object.get("repeat") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|r| u32::try_from(r).ok())
                .ok_or_else(|| {
                    bad(
                        "repeat",
                        format!("expected an integer in 0..={}, got {v}", u32::MAX),
                    )
                })?,
        ),
    };
    let text = field("text")?
        .as_str()
        .ok_or_else(|| bad("text", "expected a string".to_string()))?
        .to_string();
    Ok(CompletionLine {
        problem_id,
        repeat,
        sample,
        text,
        line,
    })
}

/// Grades completions (in parallel; the output keeps the input order), each
/// against its own repeat's expected answer.
///
/// A sandbox failure on one sample is recorded as a
/// [`Verdict::sandbox_error`] so the others still get graded.
///
/// # Errors
/// [`GradeError::Duplicate`] when a `(problem_id, repeat, sample)` appears
/// twice (before anything is graded), [`GradeError::UnknownProblem`] when
/// `expected` knows no answer for a line (naming `path:line`), and
/// grader/expected mismatches.
pub fn regrade(
    path: &Path,
    lines: &[CompletionLine],
    task: &Regrade<'_>,
) -> Result<Vec<GradedSample>, GradeError> {
    let repeat_of = |c: &CompletionLine| c.repeat.unwrap_or(task.default_repeat);
    let mut seen: HashMap<(&str, u32, u64), usize> = HashMap::new();
    for c in lines {
        if let Some(&first) = seen.get(&(c.problem_id.as_str(), repeat_of(c), c.sample)) {
            return Err(GradeError::Duplicate {
                path: path.to_path_buf(),
                line: c.line,
                first,
                problem_id: c.problem_id.clone(),
                repeat: repeat_of(c),
                sample: c.sample,
            });
        }
        seen.insert((&c.problem_id, repeat_of(c), c.sample), c.line);
    }
    lines
        .par_iter()
        .map(|c| {
            let repeat = repeat_of(c);
            let expected = (task.expected)(&c.problem_id, repeat, c.sample).ok_or_else(|| {
                GradeError::UnknownProblem {
                    path: path.to_path_buf(),
                    line: c.line,
                    problem_id: c.problem_id.clone(),
                    sample: c.sample,
                }
            })?;
            let region = (task.answer_region)(&c.text);
            let verdict = match task.grader.grade(region, &expected, task.sandbox) {
                Ok(v) => v,
                Err(GradeError::Sandbox(e)) => Verdict::sandbox_error(crate::error_chain(&e)),
                Err(e) => return Err(e),
            };
            Ok(GradedSample {
                problem_id: c.problem_id.clone(),
                repeat,
                sample: c.sample,
                verdict,
            })
        })
        .collect()
}

/// [`read_completions`] then [`regrade`].
///
/// # Errors
/// As those two.
pub fn regrade_file(path: &Path, task: &Regrade<'_>) -> Result<Vec<GradedSample>, GradeError> {
    let lines = read_completions(path)?;
    regrade(path, &lines, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<CompletionLine, GradeError> {
        parse_line(Path::new("c.jsonl"), 7, raw)
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = parse(r#"{"problem_id": "p", "text": "x"}"#).unwrap_err();
        assert_eq!(err.to_string(), "`c.jsonl`:7: field `sample`: missing");
        let err = parse(r#"{"problem_id": "p", "sample": -1, "text": "x"}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("`c.jsonl`:7: field `sample`"),
            "{err}"
        );
        let err = parse(r#"{"problem_id": [], "sample": 0, "text": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("field `problem_id`"), "{err}");
        let err = parse("not json").unwrap_err();
        assert!(err.to_string().contains("`c.jsonl`:7"), "{err}");
    }

    #[test]
    fn numeric_problem_ids_are_accepted() {
        let c = parse(r#"{"problem_id": 60, "sample": 2, "text": "t"}"#).unwrap();
        assert_eq!((c.problem_id.as_str(), c.sample, c.line), ("60", 2, 7));
        assert_eq!(c.repeat, None);
        let c = parse(r#"{"problem_id": "p", "repeat": 3, "sample": 2, "text": "t"}"#).unwrap();
        assert_eq!(c.repeat, Some(3));
        let err =
            parse(r#"{"problem_id": "p", "repeat": -1, "sample": 2, "text": "t"}"#).unwrap_err();
        assert!(err.to_string().contains("field `repeat`"), "{err}");
    }

    fn whole(text: &str) -> Option<&str> {
        Some(text)
    }

    fn math_task<'a>(
        expected: &'a (dyn Fn(&str, u32, u64) -> Option<Expected> + Sync),
    ) -> Regrade<'a> {
        Regrade {
            grader: &Grader::Math {
                mode: crate::grade::MathMode::Arith,
            },
            sandbox: None,
            expected,
            default_repeat: 0,
            answer_region: &whole,
        }
    }

    /// Defect: `grade` counted a duplicated `(problem_id, sample)` twice
    /// without a word. It is refused, naming both lines.
    #[test]
    fn grade_refuses_duplicated_problem_sample() {
        let expected = |_: &str, _: u32, _: u64| Some(Expected::Math { answer: "1".into() });
        let task = math_task(&expected);
        let lines = vec![
            parse(r#"{"problem_id": "p", "sample": 0, "text": "1"}"#).unwrap(),
            CompletionLine {
                line: 9,
                ..parse(r#"{"problem_id": "p", "sample": 0, "text": "2"}"#).unwrap()
            },
        ];
        let err = regrade(Path::new("c.jsonl"), &lines, &task).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`c.jsonl`:9: problem `p` repeat 0 sample 0 is already on line 7; each (problem_id, repeat, sample) may appear once"
        );
        // The same sample index in another repeat is another sample.
        let other = CompletionLine {
            repeat: Some(1),
            ..lines[1].clone()
        };
        let graded = regrade(Path::new("c.jsonl"), &[lines[0].clone(), other], &task).unwrap();
        assert_eq!(graded.len(), 2);
    }

    /// Defect: `grade --repeat` graded every sample against one repeat's
    /// choice order. Each line is graded against its own repeat.
    #[test]
    fn grade_repeat_each_sample_graded_against_its_own_repeat() {
        // Repeat r's correct letter: A, B, C, … (a stand-in for the
        // per-repeat shuffle of simple-evals).
        let expected = |_: &str, repeat: u32, _: u64| {
            Some(Expected::Letter {
                letter: (b'A' + repeat as u8) as char,
            })
        };
        let task = Regrade {
            grader: &Grader::MultipleChoice {
                mode: Default::default(),
            },
            sandbox: None,
            expected: &expected,
            default_repeat: 2,
            answer_region: &whole,
        };
        let lines: Vec<CompletionLine> = [
            r#"{"problem_id": "q", "repeat": 0, "sample": 0, "text": "Answer: A"}"#,
            r#"{"problem_id": "q", "repeat": 1, "sample": 0, "text": "Answer: B"}"#,
            r#"{"problem_id": "q", "sample": 0, "text": "Answer: C"}"#,
        ]
        .iter()
        .map(|l| parse(l).unwrap())
        .collect();
        let graded = regrade(Path::new("c.jsonl"), &lines, &task).unwrap();
        assert_eq!(
            graded.iter().map(|g| g.repeat).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(graded.iter().all(|g| g.verdict.is_correct()), "{graded:?}");
    }
}
