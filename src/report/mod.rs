//! Reports: estimators over graded samples (pass@1, unbiased pass@k, maj@k,
//! standard errors, seeded bootstrap CIs) and the `hyperscale grade` summary.
//!
//! | concern | file |
//! |---|---|
//! | estimator maths, pure functions | [`estimators`] |
//! | per-problem verdicts + estimators, text and JSON | [`grade_summary`] |

pub mod estimators;
pub mod grade_summary;
pub mod plot;

pub use estimators::{
    BootstrapConfig, bootstrap_ci, majority_at_k, majority_at_k_blocks, mean, mean_pass_at_k,
    pass_at_k, std_dev, std_err,
};
pub use grade_summary::{
    AtK, GradeFormat, GradeSummary, ProblemScore, SampleRow, grade_report, render_json,
    render_text, summarize,
};
