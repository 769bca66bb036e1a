//! On-disk results of a sweep: `results/<run>/manifest.json` (what was run,
//! by which binary, on which hardware) and `results/<run>/samples.jsonl` (one
//! flat [`SampleRecord`] per graded sample, appended and flushed one record
//! at a time).
//!
//! The records file is the source of truth for resuming: [`ResumeIndex`]
//! reads which samples are finished, [`SampleWriter`] repairs a torn last
//! line left by a crash and appends new records. Records are JSON Lines now;
//! consolidation to Parquet needs polars and is left to the report stage.
//! [`merge_runs`] unions the run directories of one config's shards.
//! [`RunLock`] keeps a directory to one writer; [`set_aside_errors`] lets
//! a resume retry the samples a remote engine failed on.

pub mod canonical;
pub mod error;
pub mod format;
pub mod index;
pub mod lock;
pub mod manifest;
pub mod merge;
#[cfg(feature = "report")]
pub mod parquet;
pub mod retry;
pub mod sample;
pub mod writer;

pub use canonical::{canonical_json, config_hash};
pub use error::RecordError;
pub use format::{
    ERRORS_FILE, LOCK_FILE, MANIFEST_FILE, OLDEST_READABLE_FORMAT, RECORD_FORMAT_VERSION,
    SAMPLES_FILE, readable_format,
};
pub use index::{ResumeIndex, read_complete_records, read_records};
pub use lock::RunLock;
pub use manifest::{Hardware, Identities, Manifest, MergedInput, Session, Shard, utc_timestamp};
pub use merge::{MergeError, MergeSummary, merge_runs};
#[cfg(feature = "report")]
pub use parquet::{SAMPLES_PARQUET_FILE, consolidate, records_frame, write_parquet};
pub use retry::set_aside_errors;
pub use sample::{BudgetSource, SampleKey, SampleRecord, token_hash};
pub use writer::{SampleWriter, repair_torn_tail};
