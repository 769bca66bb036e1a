//! The logic of each `hyperscale` command, between the raw arguments of
//! [`crate::cli`] and the stages of the library: flags validated (each
//! refusal names its flag), models and data loaded, the stage run, and its
//! result returned as a typed report (`Serialize` + `Display`) for `main`
//! to print. Nothing here prints to stdout; progress notes go through the
//! callbacks a command takes.
//!
//! One file per command (`bench decode` and `bench parity` apart); the
//! inputs several commands share (a model argument, a task's data flags)
//! are read in [`inputs`].

mod bench_decode;
mod bench_parity;
mod bench_throughput;
mod data;
mod error;
mod generate;
mod grade;
mod inputs;
#[cfg(feature = "report")]
mod report;
mod sweep;
mod train;

pub use bench_decode::{DecodeBenchReport, bench_decode};
pub use bench_parity::{BF16_PARITY_TOLERANCE, F32_PARITY_TOLERANCE, ParityOutcome, bench_parity};
pub use bench_throughput::bench_throughput;
pub use data::{DataFetched, data_fetch, tasks_show};
pub use error::CommandError;
pub use generate::{GenerateReport, generate};
pub use grade::grade;
pub use inputs::{load_model, load_options};
#[cfg(feature = "report")]
pub use report::{CompareOutcome, ReportWritten, compare, report};
pub use sweep::{SweepOutcome, sweep};
pub use train::{EvalDmsOutcome, TrainedCheckpoints, eval_dms, train_dms};

/// Writes `value` as pretty JSON to `path` (a command's `--json FILE`).
pub fn write_json(
    path: &std::path::Path,
    value: &impl serde::Serialize,
) -> Result<(), CommandError> {
    std::fs::write(path, serde_json::to_string_pretty(value)?).map_err(|source| {
        CommandError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Serializes a value by its `Display` (a device as `cuda:0`, not a tagged
/// enum), as the reports' JSON always wrote it.
fn as_display<S: serde::Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}
