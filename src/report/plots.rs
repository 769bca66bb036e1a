//! The report's figures, drawn by [`super::plot`]: per task, accuracy
//! (maj@W, %) against KV reads, peak KV memory (bytes) and runtime, all on
//! log-budget axes (the axis the gain is defined on); one colour per method,
//! one marker per CR, ± one standard error as error bars, each method's
//! Pareto frontier as a step line, frontier points labelled `W-L-CR`. One
//! figure per task (PNG and SVG) and an overview grid of the KV-reads panels.

use std::path::{Path, PathBuf};

use super::ReportError;
use super::analysis::Analysis;
use super::frontier::frontier_curve;
use super::markdown::PlotRef;
use super::plot::{Chart, ImageFormat, Marker, Point, Scale, Series, render_grid};
use super::summary::{BudgetAxis, fmt_num};

/// One drawn figure: its files and how the report refers to it.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub reference: PlotRef,
    pub files: Vec<PathBuf>,
}

/// The budgets drawn, in panel order.
const PANELS: [BudgetAxis; 3] = [
    BudgetAxis::KvReads,
    BudgetAxis::PeakBytes,
    BudgetAxis::Runtime,
];

/// The CRs of a task, sorted; a configuration's marker is its CR's index
/// (dense: the first marker, then one per CR).
fn crs(a: &Analysis, task: &str) -> Vec<Option<f64>> {
    let mut v: Vec<Option<f64>> = Vec::new();
    for p in a.points.iter().filter(|p| p.key.task == task) {
        if !v.contains(&p.key.cr_target) {
            v.push(p.key.cr_target);
        }
    }
    v.sort_by(|x, y| x.unwrap_or(0.0).total_cmp(&y.unwrap_or(0.0)));
    v
}

/// The chart of one task on one budget.
pub fn task_chart(a: &Analysis, task: &str, budget: BudgetAxis) -> Chart {
    let crs = crs(a, task);
    let marker =
        |cr: Option<f64>| Marker::for_index(crs.iter().position(|c| *c == cr).unwrap_or(0));
    let series = a
        .methods(task)
        .into_iter()
        .map(|method| {
            let frontier = a
                .frontier(task, budget, method)
                .map(|f| f.points.clone())
                .unwrap_or_default();
            let xy: Vec<(f64, f64)> = a
                .points
                .iter()
                .filter(|p| p.key.task == task && p.key.method == method)
                .map(|p| (budget.of_point(p), p.accuracy))
                .collect();
            let points = a
                .points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.key.task == task && p.key.method == method)
                // A log axis cannot show a zero budget (nothing decoded).
                .filter(|(_, p)| {
                    let x = budget.of_point(p);
                    x.is_finite() && x > 0.0 && p.accuracy.is_finite()
                })
                .map(|(i, p)| Point {
                    x: budget.of_point(p),
                    y: 100.0 * p.accuracy,
                    y_err: p.accuracy_se.map(|s| 100.0 * s),
                    marker: marker(p.key.cr_target),
                    label: frontier.contains(&i).then(|| p.key.label()),
                })
                .collect();
            Series {
                name: method.to_string(),
                points,
                // The curve the gain integrates: the frontier, flat to the
                // method's largest budget.
                frontier: frontier_curve(&xy)
                    .into_iter()
                    .map(|(x, y)| (x, 100.0 * y))
                    .collect(),
            }
        })
        .collect();
    Chart {
        title: format!("{task}: accuracy vs {}", budget_name(budget)),
        x_label: budget.label().to_string(),
        y_label: "accuracy, maj@W (%)".into(),
        x_scale: Scale::Log10,
        y_range: Some((0.0, 100.0)),
        series,
        marker_legend: crs
            .iter()
            .map(|&cr| {
                (
                    marker(cr),
                    cr.map_or("CR 1".into(), |c| format!("CR {}", fmt_num(c))),
                )
            })
            .collect(),
    }
}

fn budget_name(b: BudgetAxis) -> &'static str {
    match b {
        BudgetAxis::KvReads => "KV reads",
        BudgetAxis::PeakEntries => "peak KV entries",
        BudgetAxis::PeakBytes => "peak KV memory",
        BudgetAxis::Runtime => "runtime",
    }
}

fn slug(task: &str) -> String {
    task.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn draw(
    charts: &[Chart],
    cols: usize,
    dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    for (ext, format) in [("png", ImageFormat::Png), ("svg", ImageFormat::Svg)] {
        let path = dir.join(format!("{stem}.{ext}"));
        render_grid(charts, cols, &path, format).map_err(|e| ReportError::Plot {
            path: path.clone(),
            message: e.to_string(),
        })?;
        files.push(path);
    }
    Ok(files)
}

/// Draw every figure of `analysis` under `dir` (created).
pub fn draw_plots(a: &Analysis, dir: &Path) -> Result<Vec<Drawn>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::write(dir, e))?;
    let rel = dir
        .file_name()
        .map_or_else(|| "plots".into(), |n| n.to_string_lossy().into_owned());
    let mut out = Vec::new();
    let tasks = a.tasks();
    if tasks.len() > 1 {
        let charts: Vec<Chart> = tasks
            .iter()
            .map(|t| task_chart(a, t, BudgetAxis::KvReads))
            .collect();
        out.push(Drawn {
            reference: PlotRef {
                title: "Overview: accuracy vs KV reads, every task".into(),
                path: format!("{rel}/overview.png"),
            },
            files: draw(&charts, 2, dir, "overview")?,
        });
    }
    for task in tasks {
        let charts: Vec<Chart> = PANELS.iter().map(|&b| task_chart(a, task, b)).collect();
        let stem = slug(task);
        out.push(Drawn {
            reference: PlotRef {
                title: format!("`{task}`: accuracy vs KV reads, peak KV memory and runtime"),
                path: format!("{rel}/{stem}.png"),
            },
            files: draw(&charts, 3, dir, &stem)?,
        });
    }
    Ok(out)
}
