//! AIME loader: JSONL in the common schemas (`docs/data-formats.md` §2.1).
//!
//! | schema | problem | answer | id |
//! |---|---|---|---|
//! | NeMo-Skills | `problem` | `expected_answer` | `id` (`aime24-0`) |
//! | Qwen2.5-Math | `problem` | `answer` | `id` (60…89) |
//! | plain / opencompass | `question` | `answer` | — |
//! | QwQ eval | `prompt` (instruction included) | `answer` | — |
//! | Maxwell-Jia | `Problem` | `Answer` | `ID` |
//!
//! The gold answer is `str(x).trim()`: an integer 0–999 of 1–3 digits, kept in
//! canonical form (`"025"` becomes `"25"`). Without an id the problem is `<task>-<index>`
//! (0-based record index, as NeMo-Skills numbers them).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::error::DataError;
use super::load::{Collector, LineError, Outcome, kind, read_jsonl};
use super::problem::{Problem, Reference};

/// Metadata key set on problems whose text already carries the instruction
/// (the QwQ `prompt` field); rendering then sends the text as is.
pub const PROMPT_INCLUDED: &str = "prompt_included";

const PROBLEM_FIELDS: [&str; 4] = ["problem", "Problem", "question", "prompt"];
const ANSWER_FIELDS: [&str; 3] = ["expected_answer", "answer", "Answer"];
const ID_FIELDS: [&str; 2] = ["id", "ID"];
/// Short fields copied into metadata when present.
const KEPT_FIELDS: [&str; 4] = ["url", "year", "source", "domain"];

/// Reads one AIME JSONL file into `collector`.
pub(crate) fn load(task: &str, path: &Path, collector: &mut Collector) -> Result<(), DataError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut index = 0usize;
    read_jsonl(path, collector, |line, map| {
        let this = index;
        index += 1;
        parse(task, &file_name, this, line, map).map(Outcome::Keep)
    })
}

fn parse(
    task: &str,
    file_name: &str,
    index: usize,
    line: usize,
    map: &Map<String, Value>,
) -> Result<Problem, LineError> {
    let (problem_field, question) = first_string(map, &PROBLEM_FIELDS)?;
    if question.trim().is_empty() {
        return Err(LineError::field(problem_field, "empty"));
    }
    let answer_field = ANSWER_FIELDS
        .iter()
        .find(|f| map.contains_key(**f))
        .ok_or_else(|| LineError::field(ANSWER_FIELDS.join("|"), "missing"))?;
    let answer = canonical_aime_answer(&scalar_text(&map[*answer_field], answer_field)?)
        .map_err(|reason| LineError::field(*answer_field, reason))?;
    let id = match ID_FIELDS.iter().find(|f| map.contains_key(**f)) {
        Some(field) => scalar_text(&map[*field], field)?,
        None => format!("{task}-{index}"),
    };

    let mut metadata = BTreeMap::new();
    metadata.insert("file".into(), Value::from(file_name));
    metadata.insert("line".into(), Value::from(line));
    for field in KEPT_FIELDS {
        if let Some(value) = map.get(field).filter(|v| v.is_string() || v.is_number()) {
            metadata.insert(field.into(), value.clone());
        }
    }
    if problem_field == "prompt" {
        metadata.insert(PROMPT_INCLUDED.into(), Value::Bool(true));
    }
    Ok(Problem {
        id,
        question: question.to_string(),
        reference: Reference::Math { answer },
        metadata,
    })
}

/// The first of `fields` present, which must be a string.
fn first_string<'a>(
    map: &'a Map<String, Value>,
    fields: &[&'static str],
) -> Result<(&'static str, &'a str), LineError> {
    for field in fields {
        match map.get(*field) {
            Some(Value::String(s)) => return Ok((field, s)),
            Some(other) => {
                return Err(LineError::field(
                    *field,
                    format!("expected a string, found {}", kind(other)),
                ));
            }
            None => {}
        }
    }
    Err(LineError::field(fields.join("|"), "missing"))
}

/// A string or integer field as trimmed text (`str(x).strip()`).
fn scalar_text(value: &Value, field: &str) -> Result<String, LineError> {
    match value {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(LineError::field(
            field,
            format!("expected a string or an integer, found {}", kind(other)),
        )),
    }
}

/// An AIME answer in canonical form: an integer 0–999 written with 1–3
/// digits, leading zeros removed. AIME itself writes answers as three digits,
/// and the Qwen2.5-Math file keeps that (`"025"`); NeMo-Skills writes `"25"`.
pub fn canonical_aime_answer(answer: &str) -> Result<String, String> {
    let digits_ok =
        !answer.is_empty() && answer.len() <= 3 && answer.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok {
        return Err(format!("`{answer}` is not an integer 0-999"));
    }
    let trimmed = answer.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0" } else { trimmed }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_each_schema() {
        let cases = [
            (
                r#"{"id":"aime24-3","problem":"P","expected_answer":"33"}"#,
                "aime24-3",
                "33",
                false,
            ),
            (
                r#"{"id":61,"problem":"P","answer":"113","question":"P"}"#,
                "61",
                "113",
                false,
            ),
            (r#"{"question":"P","answer":7}"#, "aime24-5", "7", false),
            (
                r#"{"prompt":"P\nPlease reason","answer":" 0 "}"#,
                "aime24-5",
                "0",
                true,
            ),
            (r#"{"problem":"P","answer":"025"}"#, "aime24-5", "25", false),
            (r#"{"problem":"P","answer":"000"}"#, "aime24-5", "0", false),
            (
                r#"{"ID":"2024-I-1","Problem":"P","Answer":204}"#,
                "2024-I-1",
                "204",
                false,
            ),
        ];
        for (json, id, answer, included) in cases {
            let p = parse("aime24", "f.jsonl", 5, 6, &map(json)).unwrap();
            assert_eq!(p.id, id, "{json}");
            assert_eq!(
                p.reference,
                Reference::Math {
                    answer: answer.into()
                }
            );
            assert_eq!(p.metadata.contains_key(PROMPT_INCLUDED), included);
        }
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (r#"{"problem":"P","answer":"0073"}"#, "answer"),
            (r#"{"problem":"P","answer":"1000"}"#, "answer"),
            (r#"{"problem":"P","answer":"-3"}"#, "answer"),
            (
                r#"{"problem":"P","expected_answer":1.5}"#,
                "expected_answer",
            ),
            (r#"{"problem":3,"answer":"1"}"#, "problem"),
            (r#"{"problem":"  ","answer":"1"}"#, "problem"),
            (r#"{"answer":"1"}"#, "problem|Problem|question|prompt"),
            (r#"{"problem":"P"}"#, "expected_answer|answer|Answer"),
        ];
        for (json, field) in cases {
            let err = parse("aime24", "f.jsonl", 0, 1, &map(json)).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{json}: {}", err.reason);
        }
    }
}
