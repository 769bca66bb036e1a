//! The code grader end to end through the sandbox and the Python driver:
//! the LCB stdout-comparison vectors (compared in the harness), real
//! LiveCodeBench problems from the shared data (a correct and a subtly wrong
//! solution each), and the `testing_util.py` semantics the driver
//! re-implements (the runner vectors).
//!
//! These tests check grading semantics, not isolation: where this machine
//! cannot isolate programs they run unsandboxed and say so (the hostile
//! suite in `tests/sandbox.rs` checks the isolation).

use std::path::Path;

use hyperscale::grade::{
    CodeConfig, Compared, FailureKind, Outcome, Sandbox, SandboxConfig, Verdict, compare_stdout,
    grade_code,
};
use hyperscale::task::{TestCase, TestKind};
use serde_json::Value;

fn sandbox() -> Sandbox {
    let sb = Sandbox::new(SandboxConfig {
        max_concurrent: 2,
        allow_unsandboxed: true,
        ..SandboxConfig::default()
    })
    .expect("a python3 interpreter is needed for the code grader tests");
    if let Some(reason) = sb.unsandboxed_reason() {
        eprintln!("NOTICE: grading semantics tested WITHOUT isolation: {reason}");
    }
    sb
}

fn shared(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn tests_from(value: &Value) -> Vec<TestCase> {
    value
        .as_array()
        .expect("test list")
        .iter()
        .map(|t| TestCase {
            input: t["input"].as_str().expect("input").to_string(),
            output: t["output"].as_str().expect("output").to_string(),
            kind: if t["testtype"] == "functional" {
                TestKind::Functional
            } else {
                TestKind::Stdin
            },
        })
        .collect()
}

fn lcb_problem(id: &str) -> (Vec<TestCase>, Option<String>) {
    let path = shared("livecodebench/lcb_v5_2408_2501_derived_public_only.jsonl");
    let text = std::fs::read_to_string(&path).expect("shared LCB file");
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).expect("LCB line is JSON");
        if record["question_id"] == id {
            let fn_name = record["metadata"]["func_name"].as_str().map(str::to_string);
            return (tests_from(&record["public_test_cases"]), fn_name);
        }
    }
    panic!("problem {id} not in {}", path.display());
}

fn fenced(code: &str) -> String {
    format!("Here is my solution.\n```python\n{code}\n```\n")
}

fn grade(sb: &Sandbox, code: &str, tests: &[TestCase], fn_name: Option<&str>) -> Verdict {
    let config = CodeConfig {
        timeout_s: 2,
        ..CodeConfig::default()
    };
    grade_code(sb, Some(&fenced(code)), tests, fn_name, &config).expect("sandbox runs")
}

fn stdin_test(input: &str, output: &str) -> TestCase {
    TestCase {
        input: input.into(),
        output: output.into(),
        kind: TestKind::Stdin,
    }
}

#[test]
fn lcb_stdio_compare_vectors_reproduce() {
    let path = shared("vectors/lcb_stdio_compare_vectors.json");
    let vectors: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("vectors")).expect("json");
    assert_eq!(vectors.len(), 20);
    let pairs: Vec<(&str, &str)> = vectors
        .iter()
        .map(|v| (v["pred"].as_str().unwrap(), v["expected"].as_str().unwrap()))
        .collect();
    for (v, (pred, expected)) in vectors.iter().zip(&pairs) {
        let got = compare_stdout(pred, expected) == Compared::Match;
        assert_eq!(Some(got), v["passes"].as_bool(), "vector {v}");
    }
    // And end to end: a program printing `pred` against `expected`.
    let sb = sandbox();
    for v in &vectors {
        let pred = v["pred"].as_str().unwrap();
        let expected = v["expected"].as_str().unwrap();
        let literal = serde_json::to_string(pred).unwrap();
        let code = format!("import sys\nsys.stdout.write({literal})");
        let verdict = grade(&sb, &code, &[stdin_test("", expected)], None);
        let passes = verdict.outcome == Outcome::Correct;
        assert_eq!(
            Some(passes),
            v["passes"].as_bool(),
            "vector {v}: {verdict:?}"
        );
    }
}

#[test]
fn abc365_a_correct_and_subtly_wrong() {
    let sb = sandbox();
    let (tests, fn_name) = lcb_problem("abc365_a");
    assert_eq!(fn_name, None);
    let right = "y = int(input())\nif y % 400 == 0 or (y % 4 == 0 and y % 100 != 0):\n    print(366)\nelse:\n    print(365)";
    let v = grade(&sb, right, &tests, None);
    assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
    assert_eq!(v.tests_passed, Some(tests.len()));
    // Forgets the 400 rule: fails only on 1600, the fourth test.
    let wrong = "y = int(input())\nprint(366 if y % 4 == 0 and y % 100 != 0 else 365)";
    let v = grade(&sb, wrong, &tests, None);
    assert_eq!(v.outcome, Outcome::Incorrect);
    assert_eq!(v.failure, Some(FailureKind::WrongAnswer));
    assert_eq!((v.tests_passed, v.failed_test), (Some(3), Some(3)));
}

#[test]
fn leetcode_3517_correct_and_subtly_wrong() {
    let sb = sandbox();
    let (tests, fn_name) = lcb_problem("3517");
    let fn_name = fn_name.expect("functional problem");
    let right = "class Solution:
    def shortestDistanceAfterQueries(self, n: int, queries: List[List[int]]) -> List[int]:
        adj = [[i + 1] for i in range(n)]
        out = []
        for u, v in queries:
            adj[u].append(v)
            dist = [-1] * n
            dist[0] = 0
            q = deque([0])
            while q:
                x = q.popleft()
                for y in adj[x]:
                    if y < n and dist[y] < 0:
                        dist[y] = dist[x] + 1
                        q.append(y)
            out.append(dist[n - 1])
        return out";
    let v = grade(&sb, right, &tests, Some(&fn_name));
    assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
    // Forgets earlier shortcuts: rebuilds the graph for every query.
    let wrong = right.replace(
        "        for u, v in queries:\n            adj[u].append(v)",
        "        for u, v in queries:\n            adj = [[i + 1] for i in range(n)]\n            adj[u].append(v)",
    );
    assert_ne!(wrong, right);
    let v = grade(&sb, &wrong, &tests, Some(&fn_name));
    assert_eq!(v.outcome, Outcome::Incorrect);
    assert_eq!(v.failure, Some(FailureKind::WrongAnswer));
    assert_eq!(v.failed_test, Some(0));
}

#[test]
fn private_tests_of_1873_a_pass_with_a_correct_solution() {
    let path = shared("livecodebench/lcb_fixture_1873_A_private_tests_vector.json");
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json");
    let tests = tests_from(&fixture["decoded_private_test_cases"]);
    assert!(!tests.is_empty());
    let right = "t = int(input())\nfor _ in range(t):\n    s = input().strip()\n    d = sum(a != b for a, b in zip(s, 'abc'))\n    print('YES' if d in (0, 2) else 'NO')";
    let v = grade(&sandbox(), right, &tests, None);
    assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
    let wrong = "t = int(input())\nfor _ in range(t):\n    s = input().strip()\n    print('YES' if s[0] == 'a' or s == 'cba' else 'NO')";
    let v = grade(&sandbox(), wrong, &tests, None);
    assert_eq!(v.outcome, Outcome::Incorrect, "{v:?}");
}

#[test]
fn stdin_is_mocked_as_lcb_does() {
    let sb = sandbox();
    let t = [stdin_test("3\n1 2 3\n", "6\n")];
    for code in [
        // input(), a main guard, sys.exit swallowed.
        "import sys\ndef main():\n    input()\n    print(sum(map(int, input().split())))\n    sys.exit(0)\nif __name__ == '__main__':\n    main()",
        // sys.stdin is a StringIO of the input: read, readline with its
        // newline, readlines, iteration.
        "data = sys.stdin.read().split()\nprint(sum(map(int, data[1:])))",
        "sys.stdin.readline()\nprint(sum(int(x) for x in sys.stdin.readline().split()))",
        "lines = sys.stdin.readlines()\nassert lines[1] == '1 2 3\\n'\nprint(sum(map(int, lines[1].split())))",
        "rows = [l for l in sys.stdin]\nprint(sum(map(int, rows[1].split())))",
    ] {
        let v = grade(&sb, code, &t, None);
        assert_eq!(v.outcome, Outcome::Correct, "{code}: {v:?}");
    }
    // LCB's sys.stdin is a StringIO: it has no `.buffer`.
    let v = grade(
        &sb,
        "data = sys.stdin.buffer.read().split()\nprint(6)",
        &t,
        None,
    );
    assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
    assert!(v.detail.unwrap_or_default().contains("buffer"));
    // `open` is *not* the mocked one: the prelude's `from builtins import *`
    // binds the real `open` as a module global before the mock is installed
    // (so in LCB too). fd 0 is /dev/null here, so nothing is read.
    let v = grade(
        &sb,
        "lines = open(0).read().split('\\n')\nprint(sum(map(int, lines[1].split())))",
        &t,
        None,
    );
    assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
    assert!(v.detail.unwrap_or_default().contains("IndexError"));
    // Reading past the end raises EOFError: a runtime error.
    let v = grade(&sb, "input(); input(); input()\nprint(6)", &t, None);
    assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
}

/// Issue 21 item 9(a): LCB patches `read`, `readline` and `readlines` on the
/// original `sys.stdin` object, so a `stdin` bound when the program is
/// compiled (`from sys import stdin`, or the prelude's `from sys import *`)
/// sees the input: `readline()` gives the next line without its newline,
/// `readlines()` is `input.split('\n')`, `read()` is the whole input.
#[test]
fn from_sys_import_stdin_sees_the_input() {
    let sb = sandbox();
    let t = [
        stdin_test("3\n1 2 3\n", "6\n"),
        stdin_test("2\n4 5\n", "9\n"),
    ];
    for code in [
        "from sys import stdin\nstdin.readline()\nprint(sum(map(int, stdin.readline().split())))",
        // The prelude's `from sys import *` binds `stdin` too.
        "n = int(stdin.readline())\nprint(sum(map(int, stdin.read().split()[1:])))",
        "lines = stdin.readlines()\nassert lines[-1] == ''\nprint(sum(map(int, lines[1].split())))",
    ] {
        let v = grade(&sb, code, &t, None);
        assert_eq!(v.outcome, Outcome::Correct, "{code}: {v:?}");
    }
    // The line iterator is per test and ends with StopIteration.
    let v = grade(
        &sb,
        "from sys import stdin\nfor _ in range(4):\n    stdin.readline()\nprint(6)",
        &t,
        None,
    );
    assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
    assert!(v.detail.unwrap_or_default().contains("StopIteration"));
}

/// Issue 21 item 9(b): LCB's worker has `multiprocessing` (and numpy) loaded
/// before its reliability guard runs, so a program importing it works; the
/// guard must not make the import die on `os.getcwd = None`.
#[test]
fn import_multiprocessing_works_under_the_guard() {
    let sb = sandbox();
    let t = [stdin_test("3\n", "3\n")];
    let v = grade(
        &sb,
        "import multiprocessing\nimport multiprocessing.pool\nprint(int(input()))",
        &t,
        None,
    );
    assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
    // The guard is still in force for the program itself.
    let v = grade(&sb, "import os\nos.getcwd()\nprint(3)", &t, None);
    assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
}

#[test]
fn call_based_uses_python_equality() {
    let sb = sandbox();
    let t = [TestCase {
        input: "[1, 2]\n3".into(),
        output: "[1, 2, 3]".into(),
        kind: TestKind::Functional,
    }];
    // A tuple counts as a list; 3.0 == 3; True == 1.
    let v = grade(
        &sb,
        "class Solution:\n    def f(self, a, b):\n        return (True, 2.0, b)",
        &t,
        Some("f"),
    );
    assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
    // A nested tuple is not a list (Python: `[(1, 2)] != [[1, 2]]`).
    let nested = [TestCase {
        input: "[1, 2]
3"
        .into(),
        output: "[[1, 2]]".into(),
        kind: TestKind::Functional,
    }];
    let v = grade(
        &sb,
        "class Solution:\n    def f(self, a, b):\n        return [tuple(a)]",
        &nested,
        Some("f"),
    );
    assert_eq!(v.failure, Some(FailureKind::WrongAnswer), "{v:?}");
    let v = grade(
        &sb,
        "class Solution:\n    def f(self, a, b):\n        return (*a, float(b))",
        &t,
        Some("f"),
    );
    assert_eq!(v.outcome, Outcome::Correct, "{v:?}");
    let v = grade(
        &sb,
        "class Solution:\n    def g(self, a, b):\n        return a",
        &t,
        Some("f"),
    );
    assert_eq!(v.failure, Some(FailureKind::RuntimeError), "{v:?}");
    assert!(v.detail.unwrap_or_default().contains("no method"));
    let v = grade(
        &sb,
        "class Solution:\n    def f(self, a, b):\n        return 1 / 0",
        &t,
        Some("f"),
    );
    assert_eq!(
        (v.failure, v.failed_test),
        (Some(FailureKind::RuntimeError), Some(0))
    );
}

#[test]
fn per_test_timeout_stops_at_the_slow_test() {
    let t = [
        stdin_test("1\n", "1\n"),
        stdin_test("2\n", "2\n"),
        stdin_test("3\n", "3\n"),
    ];
    let code = "n = int(input())\nwhile n == 2:\n    pass\nprint(n)";
    let v = grade(&sandbox(), code, &t, None);
    assert_eq!(v.failure, Some(FailureKind::Timeout), "{v:?}");
    assert_eq!((v.tests_passed, v.failed_test), (Some(1), Some(1)));
}

#[test]
fn missing_code_is_no_answer() {
    let t = [stdin_test("1\n", "1\n")];
    let v = grade_code(
        &sandbox(),
        Some("I think the answer is 1."),
        &t,
        None,
        &CodeConfig::default(),
    )
    .expect("no sandbox needed");
    assert_eq!(v.outcome, Outcome::NoAnswer);
    let v = grade_code(&sandbox(), None, &t, None, &CodeConfig::default()).expect("ok");
    assert_eq!(v.outcome, Outcome::NoAnswer);
}
