//! Re-grading saved completions (`hyperscale grade`): read a JSONL file of
//! `{problem_id, sample, text}` lines and grade each one against what its
//! problem expects. Usable without any model.
//!
//! The task side is passed in as two closures, so this stage does not depend
//! on how tasks are loaded: `expected(problem_id, sample)` gives the
//! [`Expected`] for that sample (for multiple choice it depends on the
//! sample's choice order), and `answer_region(text)` cuts the graded part out
//! of the completion (`None` when there is none, e.g. no `</think>`).

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
    pub sample: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What the regrade needs from the task side.
pub struct Regrade<'a> {
    pub grader: &'a Grader,
    /// Required for code graders.
    pub sandbox: Option<&'a Sandbox>,
    pub expected: &'a (dyn Fn(&str, u64) -> Option<Expected> + Sync),
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
    let text = field("text")?
        .as_str()
        .ok_or_else(|| bad("text", "expected a string".to_string()))?
        .to_string();
    Ok(CompletionLine {
        problem_id,
        sample,
        text,
        line,
    })
}

/// Grades completions (in parallel; the output keeps the input order).
///
/// A sandbox failure on one sample is recorded as a
/// [`Verdict::sandbox_error`] so the others still get graded.
///
/// # Errors
/// [`GradeError::UnknownProblem`] when `expected` knows no answer for a line
/// (naming `path:line`), and grader/expected mismatches.
pub fn regrade(
    path: &Path,
    lines: &[CompletionLine],
    task: &Regrade<'_>,
) -> Result<Vec<GradedSample>, GradeError> {
    lines
        .par_iter()
        .map(|c| {
            let expected = (task.expected)(&c.problem_id, c.sample).ok_or_else(|| {
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
                Err(GradeError::Sandbox(e)) => Verdict::sandbox_error(e.to_string()),
                Err(e) => return Err(e),
            };
            Ok(GradedSample {
                problem_id: c.problem_id.clone(),
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
    }
}
