//! Task files, loaders and rendering against the real data in `tests/data`
//! and the shared test vectors. Counts and answer sets come from
//! docs/data-formats.md §6, not from the loaders under test.
//! GPQA question text is never printed or snapshotted here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hyperscale::task::{
    DataError, Expected, LoadOptions, Problem, Reference, SampleCtx, Task, TestKind,
    decode_private_tests, simple_evals_permutations,
};

fn shared(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    assert!(path.exists(), "missing shared data `{}`", path.display());
    path
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tasks")
        .join(rel)
}

fn load(task: &str, data: PathBuf) -> Vec<Problem> {
    let report = Task::builtin(task)
        .unwrap()
        .load_problems(&LoadOptions::with_data(data))
        .unwrap_or_else(|e| panic!("{task}: {e}"));
    assert!(report.skipped.is_empty());
    report.problems
}

fn sorted_answers(problems: &[Problem]) -> Vec<u32> {
    let mut answers: Vec<u32> = problems
        .iter()
        .map(|p| match &p.reference {
            Reference::Math { answer } => answer.parse().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    answers.sort();
    answers
}

// docs/data-formats.md §6.
const AIME24: [u32; 30] = [
    23, 25, 33, 45, 55, 73, 80, 104, 104, 110, 113, 116, 127, 197, 204, 211, 236, 294, 315, 321,
    371, 385, 468, 480, 540, 601, 699, 721, 809, 902,
];
const AIME25: [u32; 30] = [
    16, 19, 49, 60, 62, 70, 77, 81, 82, 104, 106, 113, 117, 149, 204, 237, 240, 248, 259, 279, 293,
    336, 468, 504, 510, 588, 610, 735, 821, 907,
];

#[test]
fn aime24_loads_in_both_schemas() {
    let nemo = load("aime24", shared("aime24/nemo_skills_aime24_test.jsonl"));
    let qwen = load("aime24", shared("aime24/qwen25math_aime24_test.jsonl"));
    assert_eq!((nemo.len(), qwen.len()), (30, 30));
    assert_eq!(sorted_answers(&nemo), AIME24);
    assert_eq!(sorted_answers(&qwen), AIME24);
    assert_eq!(nemo[0].id, "aime24-0");
    assert_eq!(qwen[0].id, "60");
}

#[test]
fn aime25_loads() {
    let problems = load("aime25", shared("aime25/nemo_skills_aime25_test.jsonl"));
    assert_eq!(problems.len(), 30);
    assert_eq!(sorted_answers(&problems), AIME25);
}

#[test]
fn data_is_found_under_a_root_folder() {
    let opts = LoadOptions {
        roots: vec![PathBuf::from("/nonexistent-root"), shared("")],
        ..LoadOptions::default()
    };
    let report = Task::builtin("aime24")
        .unwrap()
        .load_problems(&opts)
        .unwrap();
    assert_eq!(report.problems.len(), 30);
    assert_eq!(
        report.files,
        [shared("aime24/nemo_skills_aime24_test.jsonl")]
    );
    // A folder given as --data is searched the same way.
    let report = Task::builtin("aime25")
        .unwrap()
        .load_problems(&LoadOptions::with_data(shared("aime25")))
        .unwrap();
    assert_eq!(report.problems.len(), 30);

    let opts = LoadOptions {
        roots: vec![PathBuf::from("/nonexistent-root")],
        ..LoadOptions::default()
    };
    let err = Task::builtin("aime24")
        .unwrap()
        .load_problems(&opts)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DataError::NotFound { .. }));
    assert!(
        message.contains("/nonexistent-root/aime24/nemo_skills_aime24_test.jsonl"),
        "{message}"
    );
}

#[test]
fn malformed_line_names_file_line_and_field() {
    let path = fixture("aime_malformed.jsonl");
    let task = Task::builtin("aime24").unwrap();
    let err = task
        .load_problems(&LoadOptions::with_data(&path))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3: field `expected_answer`: `1000` is not an integer 0-999",
            path.display()
        )
    );

    let lenient = LoadOptions {
        lenient: true,
        ..LoadOptions::with_data(&path)
    };
    let report = task.load_problems(&lenient).unwrap();
    let ids: Vec<&str> = report.problems.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["t-0", "t-1", "t-3"]);
    let skipped: Vec<(usize, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2);
    assert_eq!(
        skipped[0],
        (3, "field `expected_answer`: `1000` is not an integer 0-999")
    );
    assert_eq!(skipped[1].0, 6);
    assert!(skipped[1].1.starts_with("invalid JSON"), "{}", skipped[1].1);
}

#[test]
fn duplicate_ids_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.jsonl");
    let line = r#"{"id": "x", "problem": "P", "answer": "1"}"#;
    std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
    let err = Task::builtin("aime24")
        .unwrap()
        .load_problems(&LoadOptions::with_data(&path))
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2: field `id`: duplicate id `x`"), "{err}");
}

fn gpqa_zip() -> Vec<Problem> {
    load("gpqa-diamond", shared("gpqa/dataset.zip"))
}

#[test]
fn gpqa_zip_loads_198_rows() {
    let problems = gpqa_zip();
    assert_eq!(problems.len(), 198);
    let mut domains = BTreeMap::new();
    for (row, p) in problems.iter().enumerate() {
        assert_eq!(p.metadata["row"], row);
        assert_eq!(p.metadata["n_rows"], 198);
        assert!(p.id.starts_with("rec"), "{}", p.id);
        *domains
            .entry(p.metadata["domain"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let Reference::MultipleChoice { incorrect, .. } = &p.reference else {
            panic!()
        };
        assert_eq!(incorrect.len(), 3);
    }
    // docs/data-formats.md §6: Chemistry 93, Physics 86, Biology 19.
    let expected: BTreeMap<String, i32> = [("Biology", 19), ("Chemistry", 93), ("Physics", 86)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    assert_eq!(domains, expected);
}

#[test]
fn gpqa_csv_loads_the_same_problems_as_the_zip() {
    // Extract the member to a temp dir (never into the repository).
    let zip_path = shared("gpqa/dataset.zip");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut csv = Vec::new();
    std::io::copy(
        &mut archive
            .by_name_decrypt("dataset/gpqa_diamond.csv", b"deserted-untie-orchid")
            .unwrap(),
        &mut csv,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gpqa_diamond.csv"), &csv).unwrap();
    // A folder with both: the CSV comes first in the task's file list.
    std::fs::copy(&zip_path, dir.path().join("dataset.zip")).unwrap();
    let report = Task::builtin("gpqa-diamond")
        .unwrap()
        .load_problems(&LoadOptions::with_data(dir.path()))
        .unwrap();
    assert_eq!(report.files, [dir.path().join("gpqa_diamond.csv")]);
    assert!(report.problems == gpqa_zip(), "CSV and zip problems differ");
}

#[test]
fn gpqa_wrong_password_is_a_clear_error() {
    let opts = LoadOptions {
        zip_password: Some("not-the-password".into()),
        ..LoadOptions::with_data(shared("gpqa/dataset.zip"))
    };
    let err = Task::builtin("gpqa-diamond")
        .unwrap()
        .load_problems(&opts)
        .unwrap_err();
    assert!(matches!(err, DataError::ZipDecrypt { .. }), "{err}");
    assert!(err.to_string().contains("dataset/gpqa_diamond.csv"));
}

#[derive(serde::Deserialize)]
struct PermutationVectors {
    n_rows: usize,
    n_repeats_max: usize,
    permutations: Vec<[usize; 4]>,
    correct_letter: Vec<String>,
}

fn permutation_vectors() -> PermutationVectors {
    let text =
        std::fs::read_to_string(shared("vectors/simple_evals_permutations_seed0.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn simple_evals_permutation_table_matches_for_all_entries() {
    let v = permutation_vectors();
    assert_eq!(v.permutations.len(), v.n_rows * v.n_repeats_max);
    assert_eq!(v.permutations.len(), 198 * 64);
    let ours = simple_evals_permutations(0, v.permutations.len());
    let mismatches = ours
        .iter()
        .zip(&v.permutations)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(mismatches, 0);
}

#[test]
fn gpqa_render_gives_the_reference_letters_for_all_repeats() {
    let v = permutation_vectors();
    let task = Task::builtin("gpqa-diamond").unwrap();
    let problems = gpqa_zip();
    let mut checked = 0;
    // Render in an order unlike the stream's, to exercise the memo.
    for repeat in (0..v.n_repeats_max as u32).rev() {
        for (row, problem) in problems.iter().enumerate() {
            let rendered = task.render(problem, SampleCtx { repeat }).unwrap();
            let index = repeat as usize * v.n_rows + row;
            let Expected::Letter { letter } = rendered.expected else {
                panic!()
            };
            assert_eq!(
                letter.to_string(),
                v.correct_letter[index],
                "repeat {repeat} row {row}"
            );
            // The correct answer text sits after the expected letter.
            let Reference::MultipleChoice { correct, .. } = &problem.reference else {
                panic!()
            };
            assert!(
                rendered
                    .user_message
                    .contains(&format!("\n{letter}) {correct}"))
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12672);
}

#[test]
fn gpqa_prompt_layout_on_a_synthetic_problem() {
    let task = Task::builtin("gpqa-diamond").unwrap();
    let problem = Problem {
        id: "synthetic".into(),
        question: "Which is largest?".into(),
        reference: Reference::MultipleChoice {
            correct: "4".into(),
            incorrect: vec!["1".into(), "2".into(), "3".into()],
        },
        metadata: [
            ("row".to_string(), 0.into()),
            ("n_rows".to_string(), 198.into()),
        ]
        .into(),
    };
    // Permutation 0 is [3, 1, 0, 2]: D) shows option 2, C) the correct one.
    let rendered = task.render(&problem, SampleCtx { repeat: 0 }).unwrap();
    insta::assert_snapshot!("gpqa_synthetic_repeat0", rendered.user_message);
    assert_eq!(rendered.expected, Expected::Letter { letter: 'C' });
}

fn lcb_public() -> Vec<Problem> {
    load(
        "livecodebench",
        shared("livecodebench/lcb_v5_2408_2501_derived_public_only.jsonl"),
    )
}

#[test]
fn livecodebench_public_only_loads_279() {
    let problems = lcb_public();
    assert_eq!(problems.len(), 279);
    let (mut atcoder, mut leetcode, mut stdin_tests, mut functional_tests) = (0, 0, 0, 0);
    for p in &problems {
        let Reference::Code {
            tests,
            fn_name,
            public_only,
            starter_code,
        } = &p.reference
        else {
            panic!()
        };
        assert!(public_only);
        match p.metadata["platform"].as_str().unwrap() {
            "atcoder" => {
                atcoder += 1;
                assert!(fn_name.is_none() && starter_code.is_empty(), "{}", p.id);
            }
            "leetcode" => {
                leetcode += 1;
                assert!(
                    fn_name.is_some() && starter_code.starts_with("class Solution"),
                    "{}",
                    p.id
                );
            }
            other => panic!("platform {other}"),
        }
        for t in tests {
            match t.kind {
                TestKind::Stdin => stdin_tests += 1,
                TestKind::Functional => functional_tests += 1,
            }
        }
    }
    // docs/data-formats.md §6: 175 AtCoder + 104 LeetCode; 474 + 262 public tests.
    assert_eq!((atcoder, leetcode), (175, 104));
    assert_eq!((stdin_tests, functional_tests), (474, 262));
}

#[test]
fn livecodebench_window_filters_by_contest_date() {
    // NeMo-Skills test_v5_2410_2502 has 166 problems (docs/data-formats.md §6).
    let text = Task::builtin_text("livecodebench")
        .unwrap()
        .replace("date_from = \"2024-08-01\"", "date_from = \"2024-10-01\"");
    let task = Task::from_toml(&text, Path::new("lcb-2410.toml")).unwrap();
    let report = task
        .load_problems(&LoadOptions::with_data(shared(
            "livecodebench/lcb_v5_2408_2501_derived_public_only.jsonl",
        )))
        .unwrap();
    assert_eq!(report.problems.len(), 166);
    assert_eq!(report.filtered_out, 279 - 166);
}

#[derive(serde::Deserialize)]
struct PrivateVector {
    record: serde_json::Value,
    decoded_private_test_cases: Vec<serde_json::Value>,
}

#[test]
fn livecodebench_private_test_vector_decodes() {
    let text = std::fs::read_to_string(shared(
        "livecodebench/lcb_fixture_1873_A_private_tests_vector.json",
    ))
    .unwrap();
    let v: PrivateVector = serde_json::from_str(&text).unwrap();
    let encoded = v.record["private_test_cases"].as_str().unwrap();
    let tests = decode_private_tests(encoded).unwrap();
    assert_eq!(tests.len(), v.decoded_private_test_cases.len());
    assert_eq!(tests.len(), 4);
    for (ours, reference) in tests.iter().zip(&v.decoded_private_test_cases) {
        assert_eq!(ours.input, reference["input"].as_str().unwrap());
        assert_eq!(ours.output, reference["output"].as_str().unwrap());
        assert_eq!(ours.kind, TestKind::Stdin);
    }

    // The whole official-format record loads through the task, with a window
    // that covers its 2023 contest date: public test then the 4 private ones.
    let mut record = v.record.clone();
    record["question_content"] = "Short Sort (statement omitted in the vector)".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.jsonl");
    std::fs::write(&path, format!("{record}\n")).unwrap();
    let text = Task::builtin_text("livecodebench")
        .unwrap()
        .replace("date_from = \"2024-08-01\"", "date_from = \"2023-01-01\"");
    let task = Task::from_toml(&text, Path::new("lcb-2023.toml")).unwrap();
    let report = task.load_problems(&LoadOptions::with_data(&path)).unwrap();
    let p = &report.problems[0];
    assert_eq!(p.id, "1873_A");
    let Reference::Code {
        tests: all,
        public_only,
        fn_name,
        ..
    } = &p.reference
    else {
        panic!()
    };
    assert_eq!(
        (all.len(), *public_only, fn_name.is_none()),
        (5, false, true)
    );
    assert_eq!(all[1..], tests[..]);
    assert_eq!(p.metadata["difficulty"], "easy");
}

#[test]
fn arith_is_deterministic_and_graded() {
    let task = Task::builtin("arith").unwrap();
    let a = task
        .load_problems(&LoadOptions::default())
        .unwrap()
        .problems;
    let b = task
        .load_problems(&LoadOptions::default())
        .unwrap()
        .problems;
    assert_eq!(a, b);
    assert_eq!(a.len(), 100);
    let other_seed = Task::from_toml(
        &Task::builtin_text("arith")
            .unwrap()
            .replace("seed = 0", "seed = 1"),
        Path::new("arith1.toml"),
    )
    .unwrap()
    .load_problems(&LoadOptions::default())
    .unwrap()
    .problems;
    assert_ne!(a, other_seed);

    // Difficulty spread: 20 per level; the number of operations and of digits
    // to handle (counted from each problem's expression) rise with the level.
    let mut by_level: BTreeMap<u64, Vec<(usize, usize)>> = BTreeMap::new();
    for p in &a {
        let Reference::Math { answer } = &p.reference else {
            panic!()
        };
        assert!(answer.parse::<u64>().is_ok(), "{}: {answer}", p.id);
        let level = p.metadata["difficulty"].as_u64().unwrap();
        let expr = p.metadata["expression"].as_str().unwrap();
        let ops = expr
            .split(' ')
            .filter(|t| ["+", "-", "×"].contains(t))
            .count();
        let digits = expr.chars().filter(char::is_ascii_digit).count();
        by_level.entry(level).or_default().push((ops, digits));
    }
    assert_eq!(
        by_level.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(by_level.values().all(|v| v.len() == 20));
    let mean = |v: &[(usize, usize)], f: fn(&(usize, usize)) -> usize| {
        v.iter().map(f).sum::<usize>() as f64 / v.len() as f64
    };
    let ops: Vec<f64> = by_level.values().map(|v| mean(v, |x| x.0)).collect();
    let digits: Vec<f64> = by_level.values().map(|v| mean(v, |x| x.1)).collect();
    assert_eq!(ops, [1.0, 1.0, 1.0, 2.0, 3.0]);
    assert!(digits.windows(2).all(|w| w[0] < w[1]), "digits {digits:?}");
    for p in &problems_of_level(&a, 1) {
        let Reference::Math { answer } = &p.reference else {
            panic!()
        };
        assert!(answer.parse::<u32>().unwrap() <= 18, "{}", p.question);
        assert!(p.question.starts_with("What is ") && p.question.contains(" + "));
    }

    let err = task
        .load_problems(&LoadOptions::with_data("x.jsonl"))
        .unwrap_err();
    assert!(matches!(err, DataError::Generated { .. }));
}

fn problems_of_level(problems: &[Problem], level: u64) -> Vec<Problem> {
    problems
        .iter()
        .filter(|p| p.metadata["difficulty"] == level)
        .cloned()
        .collect()
}

#[test]
fn render_snapshots() {
    let aime = Task::builtin("aime24").unwrap();
    let problems = load("aime24", shared("aime24/nemo_skills_aime24_test.jsonl"));
    let rendered = aime.render(&problems[0], SampleCtx::default()).unwrap();
    assert_eq!(
        rendered.expected,
        Expected::Math {
            answer: "73".into()
        }
    );
    assert_eq!(
        rendered.user_message,
        format!(
            "{}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
            problems[0].question
        )
    );
    insta::assert_snapshot!("aime24_nemo_0", rendered.user_message);

    let arith = Task::builtin("arith").unwrap();
    let problems = arith
        .load_problems(&LoadOptions::default())
        .unwrap()
        .problems;
    let text: Vec<String> = [0, 20, 40, 60, 80]
        .iter()
        .map(|&i| {
            let r = arith.render(&problems[i], SampleCtx::default()).unwrap();
            format!("{} -> {:?}\n{}", problems[i].id, r.expected, r.user_message)
        })
        .collect();
    insta::assert_snapshot!("arith_one_per_level", text.join("\n\n"));

    let lcb = Task::builtin("livecodebench").unwrap();
    let problems = lcb_public();
    for id in ["abc383_d", "3676"] {
        let p = problems.iter().find(|p| p.id == id).unwrap();
        let r = lcb.render(p, SampleCtx::default()).unwrap();
        let Expected::Code { tests, fn_name } = &r.expected else {
            panic!()
        };
        assert_eq!(
            tests.len(),
            p.metadata["n_public_tests"].as_u64().unwrap() as usize
        );
        // Snapshots drop trailing newlines; LiveCodeBench's text ends in "```\n\n".
        assert!(r.user_message.ends_with("\n```\n\n"));
        assert!(r.user_message.starts_with(&format!(
            "You will be given a question (problem specification) and will generate a correct \
             Python program that matches the specification and passes all tests.\n\nQuestion: {}\n\n",
            p.question
        )));
        insta::assert_snapshot!(
            format!("lcb_{id}"),
            format!("fn_name: {fn_name:?}\n---\n{}", r.user_message)
        );
    }
}

#[test]
fn qwq_style_prompt_is_not_instructed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aime24.jsonl");
    let prompt = "Find x.\nPlease reason step by step, and put your final answer within \\boxed{}.";
    std::fs::write(
        &path,
        format!("{}\n", serde_json::json!({"prompt": prompt, "answer": "5"})),
    )
    .unwrap();
    let task = Task::builtin("aime24").unwrap();
    let report = task.load_problems(&LoadOptions::with_data(&path)).unwrap();
    let r = task
        .render(&report.problems[0], SampleCtx::default())
        .unwrap();
    assert_eq!(r.user_message, prompt);
}

#[test]
fn rendering_a_problem_of_another_kind_is_an_error() {
    let arith = Task::builtin("arith").unwrap();
    let code = &lcb_public()[0];
    let err = arith
        .render(code, SampleCtx::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("renders math problems"), "{err}");
}

#[test]
fn cli_list_and_show() {
    let list = hyperscale::task::cli::list();
    for name in Task::builtin_names() {
        assert!(list.contains(name), "{list}");
    }
    insta::assert_snapshot!("tasks_list", list);

    let arith = hyperscale::task::cli::resolve("arith").unwrap();
    let shown = hyperscale::task::cli::show(&arith, &LoadOptions::default(), 3).unwrap();
    insta::assert_snapshot!("tasks_show_arith", shown);

    // GPQA: ids and lengths only, never question or option text.
    let gpqa = hyperscale::task::cli::resolve("gpqa-diamond").unwrap();
    let shown = hyperscale::task::cli::show(
        &gpqa,
        &LoadOptions::with_data(shared("gpqa/dataset.zip")),
        198,
    )
    .unwrap();
    assert!(
        shown.contains("problems: 198 (skipped 0, filtered out 0)"),
        "{shown}"
    );
    for p in gpqa_zip() {
        assert!(shown.contains(&p.id));
        let head: String = p.question.trim().chars().take(24).collect();
        assert!(!shown.contains(&head), "question text of {} printed", p.id);
        let Reference::MultipleChoice { correct, .. } = &p.reference else {
            panic!()
        };
        if correct.trim().len() > 12 {
            assert!(
                !shown.contains(correct.trim()),
                "answer text of {} printed",
                p.id
            );
        }
    }

    let lcb = hyperscale::task::cli::resolve("livecodebench").unwrap();
    let shown =
        hyperscale::task::cli::show(&lcb, &LoadOptions::with_data(shared("livecodebench")), 2)
            .unwrap();
    assert!(
        shown.contains("problems: 279 (skipped 0, filtered out 0)"),
        "{shown}"
    );
    assert!(shown.contains("(public only)"));
    assert!(matches!(
        hyperscale::task::cli::resolve("no-such-task"),
        Err(hyperscale::task::TaskError::UnknownBuiltin { .. })
    ));
}
