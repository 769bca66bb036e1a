//! The math grader against the 20 reference cases of
//! `math_grading_vectors.json` (benchmarks.md §3.5): the default mode
//! reproduces the NeMo-Skills column exactly; the other modes differ from it
//! only on the cases their documentation names.

use std::path::Path;

use hyperscale::grade::{MathMode, Outcome, grade_math};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors/math_grading_vectors.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vectors are JSON")
}

/// (case, correct) for every vector under `mode`.
fn run(mode: MathMode) -> Vec<(String, bool)> {
    vectors()
        .iter()
        .map(|v| {
            let pred = v["pred"].as_str().expect("pred");
            let gold = v["gold"].as_str().expect("gold");
            let verdict = grade_math(Some(pred), gold, mode);
            (
                v["case"].as_str().expect("case").to_string(),
                verdict.outcome == Outcome::Correct,
            )
        })
        .collect()
}

#[test]
fn default_mode_reproduces_the_nemo_skills_column() {
    assert_eq!(MathMode::default(), MathMode::Nemo);
    let vs = vectors();
    assert_eq!(vs.len(), 20);
    for (v, (case, got)) in vs.iter().zip(run(MathMode::default())) {
        assert_eq!(
            Some(got),
            v["nemo_skills_correct"].as_bool(),
            "case `{case}`"
        );
    }
}

#[test]
fn default_mode_extracts_what_nemo_extracts() {
    for v in vectors() {
        let pred = v["pred"].as_str().expect("pred");
        let verdict = grade_math(
            Some(pred),
            v["gold"].as_str().expect("gold"),
            MathMode::Nemo,
        );
        let want = v["nemo_skills_extracted"].as_str();
        assert_eq!(verdict.extracted.as_deref(), want, "case `{}`", v["case"]);
        assert_eq!(verdict.outcome == Outcome::NoAnswer, want.is_none());
    }
}

fn differences(mode: MathMode) -> Vec<String> {
    vectors()
        .iter()
        .zip(run(mode))
        .filter(|(v, (_, got))| Some(*got) != v["nemo_skills_correct"].as_bool())
        .map(|(_, (case, _))| case)
        .collect()
}

#[test]
fn boxed_int_differs_from_nemo_only_on_leniencies() {
    assert_eq!(
        differences(MathMode::BoxedInt),
        ["leading zero", "fbox", "boxed without braces"]
    );
}

#[test]
fn arith_adds_the_last_number_fallback() {
    assert_eq!(
        differences(MathMode::Arith),
        [
            "leading zero",
            "no box, 'answer is'",
            "no box, last number",
            "fbox",
            "boxed without braces"
        ]
    );
}
