//! Flags of `report` and `compare`, and the bootstrap settings they share.

use std::path::PathBuf;

use clap::Args;

use super::values::{CompareFormatArg, VoteArg, tolerance};

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Bootstrap draws over problems for CIs.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Two-sided CI level.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory (`results/<run>`).
    pub run: PathBuf,
    /// Output directory (default `reports/<run name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the plots.
    #[arg(long)]
    pub no_plots: bool,
    /// What maj@W votes on.
    #[arg(long, value_enum, default_value_t = VoteArg::Raw)]
    pub vote: VoteArg,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run directory.
    pub baseline: PathBuf,
    /// The candidate run directory.
    pub candidate: PathBuf,
    /// Accuracy drop tolerated beyond the CI, as a fraction (0.02 = 2 points).
    #[arg(long, default_value_t = 0.0, value_parser = tolerance)]
    pub tolerance: f64,
    /// Relative growth tolerated of KV reads and peak KV memory (counted, so
    /// deterministic: 0.05 = 5%).
    #[arg(long, default_value_t = crate::report::DEFAULT_BUDGET_TOLERANCE, value_parser = tolerance)]
    pub budget_tolerance: f64,
    /// Relative runtime growth tolerated. Default: 3.0 (4× slower), and
    /// runtime is gated only when both runs report the same hardware; given
    /// explicitly, it is gated whatever the hardware.
    #[arg(long, value_parser = tolerance)]
    pub runtime_tolerance: Option<f64>,
    /// How the comparison is printed.
    #[arg(long, value_enum, default_value_t = CompareFormatArg::Md)]
    pub format: CompareFormatArg,
    /// What maj@W votes on (a run of record format 1 makes both vote on
    /// the normalised key).
    #[arg(long, value_enum, default_value_t = VoteArg::Raw)]
    pub vote: VoteArg,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}
