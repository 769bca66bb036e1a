//! The committed smoke baseline (`results/baseline-smoke/`, made by
//! `hyperscale sweep configs/smoke.toml`) through `report` and `compare`:
//! snapshots of report.md and of the compare markdown (wall-clock values,
//! dates, hardware and git revision redacted), and the binary's exit codes
//! on an identical rerun (0), a planted regression (1) and an incomparable
//! run (2).
#![cfg(feature = "report")]

use std::path::{Path, PathBuf};
use std::process::Command;

use hyperscale::grade::Outcome;
use hyperscale::record::{SAMPLES_FILE, SampleRecord, read_records};
use hyperscale::report::{
    BootstrapConfig, RenderOptions, Tolerances, build_report, compare_markdown, compare_runs,
    load_run, render_markdown,
};

fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results/baseline-smoke")
}

/// A copy of the baseline with its records passed through `edit`.
fn planted(dir: &Path, name: &str, edit: impl Fn(&mut SampleRecord)) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(baseline().join("manifest.json"), out.join("manifest.json")).unwrap();
    let mut text = String::new();
    for mut r in read_records(&baseline().join(SAMPLES_FILE)).unwrap() {
        edit(&mut r);
        text.push_str(&serde_json::to_string(&r).unwrap());
        text.push('\n');
    }
    std::fs::write(out.join(SAMPLES_FILE), text).unwrap();
    out
}

fn flip_wrong(r: &mut SampleRecord) {
    if r.correct() {
        r.is_correct = false;
        r.verdict = "incorrect".into();
        r.outcome = r.outcome.map(|_| Outcome::Incorrect);
        r.extracted_answer = Some("planted-wrong".into());
        r.vote_key = r.vote_key.as_ref().map(|_| "planted-wrong".into());
    }
}

#[test]
fn smoke_report_markdown_snapshot() {
    let run = load_run(&baseline()).unwrap();
    let report = build_report(&run, &BootstrapConfig::default()).unwrap();
    let md = render_markdown(
        &report.info,
        &report.analysis,
        &RenderOptions {
            redact: true,
            plots: Vec::new(),
        },
    );
    insta::assert_snapshot!("smoke_report_md", md);
}

#[test]
fn smoke_compare_markdown_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let rerun = planted(dir.path(), "rerun", |_| {});
    let boot = BootstrapConfig::default();
    let tol = Tolerances::default();
    let same = compare_runs(&baseline(), &rerun, &tol, &boot).unwrap();
    let mut md = compare_markdown(&same, true);
    md = md.replace(&dir.path().display().to_string(), "TMP");
    md = md.replace(&baseline().display().to_string(), "BASELINE");
    insta::assert_snapshot!("smoke_compare_identical_md", md);
    let bad = planted(dir.path(), "planted", flip_wrong);
    let c = compare_runs(&baseline(), &bad, &tol, &boot).unwrap();
    let mut md = compare_markdown(&c, true);
    md = md.replace(&dir.path().display().to_string(), "TMP");
    md = md.replace(&baseline().display().to_string(), "BASELINE");
    insta::assert_snapshot!("smoke_compare_planted_md", md);
}

fn run_compare(candidate: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(["compare"])
        .arg(baseline())
        .arg(candidate)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn compare_exit_codes_on_the_smoke_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run_compare(&planted(dir.path(), "rerun", |_| {}));
    assert_eq!(code, 0, "identical rerun must pass:\n{text}");
    assert!(text.contains("**PASS**"), "{text}");

    let (code, text) = run_compare(&planted(dir.path(), "planted", flip_wrong));
    assert_eq!(code, 1, "flipped answers must be a regression:\n{text}");
    assert!(text.contains("**REGRESSION**"), "{text}");

    let (code, text) = run_compare(&planted(dir.path(), "other-version", |r| {
        r.task_version.push_str("-changed")
    }));
    assert_eq!(code, 2, "another task version is incomparable:\n{text}");
    assert!(text.contains("versions differ"), "{text}");
}

#[test]
fn report_command_writes_every_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rep");
    let status = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .arg("report")
        .arg(baseline())
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    for f in [
        "report.md",
        "report.html",
        "summary.parquet",
        "tables/points.csv",
        "tables/problems.csv",
        "tables/batches.csv",
        "tables/gains.csv",
        "tables/frontiers.csv",
    ] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 0, "{f} is empty");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("src=\"plots/"), "images must be inlined");
    // The points table has one row per configuration, like the report.
    let run = load_run(&baseline()).unwrap();
    let report = build_report(&run, &BootstrapConfig::default()).unwrap();
    let csv = std::fs::read_to_string(out.join("tables/points.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + report.analysis.points.len());
}

/// The smoke baseline as it was in record format 1 (before records carried
/// the typed outcome), without its livecodebench records (whose task file
/// changed since).
fn format_1_baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records/format-1-smoke")
}

/// Old records stay readable: the format-1 smoke baseline reports, and
/// compares equal to today's baseline on the tasks both share (same tokens,
/// same verdicts), voting on the normalised key both formats hold.
#[test]
fn format_1_records_are_read_and_compare_with_format_2() {
    let old = load_run(&format_1_baseline()).unwrap();
    assert_eq!(old.manifest.as_ref().unwrap().format_version, 1);
    assert!(old.records.iter().all(|r| r.outcome.is_none()));
    build_report(&old, &BootstrapConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no-lcb");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(baseline().join("manifest.json"), out.join("manifest.json")).unwrap();
    let mut text = String::new();
    for r in read_records(&baseline().join(SAMPLES_FILE)).unwrap() {
        assert!(r.outcome.is_some(), "the baseline is of format 2");
        if r.task != "livecodebench" {
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
    }
    std::fs::write(out.join(SAMPLES_FILE), text).unwrap();
    let c = compare_runs(
        &format_1_baseline(),
        &out,
        &Tolerances::default(),
        &BootstrapConfig::default(),
    )
    .unwrap();
    assert_eq!(
        c.verdict,
        hyperscale::report::RegressionVerdict::Pass,
        "{:?}",
        c.reasons
    );
    assert_eq!(
        (c.replay.identical, c.replay.lost, c.replay.gained),
        (60, 0, 0)
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("record formats differ (baseline 1, candidate 2)")),
        "{:?}",
        c.notes
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("both runs vote maj@W on the normalised key"))
    );
}
