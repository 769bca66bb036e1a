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
