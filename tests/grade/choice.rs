//! The multiple-choice grader against `gpqa_extraction_vectors.json`
//! (docs/grading.md §3): the default reproduces simple-evals at HEAD, the
//! NeMo mode reproduces NeMo-Skills `eval_mcq`.

use std::path::Path;

use hyperscale::grade::{ChoiceMode, Outcome, extract_choice, grade_choice};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vectors/gpqa_extraction_vectors.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vectors are JSON")
}

#[test]
fn default_reproduces_simple_evals_head() {
    assert_eq!(ChoiceMode::default(), ChoiceMode::SimpleEvals);
    let vs = vectors();
    assert_eq!(vs.len(), 14);
    for v in &vs {
        let text = v["text"].as_str().expect("text");
        let got = extract_choice(text, ChoiceMode::default());
        assert_eq!(
            got.as_deref(),
            v["simple_evals_current"].as_str(),
            "text {text:?}"
        );
    }
}

#[test]
fn nemo_mode_reproduces_nemo_skills() {
    for v in vectors() {
        let text = v["text"].as_str().expect("text");
        let got = extract_choice(text, ChoiceMode::Nemo);
        assert_eq!(
            got.as_deref(),
            v["nemo_skills_mcq"].as_str(),
            "text {text:?}"
        );
    }
}

#[test]
fn grading_compares_the_letter_exactly() {
    for v in vectors() {
        let text = v["text"].as_str().expect("text");
        let verdict = grade_choice(Some(text), 'C', ChoiceMode::default());
        let want = match v["simple_evals_current"].as_str() {
            None => Outcome::NoAnswer,
            Some("C") => Outcome::Correct,
            Some(_) => Outcome::Incorrect,
        };
        assert_eq!(verdict.outcome, want, "text {text:?}");
    }
}
