//! The version and file names of the on-disk format.

/// Version of the record and manifest format this binary writes. Bump it
/// when a column changes meaning or disappears; a sweep resumes or merges
/// only run directories of this version. The report side (`report`,
/// `compare`) reads every version from [`OLDEST_READABLE_FORMAT`] on.
///
/// History:
/// - 1: first format (JSON Lines records, `manifest.json`). The grader's
///   judgement is only the `verdict` label and `is_correct`;
///   `extracted_answer` holds the normalised vote key when there is one.
/// - 2: records add the grader's typed `outcome` and `failure` (serde
///   names of [`crate::grade::Outcome`] and [`crate::grade::FailureKind`])
///   and the normalised `vote_key`; `extracted_answer` is the raw extracted
///   answer (for code the program digest). A record without `outcome` is a
///   format-1 record and is read through its label
///   ([`crate::grade::Outcome::from_label`]).
/// - 3: records add `occupancy` (mean sequences in flight over the
///   sample's decode steps) and, with it, `wall_seconds` becomes the
///   sample's share of the decode steps it was in, in proportion to the
///   bytes it made each step move (its KV reads plus the weights divided
///   among the step's sequences), plus its request's prefill; before, each
///   sample was charged every step's whole wall time. Records without
///   `occupancy` keep the old meaning.
/// - 4: records add `kv_dtype`, the element the sample's K/V were stored
///   in (`f32`, `f16`, `bf16`), whose width `peak_bytes` counts: a device
///   keeps dense and DMS K/V in bf16 by default on CUDA (`--kv-dtype
///   auto`). A record without it stored f32 (every earlier binary did
///   outside `--kv-dtype`, which sweeps never set).
pub const RECORD_FORMAT_VERSION: u32 = 4;

/// The oldest format the report side still reads (see the history above).
pub const OLDEST_READABLE_FORMAT: u32 = 1;

/// Can the report side read records of format `version`?
pub fn readable_format(version: u32) -> bool {
    (OLDEST_READABLE_FORMAT..=RECORD_FORMAT_VERSION).contains(&version)
}

/// The run manifest inside `results/<run>/`.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The append-only sample records inside `results/<run>/`.
pub const SAMPLES_FILE: &str = "samples.jsonl";

/// The run directory's lock file ([`super::RunLock`]); its content names the
/// holder, its `flock` is the lock.
pub const LOCK_FILE: &str = "sweep.lock";

/// Error records set aside by a resume that retries them
/// ([`super::set_aside_errors`]), appended, never read back by the sweep.
pub const ERRORS_FILE: &str = "errors.jsonl";
