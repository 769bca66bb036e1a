//! The report stage's edges: read a run directory, aggregate it, and write
//! `reports/<run>/` (report.md, report.html, tables/*.csv, summary.parquet,
//! plots/); load two runs for `compare`.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::aggregate::{Aggregates, aggregate, point_summaries, problem_rows};
use super::analysis::{Analysis, analyse};
use super::batches::{VoteOn, batch_rows, prepare, std_err_across_runs_by_point};
use super::compare::{Comparison, RunTables, Tolerances, compare};
use super::estimators::BootstrapConfig;
use super::html::render_html;
use super::markdown::{PlotRef, RenderOptions, RunInfo, render_markdown};
use super::plots::draw_plots;
use super::summary::{BatchRow, fmt_num};
use super::{GainEstimate, ReportError};
use crate::record::{Manifest, SAMPLES_FILE, SampleRecord, read_records, write_parquet};

/// A run directory read back.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub name: String,
    pub manifest: Option<Manifest>,
    pub records: Vec<SampleRecord>,
}

/// Read `dir/manifest.json` (optional) and `dir/samples.jsonl` (required).
pub fn load_run(dir: &Path) -> Result<RunData, ReportError> {
    let records = read_records(&dir.join(SAMPLES_FILE))?;
    if records.is_empty() {
        return Err(ReportError::NoRecords {
            dir: dir.to_path_buf(),
            file: SAMPLES_FILE.into(),
        });
    }
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
    Ok(RunData {
        dir: dir.to_path_buf(),
        name,
        manifest: Manifest::read(dir)?,
        records,
    })
}

/// A run aggregated and analysed.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub info: RunInfo,
    pub batches: Vec<BatchRow>,
    pub tables: Aggregates,
    pub analysis: Analysis,
}

/// Aggregate and analyse a loaded run, maj@k voting on the raw extracted
/// answer ([`VoteOn::Raw`]).
pub fn build_report(run: &RunData, bootstrap: &BootstrapConfig) -> Result<RunReport, ReportError> {
    build_report_with(run, bootstrap, VoteOn::Raw)
}

/// Aggregate and analyse a loaded run: duplicate keys scored once and
/// error records left out (both warned about), maj@k voting on `vote`.
pub fn build_report_with(
    run: &RunData,
    bootstrap: &BootstrapConfig,
    vote: VoteOn,
) -> Result<RunReport, ReportError> {
    let prepared = prepare(&run.records);
    let batches = batch_rows(prepared.records.iter().copied(), vote);
    let mut tables = aggregate(&batches)?;
    let mut points = point_summaries(&tables.points)?;
    let runs_se = std_err_across_runs_by_point(prepared.records.iter().copied());
    for p in &mut points {
        let id = p.key.id();
        p.pass_at_1_se_runs = runs_se.get(&id).copied().flatten();
        p.generation_errors = prepared.generation_errors.get(&id).copied().unwrap_or(0) as u32;
    }
    // The same two columns in the points table (same order as `points`).
    let column: Vec<Option<f64>> = points.iter().map(|p| p.pass_at_1_se_runs).collect();
    let errors: Vec<u32> = points.iter().map(|p| p.generation_errors).collect();
    tables
        .points
        .with_column(Column::new("pass_at_1_se_runs".into(), column))?;
    tables
        .points
        .with_column(Column::new("generation_errors".into(), errors))?;
    let mut analysis = analyse(points, problem_rows(&tables.problems)?, bootstrap);
    let mut warnings = prepared.warnings();
    warnings.append(&mut analysis.warnings);
    analysis.warnings = warnings;
    Ok(RunReport {
        info: RunInfo {
            name: run.name.clone(),
            manifest: run.manifest.clone(),
            records: run.records.len(),
            duplicates: prepared.duplicates,
            generation_errors: prepared.excluded(),
            vote,
        },
        batches,
        tables,
        analysis,
    })
}

/// Options of `hyperscale report`.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub bootstrap: BootstrapConfig,
    /// What maj@k votes on (default: the raw extracted answer).
    pub vote: VoteOn,
    /// Skip the plots (faster; the report says they were skipped).
    pub no_plots: bool,
}

/// What `write_report` wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub out: PathBuf,
    pub files: Vec<PathBuf>,
    pub report: RunReport,
}

fn gains_frame(gains: &[GainEstimate]) -> PolarsResult<DataFrame> {
    macro_rules! c {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), gains.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new(
        gains.len(),
        vec![
            c!("task", |g| g.task.as_str()),
            c!("method", |g| g.selection.method.as_str()),
            c!("cr", |g| g.selection.cr),
            c!("budget", |g| g.budget.slug()),
            c!("gain", |g| g.gain.gain),
            c!("ci_lo", |g| g.ci.map(|c| c.0)),
            c!("ci_hi", |g| g.ci.map(|c| c.1)),
            c!("budget_lo", |g| g.gain.lo),
            c!("budget_hi", |g| g.gain.hi),
            c!("problems", |g| g.problems as u32),
            c!("defined_draws", |g| g.defined_draws as u32),
        ],
    )
}

fn frontiers_frame(a: &Analysis) -> PolarsResult<DataFrame> {
    /// One frontier point, in the frame's column order.
    type Row<'a> = (String, &'a str, String, String, u32, String, f64, f64);
    let mut rows: Vec<Row<'_>> = Vec::new();
    for f in &a.frontiers {
        for (rank, &i) in f.points.iter().enumerate() {
            let p = &a.points[i];
            rows.push((
                f.task.clone(),
                f.budget.slug(),
                f.method.clone(),
                f.cr.map_or("all".into(), fmt_num),
                rank as u32,
                p.key.label(),
                f.budget.of_point(p),
                p.accuracy,
            ));
        }
    }
    macro_rules! c {
        ($name:literal, $f:expr) => {
            Column::new($name.into(), rows.iter().map($f).collect::<Vec<_>>())
        };
    }
    DataFrame::new(
        rows.len(),
        vec![
            c!("task", |r| r.0.as_str()),
            c!("budget", |r| r.1),
            c!("method", |r| r.2.as_str()),
            c!("cr", |r| r.3.as_str()),
            c!("rank", |r| r.4),
            c!("point", |r| r.5.as_str()),
            c!("budget_value", |r| r.6),
            c!("accuracy", |r| r.7),
        ],
    )
}

fn write_csv(frame: &mut DataFrame, path: &Path) -> Result<(), ReportError> {
    let mut file = std::fs::File::create(path).map_err(|e| ReportError::write(path, e))?;
    CsvWriter::new(&mut file).finish(frame)?;
    Ok(())
}

fn write_text(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|e| ReportError::write(path, e))
}

/// `hyperscale report RUN_DIR --out OUT`: write every report file under
/// `out` (created; files of an earlier report are overwritten).
pub fn write_report(
    run_dir: &Path,
    out: &Path,
    options: &ReportOptions,
) -> Result<ReportFiles, ReportError> {
    let run = load_run(run_dir)?;
    let mut report = build_report_with(&run, &options.bootstrap, options.vote)?;
    let tables_dir = out.join("tables");
    std::fs::create_dir_all(&tables_dir).map_err(|e| ReportError::write(&tables_dir, e))?;
    let mut files = Vec::new();
    let plots: Vec<PlotRef> = if options.no_plots {
        Vec::new()
    } else {
        let drawn = draw_plots(&report.analysis, &out.join("plots"))?;
        files.extend(drawn.iter().flat_map(|d| d.files.iter().cloned()));
        drawn.into_iter().map(|d| d.reference).collect()
    };
    let md = render_markdown(
        &report.info,
        &report.analysis,
        &RenderOptions {
            redact: false,
            plots,
        },
    );
    let md_path = out.join("report.md");
    write_text(&md_path, &md)?;
    let html_path = out.join("report.html");
    write_text(
        &html_path,
        &render_html(&format!("hyperscale report: {}", run.name), &md, out),
    )?;
    files.extend([md_path, html_path]);
    let t = &mut report.tables;
    for (name, frame) in [
        ("points.csv", &mut t.points),
        ("problems.csv", &mut t.problems),
        ("batches.csv", &mut t.batches),
    ] {
        let path = tables_dir.join(name);
        write_csv(frame, &path)?;
        files.push(path);
    }
    let path = tables_dir.join("gains.csv");
    write_csv(&mut gains_frame(&report.analysis.gains)?, &path)?;
    files.push(path);
    let path = tables_dir.join("frontiers.csv");
    write_csv(&mut frontiers_frame(&report.analysis)?, &path)?;
    files.push(path);
    let path = out.join("summary.parquet");
    write_parquet(&mut report.tables.points.clone(), &path)?;
    files.push(path);
    Ok(ReportFiles {
        out: out.to_path_buf(),
        files,
        report,
    })
}

/// The tables `compare` needs from a run directory (maj@k on the raw
/// extracted answer).
pub fn run_tables(dir: &Path) -> Result<RunTables, ReportError> {
    tables_of(&load_run(dir)?, VoteOn::Raw)
}

/// The tables `compare` needs from a loaded run: duplicate keys scored
/// once and error records left out, each noted.
pub fn tables_of(run: &RunData, vote: VoteOn) -> Result<RunTables, ReportError> {
    let prepared = prepare(&run.records);
    let batches = batch_rows(prepared.records.iter().copied(), vote);
    let tables = aggregate(&batches)?;
    let mut t = RunTables::new(
        run.name.clone(),
        run.manifest.clone(),
        prepared.records.iter().copied(),
        &batches,
        problem_rows(&tables.problems)?,
    );
    t.notes = prepared.warnings();
    Ok(t)
}

/// `hyperscale compare BASELINE CANDIDATE`, maj@k on the raw extracted
/// answer (see [`compare_runs_with`]).
pub fn compare_runs(
    baseline: &Path,
    candidate: &Path,
    tolerances: &Tolerances,
    bootstrap: &BootstrapConfig,
) -> Result<Comparison, ReportError> {
    compare_runs_with(baseline, candidate, tolerances, bootstrap, VoteOn::Raw)
}

/// `hyperscale compare` voting on `vote`. A run of record format 1 keeps
/// only the normalised key, so when either run is of format 1 both vote
/// on the normalised key (noted in the comparison).
pub fn compare_runs_with(
    baseline: &Path,
    candidate: &Path,
    tolerances: &Tolerances,
    bootstrap: &BootstrapConfig,
    vote: VoteOn,
) -> Result<Comparison, ReportError> {
    let (a, b) = (load_run(baseline)?, load_run(candidate)?);
    let old = |r: &RunData| r.manifest.as_ref().is_some_and(|m| m.format_version < 2);
    let effective = if old(&a) || old(&b) {
        VoteOn::Normalised
    } else {
        vote
    };
    let mut base = tables_of(&a, effective)?;
    let mut cand = tables_of(&b, effective)?;
    // Two directories of the same run name: tell them apart by path.
    if base.name == cand.name {
        base.name = baseline.display().to_string();
        cand.name = candidate.display().to_string();
    }
    let mut c = compare(&base, &cand, tolerances, bootstrap);
    if effective != vote {
        c.notes.push(
            "a run has format-1 records, which keep only the normalised answer key: both runs vote maj@W on the normalised key".to_string(),
        );
    }
    Ok(c)
}
