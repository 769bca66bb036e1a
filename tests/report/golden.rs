//! Golden tests of the report maths on a hand-built record set, through the
//! real pipeline (records → W-batches → polars aggregation → frontiers,
//! gains, CIs; and `compare`). Every expected value is computed by hand in
//! the comments.
//!
//! The set: task `arith`, problems A and B, L = 16, budgets counted so that
//! every sample of `dense` reads 100 KV entries and every sample of `tova`
//! (CR 2) reads 60; a W-batch reads W × that (prefill apart).
//!
//! | config | budget (KV reads) | A | B | accuracy (maj@W) |
//! |---|---:|---|---|---:|
//! | dense W1 | 100 | 1 | 0 | 0.5 |
//! | dense W2 | 200 | 1 (5, 5) | 1 (7, 7) | 1.0 |
//! | tova W1 | 60 | 0 | 0 | 0.0 |
//! | tova W2 | 120 | 1 (5, 5) | ½ (7 right, 9 wrong: a 1–1 tie scores ½) | 0.75 |
#![cfg(feature = "report")]

use hyperscale::generate::FinishReason;
use hyperscale::grade::{FailureKind, Outcome};
use hyperscale::record::{BudgetSource, SampleRecord};
use hyperscale::report::{
    BootstrapConfig, BudgetAxis, RegressionVerdict, RunTables, Selection, TaskMatrix, Tolerances,
    VoteOn, aggregate::aggregate, aggregate::point_summaries, aggregate::problem_rows, analyse,
    batch_rows, compare, gain_estimate,
};

/// log10(100/60) / log10(120/60): where 100 sits between 60 and 120 on a log axis.
const T100: f64 = 0.736_965_594_166_206_2;
/// log10(120/100) / log10(200/100): where 120 sits between 100 and 200.
const T120: f64 = 0.263_034_405_833_793_8;

fn rec(
    method: &str,
    width: u32,
    problem: &str,
    sample: u32,
    answer: &str,
    correct: bool,
    reads: u64,
) -> SampleRecord {
    let cr = (method != "dense").then_some(2.0);
    let trial = format!("t-{method}-w{width}");
    SampleRecord {
        run: "golden".into(),
        trial: trial.clone(),
        group: format!("g-{method}"),
        sample_id: format!("{trial}:{problem}:0:{sample}"),
        task: "arith".into(),
        task_version: "1".into(),
        problem_id: problem.into(),
        repeat: 0,
        sample,
        model: "m".into(),
        method: method.into(),
        policy: method.into(),
        policy_params: "{}".into(),
        cr_target: cr,
        cr_achieved: Some(cr.unwrap_or(1.0)),
        width,
        max_tokens: 16,
        seed: 0,
        temperature: 0.6,
        top_p: 0.95,
        top_k: 0,
        prompt_tokens: 10,
        generated_tokens: 16,
        finish_reason: FinishReason::Eos,
        extracted_answer: Some(answer.into()),
        verdict: if correct { "correct" } else { "incorrect" }.into(),
        is_correct: correct,
        kv_reads: reads,
        prefill_reads: 55,
        peak_resident: 20,
        peak_resident_batch: 20 * u64::from(width),
        batch_first: 0,
        batch_samples: width,
        peak_bytes: 80,
        kv_rows: 1,
        budget_source: BudgetSource::Measured,
        wall_seconds: 1.0,
        prefill_seconds: 0.1,
        decode_tokens_per_second: 16.0,
        grade_seconds: 0.0,
        device: "cpu".into(),
        token_hash: format!("{trial}{problem}{sample}"),
        text: None,
        outcome: None,
        failure: None,
        vote_key: None,
        occupancy: None,
        kv_dtype: None,
    }
}

fn golden() -> Vec<SampleRecord> {
    vec![
        rec("dense", 1, "A", 0, "5", true, 100),
        rec("dense", 1, "B", 0, "6", false, 100),
        rec("dense", 2, "A", 0, "5", true, 100),
        rec("dense", 2, "A", 1, "5", true, 100),
        rec("dense", 2, "B", 0, "7", true, 100),
        rec("dense", 2, "B", 1, "7", true, 100),
        rec("tova", 1, "A", 0, "4", false, 60),
        rec("tova", 1, "B", 0, "6", false, 60),
        rec("tova", 2, "A", 0, "5", true, 60),
        rec("tova", 2, "A", 1, "5", true, 60),
        rec("tova", 2, "B", 0, "7", true, 60),
        rec("tova", 2, "B", 1, "9", false, 60),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn golden_points_frontiers_and_gain_with_ci() {
    let batches = batch_rows(&golden(), VoteOn::Raw);
    let t = aggregate(&batches).unwrap();
    let points = point_summaries(&t.points).unwrap();
    let problems = problem_rows(&t.problems).unwrap();
    let a = analyse(points, problems.clone(), &BootstrapConfig::default());
    // Table order: dense first, then by W.
    let got: Vec<(String, u32, f64, f64)> = a
        .points
        .iter()
        .map(|p| (p.key.method.clone(), p.key.width, p.kv_reads, p.accuracy))
        .collect();
    // tova W2 on B: "7" right vs "9" wrong tie 1–1, scoring the mean
    // correctness of the tied answers, ½; tova W2 = (1 + ½) / 2 = 0.75, and
    // its pass@1 = 3 of 4 samples.
    assert_eq!(
        got,
        vec![
            ("dense".into(), 1, 100.0, 0.5),
            ("dense".into(), 2, 200.0, 1.0),
            ("tova".into(), 1, 60.0, 0.0),
            ("tova".into(), 2, 120.0, 0.75),
        ]
    );
    let tova2 = &a.points[3];
    assert_eq!(tova2.pass_at_1, 0.75);
    assert_eq!(tova2.pass_at_w, 1.0);
    // Standard error of per-problem maj {1, 0.5}: sd = √0.125, se = sd/√2 = 0.25.
    assert!(close(tova2.accuracy_se.unwrap(), 0.25));
    // Peak entries = 20·W, bytes = 4 per entry; prefill once per batch.
    assert_eq!(
        (tova2.peak_entries, tova2.peak_bytes, tova2.prefill_reads),
        (40.0, 160.0, 55.0)
    );
    assert_eq!(tova2.cr_achieved, Some(2.0));

    // Frontiers on KV reads: both configurations of each method.
    let f = |m: &str| {
        a.frontier("arith", BudgetAxis::KvReads, m)
            .unwrap()
            .points
            .clone()
    };
    assert_eq!(f("dense"), vec![0, 1]);
    assert_eq!(f("tova"), vec![2, 3]);

    // Gain, by hand. tova (60, 0) → (120, .75); dense (100, .5) → (200, 1).
    // Overlap [100, 120], one linear piece of the difference on a log axis:
    //   diff(100) = .75·T100 − .5
    //   diff(120) = .75 − (.5 + .5·T120)
    //   gain      = (diff(100) + diff(120)) / 2.
    let full = (0.75 * T100 - 0.5 + 0.75 - 0.5 - 0.5 * T120) / 2.0;
    let g = a
        .gains
        .iter()
        .find(|g| g.budget == BudgetAxis::KvReads && g.selection.cr.is_none())
        .unwrap();
    assert!(close(g.gain.gain, full), "{} vs {full}", g.gain.gain);
    assert_eq!((g.gain.lo, g.gain.hi), (100.0, 120.0));

    // CI: a bootstrap draw of 2 problems is {A,A}, {A,B} or {B,B}
    // (p = ¼, ½, ¼), so with 1000 draws the 2.5% and 97.5% percentiles fall
    // in the extreme blocks: CI = [min, max] of the three gains.
    // {A,A}: tova (60,0),(120,1); dense frontier (100,1) only ((200,1) is
    //        dominated), its curve flat to 200 → overlap [100,120]:
    //        diff(100) = T100 − 1, diff(120) = 1 − 1 = 0.
    // {B,B}: tova (60,0),(120,.5); dense (100,0),(200,1) → overlap [100,120]:
    //        diff(100) = .5·T100, diff(120) = .5 − T120.
    let aa = (T100 - 1.0) / 2.0;
    let bb = (0.5 * T100 + 0.5 - T120) / 2.0;
    let (lo, hi) = g.ci.unwrap();
    let want = (aa.min(bb).min(full), aa.max(bb).max(full));
    assert!(
        close(lo, want.0) && close(hi, want.1),
        "{:?} vs {want:?}",
        g.ci
    );

    // The same through the pure API, per CR 2 (the only CR): same numbers.
    let m = &TaskMatrix::from_rows(&problems)[0];
    let per_cr = gain_estimate(
        m,
        &Selection {
            method: "tova".into(),
            cr: Some(2.0),
        },
        BudgetAxis::KvReads,
        &BootstrapConfig::default(),
    )
    .unwrap();
    assert!(close(per_cr.gain.gain, full));
}

fn tables(records: &[SampleRecord]) -> RunTables {
    let batches = batch_rows(records, VoteOn::Raw);
    let t = aggregate(&batches).unwrap();
    RunTables::new(
        records[0].run.clone(),
        None,
        records,
        &batches,
        problem_rows(&t.problems).unwrap(),
    )
}

#[test]
fn compare_golden_verdicts() {
    let base = tables(&golden());
    let boot = BootstrapConfig::default();
    let tol = Tolerances::default();
    let same = compare(&base, &tables(&golden()), &tol, &boot);
    assert_eq!(same.verdict, RegressionVerdict::Pass, "{:?}", same.reasons);
    assert!(same.points.iter().all(|p| p.accuracy.delta == 0.0));

    // Planted regression: every correct answer flipped wrong. Pooled dense:
    // A loses 1 at W1 and 1 at W2 → Δ_A = −1; B loses 0 at W1 and 1 at W2 →
    // Δ_B = −.5. Mean −.75; draws {A,A}, {A,B}, {B,B} give −1, −.75, −.5,
    // so the CI is [−1, −.5]: entirely below 0 → regression.
    let flipped: Vec<SampleRecord> = golden()
        .into_iter()
        .map(|mut r| {
            if r.is_correct {
                r.is_correct = false;
                r.extracted_answer = Some("wrong".into());
            }
            r
        })
        .collect();
    let c = compare(&base, &tables(&flipped), &tol, &boot);
    assert_eq!(c.verdict, RegressionVerdict::Regression);
    // Replay: same token hashes, and all 8 correct samples (dense W1 A,
    // dense W2 A A B B, tova W2 A A B) turned wrong.
    assert_eq!(
        (c.replay.identical, c.replay.lost, c.replay.gained),
        (12, 8, 0)
    );
    assert!(c.replay.regression);
    assert_eq!(same.replay.lost + same.replay.gained, 0);
    let dense = c.methods.iter().find(|m| m.method == "dense").unwrap();
    assert!(close(dense.accuracy.delta, -0.75));
    assert_eq!(dense.accuracy.ci, Some((-1.0, -0.5)));
    // tova W1 was all wrong already: no change, no CI below 0.
    let t1 = c
        .points
        .iter()
        .find(|p| p.key.method == "tova" && p.key.width == 1);
    assert_eq!(t1.unwrap().accuracy.delta, 0.0);

    // Budgets: +10% KV reads is beyond the default 5%.
    let heavier: Vec<SampleRecord> = golden()
        .into_iter()
        .map(|mut r| {
            r.kv_reads = r.kv_reads * 11 / 10;
            r
        })
        .collect();
    let c = compare(&base, &tables(&heavier), &tol, &boot);
    assert_eq!(c.verdict, RegressionVerdict::Regression);
    assert!(
        c.reasons.iter().all(|r| r.contains("kv_reads grew +10.0%")),
        "{:?}",
        c.reasons
    );
    // Runtime ×3 passes by default (no hardware known: not gated), and fails
    // an explicit 50% tolerance.
    let slower: Vec<SampleRecord> = golden()
        .into_iter()
        .map(|mut r| {
            r.wall_seconds *= 3.0;
            r
        })
        .collect();
    assert_eq!(
        compare(&base, &tables(&slower), &tol, &boot).verdict,
        RegressionVerdict::Pass
    );
    let strict = Tolerances {
        runtime: Some(0.5),
        ..tol
    };
    assert_eq!(
        compare(&base, &tables(&slower), &strict, &boot).verdict,
        RegressionVerdict::Regression
    );

    // Another task version: incomparable, explained.
    let other: Vec<SampleRecord> = golden()
        .into_iter()
        .map(|mut r| {
            r.task_version = "2".into();
            r
        })
        .collect();
    let c = compare(&base, &tables(&other), &tol, &boot);
    assert_eq!(c.verdict, RegressionVerdict::Incomparable);
    assert!(
        c.reasons[0].contains("task `arith` versions differ"),
        "{:?}",
        c.reasons
    );
}

/// A loaded run of `records` (no manifest).
fn run_of(records: Vec<SampleRecord>) -> hyperscale::report::RunData {
    hyperscale::report::RunData {
        dir: "golden".into(),
        name: "golden".into(),
        manifest: None,
        records,
    }
}

fn report_of(records: Vec<SampleRecord>) -> hyperscale::report::RunReport {
    hyperscale::report::build_report(&run_of(records), &BootstrapConfig::default()).unwrap()
}

/// A LiveCodeBench record as the sweep writes it (format 2): the program
/// ran, so there is an answer (its digest) whatever the tests said.
fn code_rec(
    width: u32,
    problem: &str,
    sample: u32,
    program: &str,
    outcome: Outcome,
) -> SampleRecord {
    let mut r = rec(
        "dense",
        width,
        problem,
        sample,
        "",
        outcome == Outcome::Correct,
        100,
    );
    r.task = "livecodebench".into();
    let key = hyperscale::grade::program_key(program);
    r.extracted_answer = Some(key.clone());
    r.vote_key = Some(key);
    r.outcome = Some(outcome);
    r.verdict = if outcome == Outcome::Incorrect {
        r.failure = Some(FailureKind::RuntimeError);
        "runtime_error".into()
    } else {
        outcome.name().into()
    };
    r
}

/// Defect: every code sample counted as `no_answer` and LiveCodeBench's
/// maj@W was 0 (the report re-inferred the verdict from
/// `extracted_answer`, which code verdicts never had). Counted from the
/// typed outcome, a program that ran is never `no_answer`, and code votes
/// on the program digest.
#[test]
fn code_samples_that_ran_are_never_no_answer_and_vote_on_the_program() {
    let records = vec![
        code_rec(1, "A", 0, "print(1)", Outcome::Correct),
        code_rec(1, "B", 0, "print(2)", Outcome::Incorrect),
        // W = 2: the same correct program twice → maj@2 = 1.
        code_rec(2, "A", 0, "print(1)", Outcome::Correct),
        code_rec(2, "A", 1, "print(1)", Outcome::Correct),
        // Two different programs, one right: a 1–1 tie → ½ = c/W.
        code_rec(2, "B", 0, "print(2)", Outcome::Incorrect),
        code_rec(2, "B", 1, "print(3)", Outcome::Correct),
    ];
    let report = report_of(records.clone());
    let p = &report.analysis.points;
    assert_eq!(p.len(), 2);
    assert_eq!(
        (
            p[0].key.width,
            p[0].pass_at_1,
            p[0].accuracy,
            p[0].no_answer_rate
        ),
        (1, 0.5, 0.5, 0.0)
    );
    assert_eq!(
        (
            p[1].key.width,
            p[1].pass_at_1,
            p[1].accuracy,
            p[1].no_answer_rate
        ),
        (2, 0.75, 0.75, 0.0)
    );
    // Format-1 code records (label only, no extracted answer): a failure
    // label still reads as incorrect, not no_answer.
    let old: Vec<SampleRecord> = records
        .into_iter()
        .map(|mut r| {
            r.outcome = None;
            r.failure = None;
            r.vote_key = None;
            r.extracted_answer = None;
            r
        })
        .collect();
    let report = report_of(old);
    assert!(
        report
            .analysis
            .points
            .iter()
            .all(|p| p.no_answer_rate == 0.0)
    );
    assert_eq!(report.analysis.points[0].pass_at_1, 0.5);
}

/// maj@1 = pass@1 for every task: one sample is the vote.
#[test]
fn maj_at_1_equals_pass_at_1_for_every_task() {
    let mut records = Vec::new();
    for (i, (task, outcome)) in [
        ("arith", Outcome::Correct),
        ("arith", Outcome::Incorrect),
        ("arith", Outcome::NoAnswer),
        ("livecodebench", Outcome::Correct),
        ("livecodebench", Outcome::Incorrect),
        ("livecodebench", Outcome::NoAnswer),
        ("gpqa-diamond", Outcome::Correct),
        ("gpqa-diamond", Outcome::Incorrect),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = code_rec(1, &format!("p{i}"), 0, &format!("print({i})"), outcome);
        r.task = task.into();
        if outcome == Outcome::NoAnswer {
            r.extracted_answer = None;
            r.vote_key = None;
            r.failure = None;
            r.verdict = "no_answer".into();
        }
        records.push(r);
    }
    let report = report_of(records);
    assert_eq!(report.analysis.points.len(), 3);
    for p in &report.analysis.points {
        assert_eq!(p.accuracy, p.pass_at_1, "{}", p.key.task);
    }
}

/// Defect: a run directory with every record twice (two sweeps on one
/// directory) was counted twice without a word. Each key is scored once
/// and the report says how many duplicates it left out.
#[test]
fn report_and_compare_count_duplicate_records_once_with_a_warning() {
    let once = report_of(golden());
    let mut doubled = golden();
    doubled.extend(golden());
    // One duplicate disagrees with the record kept.
    doubled.last_mut().unwrap().token_hash = "other".into();
    let twice = report_of(doubled.clone());
    assert_eq!(twice.analysis.points, once.analysis.points);
    assert_eq!(twice.info.duplicates, golden().len());
    let w = &twice.analysis.warnings[0];
    assert!(
        w.starts_with("12 duplicate record(s)") && w.contains("1 of them disagree"),
        "{w}"
    );
    let t = hyperscale::report::tables_of(&run_of(doubled), VoteOn::Raw).unwrap();
    let c = compare(
        &tables(&golden()),
        &t,
        &Tolerances::default(),
        &BootstrapConfig::default(),
    );
    assert_eq!(c.verdict, RegressionVerdict::Pass, "{:?}", c.reasons);
    assert!(
        c.notes.iter().any(|n| n.contains("12 duplicate record(s)")),
        "{:?}",
        c.notes
    );
}

/// Defect: error records (generation failed) would be graded as wrong
/// answers. They are left out of every accuracy, and counted.
#[test]
fn error_records_are_excluded_from_accuracy_and_counted() {
    let mut records = golden();
    // dense W1 on B failed to generate, twice over (two more samples of a
    // batch that also has a good one would be a different shape; here the
    // whole batch is an error record).
    for r in records
        .iter_mut()
        .filter(|r| r.trial == "t-dense-w1" && r.problem_id == "B")
    {
        r.finish_reason = FinishReason::Error;
        r.outcome = Some(Outcome::NoAnswer);
        r.verdict = "no_answer".into();
        r.is_correct = false;
    }
    let report = report_of(records);
    let dense1 = report
        .analysis
        .points
        .iter()
        .find(|p| p.key.method == "dense" && p.key.width == 1)
        .unwrap();
    // Only problem A is scored: 1 of 1, not 1 of 2.
    assert_eq!(
        (dense1.problems, dense1.pass_at_1, dense1.accuracy),
        (1, 1.0, 1.0)
    );
    assert_eq!(dense1.generation_errors, 1);
    assert_eq!(report.info.generation_errors, 1);
    assert!(
        report.analysis.warnings.iter().any(|w| w.starts_with(
            "1 error record(s) (generation failed: no text) are excluded from every accuracy"
        )),
        "{:?}",
        report.analysis.warnings
    );
    let md = hyperscale::report::render_markdown(
        &report.info,
        &report.analysis,
        &hyperscale::report::RenderOptions::default(),
    );
    assert!(
        md.contains("1 error record(s) excluded from accuracy"),
        "{md}"
    );
    assert!(md.contains("1 (1 error records excluded)"), "{md}");
}

/// Defect: only the standard error over problems was reported; NeMo-Skills
/// reports `std_err_across_runs`. Both are in the report, each named.
#[test]
fn report_names_both_standard_errors() {
    let report = report_of(golden());
    let dense2 = report
        .analysis
        .points
        .iter()
        .find(|p| p.key.method == "dense" && p.key.width == 2)
        .unwrap();
    // dense W2: both samples of A and B correct → every run mean is 1.
    assert_eq!(dense2.pass_at_1_se_runs, Some(0.0));
    let tova2 = report
        .analysis
        .points
        .iter()
        .find(|p| p.key.method == "tova" && p.key.width == 2)
        .unwrap();
    // tova W2: A (1, 1), B (1, 0) → run means 1, ½ → sd √⅛, se √⅛/√2 = ¼.
    assert!((tova2.pass_at_1_se_runs.unwrap() - 0.25).abs() < 1e-12);
    // Over problems: per-problem ½·(1 + 1), ½ → values 1, ½ → se ¼ too; W1
    // has one sample per problem: no across-runs value.
    assert!(
        report
            .analysis
            .points
            .iter()
            .filter(|p| p.key.width == 1)
            .all(|p| p.pass_at_1_se_runs.is_none())
    );
    let md = hyperscale::report::render_markdown(
        &report.info,
        &report.analysis,
        &hyperscale::report::RenderOptions::default(),
    );
    assert!(
        md.contains("pass@1 ± s.e. (problems) | s.e. across runs"),
        "{md}"
    );
    assert!(
        md.contains("maj@W votes on | the raw extracted answer"),
        "{md}"
    );
}

/// The text of every cell of an HTML table, tags stripped, by row.
fn table_cells(table: &str) -> Vec<Vec<String>> {
    let strip = |s: &str| {
        let mut out = String::new();
        let mut tag = false;
        for c in s.chars() {
            match c {
                '<' => tag = true,
                '>' => tag = false,
                c if !tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    };
    table
        .split("<tr>")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap();
            let parts: Vec<&str> = row.split("</t").collect();
            // Each part but the last ends a cell: its text follows its
            // opening `<td>` / `<th …>`.
            parts[..parts.len() - 1]
                .iter()
                .filter_map(|c| {
                    let open = c.rfind("<td").or_else(|| c.rfind("<th"))?;
                    let start = open + c[open..].find('>')? + 1;
                    Some(strip(&c[start..]))
                })
                .collect()
        })
        .collect()
}

/// Issue: report.html was a wall of tables before the first plot. Its first
/// screen is now the summary and the plots: the summary table is the page's
/// first table, the first plot comes before the full tables, and the
/// summary's numbers are the headline data's, which are the analysis'
/// gains (checked against the hand-computed golden gain and CI).
#[test]
fn html_leads_with_the_summary_and_plots_whose_numbers_are_the_data() {
    let report = report_of(golden());
    let a = &report.analysis;
    let dir = tempfile::tempdir().unwrap();
    let drawn = hyperscale::report::plots::draw_plots(a, &dir.path().join("plots")).unwrap();
    let md = hyperscale::report::render_markdown(
        &report.info,
        a,
        &hyperscale::report::RenderOptions {
            redact: false,
            plots: drawn.into_iter().map(|d| d.reference).collect(),
        },
    );
    let html = hyperscale::report::html::render_html("golden", &md, dir.path());
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{html}"))
    };
    let (summary, full) = (at("<h2 id=\"summary\">"), at("<h2 id=\"full-tables\">"));
    let (first_table, first_img) = (at("<table>"), at("<img "));
    // One task, one figure: it stands beside the summary table.
    assert!(summary < at("<div class=\"lead\">"));
    assert!(at("<div class=\"lead\">") < first_table && first_table < first_img);
    assert!(first_img < full && full < at("<h3 id=\"hyper-scaling-gains-over-dense\">"));
    assert_eq!(html[..first_img].matches("<table>").count(), 1);
    assert!(at("<h2 id=\"warnings\">") > first_img && at("<h2 id=\"run\">") > first_img);
    // The long gains table is folded.
    assert!(html[full..].starts_with(
        "<h2 id=\"full-tables\">Full tables</h2>\n<h3 id=\"hyper-scaling-gains-over-dense\">"
    ));
    assert!(html.contains("<details><summary>Every gain:"));
    assert!(html.contains("<figure><img alt=\"arith: accuracy vs KV reads"));

    let end = first_table + html[first_table..].find("</table>").unwrap();
    let rows = table_cells(&html[first_table..end]);
    let h = hyperscale::report::headline(a);
    assert_eq!(
        rows[0][..5],
        ["task", "method", "KV reads", "peak KV memory", "runtime"]
    );
    assert_eq!(rows[0][5..], h.extra_columns[..]);
    let t = &h.tasks[0];
    assert_eq!(
        (h.tasks.len(), t.task.as_str(), t.problems),
        (1, "arith", 2)
    );
    assert_eq!(rows.len(), 1 + t.methods.len() + 1, "{rows:?}");
    let fmt = |g: f64, ci: Option<(f64, f64)>| match ci {
        Some((lo, hi)) => format!("{:+.1} [{:+.1}, {:+.1}]", 100.0 * g, 100.0 * lo, 100.0 * hi),
        None => format!("{:+.1} (no CI)", 100.0 * g),
    };
    for (row, m) in rows[1..].iter().zip(&t.methods) {
        assert_eq!(row[0], "arith (2 problems)");
        assert_eq!(row[1], m.method);
        for (cell, g) in row[2..5].iter().zip(&m.gains) {
            let want = match g {
                _ if m.dense => "reference".to_string(),
                Some(g) => fmt(g.gain.gain, g.ci),
                None => "–".to_string(),
            };
            assert_eq!(*cell, want);
        }
        // Each gain is the analysis' all-CR gain of the method.
        for (g, b) in m.gains.iter().zip(&h.budgets) {
            let of_analysis = a.gains.iter().find(|x| {
                x.budget == *b && x.selection.method == m.method && x.selection.cr.is_none()
            });
            assert_eq!(g.as_ref(), of_analysis);
        }
    }
    // By hand (see the golden test): tova's KV-reads gain and its CI.
    let full_gain = (0.75 * T100 - 0.5 + 0.75 - 0.5 - 0.5 * T120) / 2.0;
    let (aa, bb) = ((T100 - 1.0) / 2.0, (0.5 * T100 + 0.5 - T120) / 2.0);
    let by_hand = fmt(full_gain, Some((aa, bb)));
    assert_eq!(rows[1][1..3], ["dense", "reference"]);
    assert_eq!(rows[2][1..3], ["tova".to_string(), by_hand.clone()]);
    // Most accurate configurations: dense W2 (1, 1) and tova W2 (1, ½).
    assert_eq!(rows[1][5], "W2-L16: 100.0 ± 0.0");
    assert_eq!(rows[2][5], "W2-L16-CR2: 75.0 ± 25.0");
    // best: the all-CR and CR-2 selections tie; the first (all CRs) is kept.
    let best = &rows[3];
    assert_eq!(best[1], "best");
    assert_eq!(best[2], format!("tova: {by_hand}"));
    for (cell, g) in best[2..5].iter().zip(&t.best) {
        let g = g.as_ref().unwrap();
        assert!(cell.ends_with(&fmt(g.gain.gain, g.ci)), "{cell}");
    }
}
