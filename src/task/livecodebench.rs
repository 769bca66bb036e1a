//! LiveCodeBench loader: the official `code_generation_lite` JSONL
//! (`docs/data-formats.md` §2.3), filtered by a contest-date window, and the
//! public-only derivative in the same schema.
//!
//! `public_test_cases` and `private_test_cases` are JSON strings of
//! `[{input, output, testtype}]`, or in the lite release the private ones are
//! `base64(zlib(pickle(str)))`; `metadata` is a JSON string with `func_name`
//! for functional (LeetCode) problems. The derivative stores the same fields
//! as native JSON (lists, objects) and `private_test_cases: null`: such
//! problems are marked `public_only`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use base64::Engine;
use serde_json::{Map, Value};

use super::date::{Date, DateWindow};
use super::error::DataError;
use super::load::{Collector, LineError, Outcome, kind, read_jsonl, string_field};
use super::problem::{Problem, Reference, TestCase, TestKind};
use crate::limits::MAX_PRIVATE_TESTS_BYTES;

/// A LiveCodeBench release tag: which official files make it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// `release_vN`: files 1..=N (`test.jsonl`, `test2.jsonl`, …).
    Cumulative(u8),
    /// `vN`: file N alone.
    Single(u8),
}

/// The newest release this build knows (`release_latest`).
const LATEST: u8 = 6;

impl Release {
    /// The official file names of the release, in order.
    pub fn files(&self) -> Vec<String> {
        let name = |n: u8| {
            if n == 1 {
                "test.jsonl".to_string()
            } else {
                format!("test{n}.jsonl")
            }
        };
        match *self {
            Self::Cumulative(n) => (1..=n).map(name).collect(),
            Self::Single(n) => vec![name(n)],
        }
    }
}

impl FromStr for Release {
    type Err = String;

    fn from_str(tag: &str) -> Result<Self, String> {
        let number = |digits: &str| match digits.parse::<u8>() {
            Ok(n) if (1..=LATEST).contains(&n) => Ok(n),
            _ => Err(format!(
                "unknown release `{tag}` (use release_v1..release_v{LATEST}, release_latest or v1..v{LATEST})"
            )),
        };
        if tag == "release_latest" {
            Ok(Self::Cumulative(LATEST))
        } else if let Some(digits) = tag.strip_prefix("release_v") {
            number(digits).map(Self::Cumulative)
        } else if let Some(digits) = tag.strip_prefix('v') {
            number(digits).map(Self::Single)
        } else {
            number("").map(Self::Single)
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cumulative(n) => write!(f, "release_v{n}"),
            Self::Single(n) => write!(f, "v{n}"),
        }
    }
}

/// Reads one LCB JSONL file into `collector`, keeping problems whose
/// `contest_date` falls in `window`.
pub(crate) fn load(
    path: &Path,
    window: &DateWindow,
    collector: &mut Collector,
) -> Result<(), DataError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    read_jsonl(path, collector, |_, map| parse(&file_name, window, map))
}

fn parse(
    file_name: &str,
    window: &DateWindow,
    map: &Map<String, Value>,
) -> Result<Outcome, LineError> {
    let contest_date = string_field(map, "contest_date")?;
    let date = Date::parse_prefix(contest_date)
        .map_err(|e| LineError::field("contest_date", e.to_string()))?;
    if !window.contains(date) {
        return Ok(Outcome::Filtered);
    }
    let id = string_field(map, "question_id")?.trim().to_string();
    if id.is_empty() {
        return Err(LineError::field("question_id", "empty"));
    }
    let question = string_field(map, "question_content")?;
    let starter_code = match map.get("starter_code") {
        None | Some(Value::Null) => "",
        Some(_) => string_field(map, "starter_code")?,
    };
    let fn_name = func_name(map)?;
    let public = test_list(map.get("public_test_cases"), "public_test_cases")?
        .ok_or_else(|| LineError::field("public_test_cases", "missing"))?;
    let private = match map.get("private_test_cases") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(decode_private_tests(s).map_err(|reason| {
            LineError::field("private_test_cases", format!("problem `{id}`: {reason}"))
        })?),
        other => test_list(other, "private_test_cases")?,
    };
    let expected_kind = if fn_name.is_some() {
        TestKind::Functional
    } else {
        TestKind::Stdin
    };
    for (field, tests) in [
        ("public_test_cases", Some(&public)),
        ("private_test_cases", private.as_ref()),
    ] {
        if let Some(bad) = tests
            .into_iter()
            .flatten()
            .find(|t| t.kind != expected_kind)
        {
            return Err(LineError::field(
                field,
                format!(
                    "a `{}` test in a problem whose metadata {} `func_name`",
                    kind_name(bad.kind),
                    if fn_name.is_some() { "has" } else { "lacks" }
                ),
            ));
        }
    }
    let (n_public, n_private) = (public.len(), private.as_ref().map_or(0, Vec::len));
    if n_public + n_private == 0 {
        return Err(LineError::field("public_test_cases", "no tests at all"));
    }

    let mut metadata = BTreeMap::new();
    metadata.insert("file".into(), Value::from(file_name));
    for field in [
        "platform",
        "contest_id",
        "contest_date",
        "difficulty",
        "question_title",
    ] {
        if let Some(Value::String(s)) = map.get(field) {
            metadata.insert(field.into(), Value::from(s.as_str()));
        }
    }
    metadata.insert("n_public_tests".into(), Value::from(n_public));
    metadata.insert("n_private_tests".into(), Value::from(n_private));
    let public_only = private.is_none();
    let mut tests = public;
    tests.extend(private.unwrap_or_default());
    Ok(Outcome::Keep(Problem {
        id,
        question: question.to_string(),
        reference: Reference::Code {
            tests,
            fn_name,
            starter_code: starter_code.to_string(),
            public_only,
        },
        metadata,
    }))
}

fn kind_name(kind: TestKind) -> &'static str {
    match kind {
        TestKind::Stdin => "stdin",
        TestKind::Functional => "functional",
    }
}

/// `metadata.func_name`, where `metadata` is a JSON string or an object.
fn func_name(map: &Map<String, Value>) -> Result<Option<String>, LineError> {
    let parsed;
    let object = match map.get("metadata") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(Value::String(text)) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| LineError::field("metadata", format!("invalid JSON string: {e}")))?;
            parsed
                .as_object()
                .ok_or_else(|| LineError::field("metadata", "not a JSON object"))?
        }
        Some(other) => {
            return Err(LineError::field(
                "metadata",
                format!("expected a JSON string or an object, found {}", kind(other)),
            ));
        }
    };
    match object.get("func_name") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if !name.trim().is_empty() => Ok(Some(name.trim().to_string())),
        Some(_) => Err(LineError::field(
            "metadata",
            "`func_name` is not a non-empty string",
        )),
    }
}

/// A test list given as a JSON string or a native array; `None` when absent.
fn test_list(value: Option<&Value>, field: &str) -> Result<Option<Vec<TestCase>>, LineError> {
    let parsed;
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(Value::String(text)) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|e| LineError::field(field, format!("invalid JSON string: {e}")))?;
            parsed
                .as_array()
                .ok_or_else(|| LineError::field(field, "not a JSON list"))?
        }
        Some(other) => {
            return Err(LineError::field(
                field,
                format!("expected a JSON string or a list, found {}", kind(other)),
            ));
        }
    };
    tests_from_json(items)
        .map(Some)
        .map_err(|reason| LineError::field(field, reason))
}

fn tests_from_json(items: &[Value]) -> Result<Vec<TestCase>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let text = |key: &str| -> Result<String, String> {
                item.get(key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("test {i}: `{key}` is missing or not a string"))
            };
            let kind = match text("testtype")?.as_str() {
                "stdin" => TestKind::Stdin,
                "functional" => TestKind::Functional,
                other => return Err(format!("test {i}: unknown testtype `{other}`")),
            };
            Ok(TestCase {
                input: text("input")?,
                output: text("output")?,
                kind,
            })
        })
        .collect()
}

/// Decodes `private_test_cases` as LiveCodeBench does: JSON if it parses as a
/// list, else `json.loads(pickle.loads(zlib.decompress(b64decode(s))))`.
/// Inflating stops at [`MAX_PRIVATE_TESTS_BYTES`] (1 GiB): beyond it the
/// field is refused, so a zlib bomb cannot take the host's memory.
pub fn decode_private_tests(encoded: &str) -> Result<Vec<TestCase>, String> {
    decode_private_tests_capped(encoded, MAX_PRIVATE_TESTS_BYTES)
}

fn decode_private_tests_capped(encoded: &str, cap: u64) -> Result<Vec<TestCase>, String> {
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(encoded) {
        return tests_from_json(&items);
    }
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("neither JSON nor base64: {e}"))?;
    let mut pickled = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(cap.saturating_add(1))
        .read_to_end(&mut pickled)
        .map_err(|e| format!("zlib: {e}"))?;
    if pickled.len() as u64 > cap {
        return Err(format!(
            "zlib: inflates to more than {} MiB, the cap on one problem's private tests",
            cap >> 20
        ));
    }
    let json: String = serde_pickle::from_slice(&pickled, serde_pickle::DeOptions::new())
        .map_err(|e| format!("pickle (expected a str): {e}"))?;
    let items = match serde_json::from_str::<Value>(&json) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Err("decoded value is not a JSON list".into()),
        Err(e) => return Err(format!("decoded value is not JSON: {e}")),
    };
    tests_from_json(&items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> DateWindow {
        DateWindow {
            from: "2024-08-01".parse().unwrap(),
            to: "2025-01-31".parse().unwrap(),
        }
    }

    fn record(extra: &str) -> Map<String, Value> {
        let base = r#"{"question_id":"abc1","question_content":"Q","contest_date":"2024-09-01T00:00:00","platform":"atcoder","starter_code":"","public_test_cases":"[{\"input\": \"1\\n\", \"output\": \"2\\n\", \"testtype\": \"stdin\"}]","metadata":"{}""#;
        serde_json::from_str(&format!("{base}{extra}}}")).unwrap()
    }

    #[test]
    fn releases_name_their_files() {
        let v5: Release = "release_v5".parse().unwrap();
        assert_eq!(
            v5.files(),
            [
                "test.jsonl",
                "test2.jsonl",
                "test3.jsonl",
                "test4.jsonl",
                "test5.jsonl"
            ]
        );
        assert_eq!("v1".parse::<Release>().unwrap().files(), ["test.jsonl"]);
        assert_eq!(
            "release_latest".parse::<Release>().unwrap(),
            Release::Cumulative(6)
        );
        for bad in ["release_v7", "v0", "latest", "5"] {
            assert!(bad.parse::<Release>().is_err(), "{bad}");
        }
    }

    #[test]
    fn stdin_record_without_private_tests_is_public_only() {
        let Outcome::Keep(p) = parse("f", &window(), &record("")).unwrap() else {
            panic!("filtered")
        };
        let Reference::Code {
            tests,
            fn_name,
            public_only,
            ..
        } = p.reference
        else {
            panic!("not code")
        };
        assert_eq!(tests.len(), 1);
        assert_eq!((fn_name, public_only), (None, true));
    }

    #[test]
    fn outside_window_is_filtered() {
        let mut map = record("");
        map.insert("contest_date".into(), Value::from("2024-07-31T23:00:00"));
        assert!(matches!(parse("f", &window(), &map), Ok(Outcome::Filtered)));
    }

    #[test]
    fn test_kind_must_agree_with_func_name() {
        let map = record(r#","metadata":"{\"func_name\": \"f\"}""#);
        let err = parse("f", &window(), &map).err().unwrap();
        assert_eq!(err.field.as_deref(), Some("public_test_cases"));
    }

    #[test]
    fn private_tests_inflating_past_the_cap_are_refused() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 4 << 20]).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
        let err = decode_private_tests_capped(&encoded, 1 << 20).unwrap_err();
        assert!(err.contains("more than 1 MiB"), "{err}");
        // Under the cap it inflates and fails later, at the pickle.
        let err = decode_private_tests_capped(&encoded, 8 << 20).unwrap_err();
        assert!(err.starts_with("pickle"), "{err}");
    }

    #[test]
    fn bad_private_tests_name_the_field() {
        let map = record(r#","private_test_cases":"not base64!""#);
        let err = parse("f", &window(), &map).err().unwrap();
        assert_eq!(err.field.as_deref(), Some("private_test_cases"));
    }
}
