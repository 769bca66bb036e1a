//! `hyperscale report` and `hyperscale compare`: a run aggregated into
//! report files, and a candidate run checked against a baseline.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::cli::{BootstrapArgs, CompareArgs, CompareFormatArg, ReportArgs};
use crate::report::{
    BootstrapConfig, Comparison, ReportFiles, ReportOptions, Tolerances, compare_json,
    compare_markdown, compare_runs_with, write_report,
};

use super::CommandError;

/// The bootstrap flags, checked.
fn bootstrap(args: &BootstrapArgs) -> Result<BootstrapConfig, CommandError> {
    if !(0.0 < args.level && args.level < 1.0) {
        return Err(CommandError::usage(format!(
            "--level {}: expected a value in (0, 1)",
            args.level
        )));
    }
    Ok(BootstrapConfig {
        resamples: args.resamples,
        level: args.level,
        seed: args.seed,
    })
}

/// The files `report` wrote; displayed as the one-line account of them.
#[derive(Debug)]
pub struct ReportWritten(pub ReportFiles);

impl ReportWritten {
    /// What the analysis warns of (for stderr, one a line).
    pub fn warnings(&self) -> &[String] {
        &self.0.report.analysis.warnings
    }
}

impl fmt::Display for ReportWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = &self.0;
        write!(
            f,
            "wrote {} files under `{}` ({} configurations, {} gains)",
            files.files.len(),
            files.out.display(),
            files.report.analysis.points.len(),
            files.report.analysis.gains.len()
        )
    }
}

/// Runs `report`: the run's report files under `--out` (default
/// `reports/<run name>`).
pub fn report(args: &ReportArgs) -> Result<ReportWritten, CommandError> {
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let name = args
                .run
                .file_name()
                .ok_or_else(|| CommandError::usage("the run directory has no name; give --out"))?;
            Path::new("reports").join(name)
        }
    };
    let options = ReportOptions {
        bootstrap: bootstrap(&args.bootstrap)?,
        no_plots: args.no_plots,
        vote: args.vote.into(),
    };
    Ok(ReportWritten(write_report(&args.run, &out, &options)?))
}

/// `compare`'s result, displayed in `--format`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct CompareOutcome {
    pub comparison: Comparison,
    #[serde(skip)]
    format: CompareFormatArg,
}

impl CompareOutcome {
    /// 0 pass, 1 regression, 2 incomparable.
    pub fn exit_code(&self) -> u8 {
        self.comparison.verdict.exit_code()
    }
}

impl fmt::Display for CompareOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format {
            CompareFormatArg::Json => writeln!(f, "{}", compare_json(&self.comparison)),
            CompareFormatArg::Md => f.write_str(&compare_markdown(&self.comparison, false)),
        }
    }
}

/// Runs `compare` on the two runs' common trials.
pub fn compare(args: &CompareArgs) -> Result<CompareOutcome, CommandError> {
    let tolerances = Tolerances {
        accuracy: args.tolerance,
        budget: args.budget_tolerance,
        runtime: args.runtime_tolerance,
    };
    let comparison = compare_runs_with(
        &args.baseline,
        &args.candidate,
        &tolerances,
        &bootstrap(&args.bootstrap)?,
        args.vote.into(),
    )?;
    Ok(CompareOutcome {
        comparison,
        format: args.format,
    })
}
