//! Reports: estimators over graded samples (pass@1, unbiased pass@k, maj@k,
//! standard errors, seeded bootstrap CIs), the `hyperscale grade` summary,
//! and (with the `report` feature) `hyperscale report` and `compare`.
//!
//! ```text
//! SampleRecord ─batches─▶ BatchRow ─aggregate (polars)─▶ ProblemRow, PointSummary
//!   ─analyse─▶ frontiers, gains ± CI, warnings ─render─▶ report.md/html, tables, plots
//! ProblemRow × 2 runs ─compare─▶ Comparison (verdict = exit code)
//! ```
//!
//! | concern | file |
//! |---|---|
//! | estimator maths, pure functions | [`estimators`] |
//! | per-problem verdicts + estimators, text and JSON | [`grade_summary`] |
//! | the values: configuration key, W-batch, problem, configuration, budgets | [`summary`] |
//! | records → W-batches (votes, budgets) | [`batches`] |
//! | Pareto frontiers, log-budget interpolation, gain (definitions) | [`frontier`] |
//! | gains with bootstrap CIs over problems | [`gain`] |
//! | frontiers, gains and warnings of a run | [`analysis`] |
//! | the one-screen summary: gains per method and budget, best (method, CR) | [`headline`] |
//! | `report.md` / self-contained `report.html` | [`markdown`], [`html`] |
//! | the compare verdict, and its markdown/JSON | [`compare`], [`compare_render`] |
//! | polars aggregation; reading runs and writing reports | `aggregate`, `writer` (feature `report`) |
//! | figures: the charts of a run (`plots`), drawn by plotters (`plot`) | feature `report` |

#[cfg(feature = "report")]
pub mod aggregate;
pub mod analysis;
pub mod batches;
pub mod compare;
pub mod compare_render;
pub mod error;
pub mod estimators;
pub mod frontier;
pub mod gain;
pub mod grade_summary;
pub mod headline;
pub mod html;
pub mod markdown;
#[cfg(feature = "report")]
pub mod plot;
#[cfg(feature = "report")]
pub mod plots;
pub mod summary;
#[cfg(feature = "report")]
pub mod writer;

pub use analysis::{Analysis, Frontier, analyse};
pub use batches::{Prepared, VoteOn, batch_rows, point_key, prepare, std_err_across_runs_by_point};
pub use compare::{
    Comparison, DEFAULT_BUDGET_TOLERANCE, DEFAULT_RUNTIME_TOLERANCE, RegressionVerdict, RunTables,
    Tolerances, compare,
};
pub use compare_render::{compare_json, compare_markdown};
pub use error::ReportError;
pub use estimators::{
    BootstrapConfig, bootstrap_ci, majority_at_k, majority_at_k_blocks, mean, mean_pass_at_k,
    pass_at_k, std_dev, std_err, std_err_across_runs,
};
pub use frontier::{
    FrontierGain, frontier_curve, frontier_points, interpolate_log, mean_gain, pareto_frontier,
};
pub use gain::{GainEstimate, Selection, TaskMatrix, gain_estimate};
pub use grade_summary::{
    AtK, GradeFormat, GradeSummary, ProblemScore, SampleRow, grade_report, grade_report_with,
    render_json, render_text, summarize, summarize_with,
};
pub use headline::{ExtraCell, Headline, MethodRow, TaskHeadline, headline};
pub use markdown::{PlotRef, RenderOptions, RunInfo, render_markdown};
pub use summary::{BatchRow, BudgetAxis, PointKey, PointSummary, ProblemRow};
#[cfg(feature = "report")]
pub use writer::{
    ReportFiles, ReportOptions, RunData, RunReport, build_report, build_report_with, compare_runs,
    compare_runs_with, load_run, run_tables, tables_of, write_report,
};
