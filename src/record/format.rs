//! The version and file names of the on-disk format.

/// Version of the record and manifest format. Bump it when a column changes
/// meaning or disappears; readers refuse a run directory written by another
/// version instead of guessing.
///
/// History:
/// - 1: first format (JSON Lines records, `manifest.json`).
pub const RECORD_FORMAT_VERSION: u32 = 1;

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
