//! `hyperscale grade` end to end on hand-written completions files, one per
//! task kind, with hand-built expected answers; the text and JSON outputs
//! are snapshot-tested.

use std::path::{Path, PathBuf};

use hyperscale::grade::{
    CodeConfig, GradeError, Grader, MathMode, Regrade, Sandbox, SandboxConfig,
};
use hyperscale::report::{BootstrapConfig, GradeFormat, grade_report};
use hyperscale::task::{Expected, TestCase, TestKind};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/grade")
        .join(name)
}

/// The answer region of docs/data-formats.md §5: the text after the last
/// `</think>`; none when the thinking never ended.
fn after_think(text: &str) -> Option<&str> {
    text.rsplit_once("</think>")
        .map(|(_, answer)| answer.trim())
}

fn whole_text(text: &str) -> Option<&str> {
    Some(text)
}

fn both(path: &Path, task: &Regrade<'_>) -> (String, String) {
    let b = BootstrapConfig::default();
    let text = grade_report(path, task, GradeFormat::Text, &b).expect("grades");
    let json = grade_report(path, task, GradeFormat::Json, &b).expect("grades");
    (text, json)
}

#[test]
fn aime() {
    let expected = |id: &str, _repeat: u32, _sample: u64| {
        let answer = match id {
            "aime-a" => "73",
            "aime-b" => "204",
            _ => return None,
        };
        Some(Expected::Math {
            answer: answer.into(),
        })
    };
    let task = Regrade {
        grader: &Grader::Math {
            mode: MathMode::Nemo,
        },
        sandbox: None,
        expected: &expected,
        default_repeat: 0,
        answer_region: &after_think,
    };
    let (text, json) = both(&fixture("aime.completions.jsonl"), &task);
    insta::assert_snapshot!("aime_text", text);
    insta::assert_snapshot!("aime_json", json);
}

#[test]
fn gpqa() {
    // The correct letter depends on each sample's choice order.
    let expected = |id: &str, _repeat: u32, sample: u64| {
        (id == "gpqa-1").then(|| Expected::Letter {
            letter: ['A', 'C', 'B', 'D'][sample as usize % 4],
        })
    };
    let task = Regrade {
        grader: &Grader::MultipleChoice {
            mode: Default::default(),
        },
        sandbox: None,
        expected: &expected,
        default_repeat: 0,
        answer_region: &after_think,
    };
    let (text, json) = both(&fixture("gpqa.completions.jsonl"), &task);
    insta::assert_snapshot!("gpqa_text", text);
    insta::assert_snapshot!("gpqa_json", json);
}

#[test]
fn livecodebench() {
    let stdin = |i: &str, o: &str| TestCase {
        input: i.into(),
        output: o.into(),
        kind: TestKind::Stdin,
    };
    let call = |i: &str, o: &str| TestCase {
        input: i.into(),
        output: o.into(),
        kind: TestKind::Functional,
    };
    let expected = |id: &str, _repeat: u32, _sample: u64| match id {
        "sum" => Some(Expected::Code {
            tests: vec![
                stdin("1 2\n", "3\n"),
                stdin("4 4\n", "8\n"),
                stdin("9 1\n", "10\n"),
            ],
            fn_name: None,
        }),
        "two-sum" => Some(Expected::Code {
            tests: vec![
                call("[2, 7, 11, 15]\n9", "[0, 1]"),
                call("[3, 2, 4]\n6", "[1, 2]"),
            ],
            fn_name: Some("twoSum".into()),
        }),
        _ => None,
    };
    let sandbox = Sandbox::new(SandboxConfig {
        max_concurrent: 2,
        ..SandboxConfig::default()
    })
    .expect("python3 is needed");
    let task = Regrade {
        grader: &Grader::Code {
            config: CodeConfig {
                timeout_s: 1,
                ..CodeConfig::default()
            },
        },
        sandbox: Some(&sandbox),
        expected: &expected,
        default_repeat: 0,
        answer_region: &after_think,
    };
    let (text, json) = both(&fixture("lcb.completions.jsonl"), &task);
    insta::assert_snapshot!("lcb_text", text);
    insta::assert_snapshot!("lcb_json", json);
}

#[test]
fn arith() {
    let expected = |id: &str, _repeat: u32, _sample: u64| match id {
        "arith-0" => Some(Expected::Math {
            answer: "12".into(),
        }),
        "arith-1" => Some(Expected::Math {
            answer: "62".into(),
        }),
        _ => None,
    };
    let task = Regrade {
        grader: &Grader::Math {
            mode: MathMode::Arith,
        },
        sandbox: None,
        expected: &expected,
        default_repeat: 0,
        answer_region: &whole_text,
    };
    let (text, json) = both(&fixture("arith.completions.jsonl"), &task);
    insta::assert_snapshot!("arith_text", text);
    insta::assert_snapshot!("arith_json", json);
}

#[test]
fn unknown_problems_and_bad_lines_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"problem_id\": \"x\", \"sample\": 0, \"text\": \"\\\\boxed{1}\"}\n\n{\"problem_id\": \"y\", \"sample\": 0, \"text\": 5}\n").expect("write");
    let expected =
        |id: &str, _: u32, _: u64| (id == "x").then(|| Expected::Math { answer: "1".into() });
    let task = Regrade {
        grader: &Grader::Math {
            mode: MathMode::Nemo,
        },
        sandbox: None,
        expected: &expected,
        default_repeat: 0,
        answer_region: &whole_text,
    };
    let err =
        grade_report(&path, &task, GradeFormat::Text, &BootstrapConfig::default()).unwrap_err();
    assert!(
        matches!(err, GradeError::Completion { line: 3, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("bad.jsonl`:3: field `text`"),
        "{err}"
    );
    std::fs::write(
        &path,
        "{\"problem_id\": \"z\", \"sample\": 4, \"text\": \"t\"}\n",
    )
    .expect("write");
    let err =
        grade_report(&path, &task, GradeFormat::Text, &BootstrapConfig::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("bad.jsonl`:1: no expected answer for problem `z` sample 4"),
        "{err}"
    );
}
