//! The open session of a run directory: the records writer and the manifest
//! behind one lock, so that whoever ends the session — the sweep when its
//! work is done or failed, or [`super::signals`] on SIGINT/SIGTERM — closes
//! it exactly once, with the exact count of records this session appended.
//!
//! After [`LiveSession::close`] no record is appended any more: a record
//! written after the manifest said `records_written = n` would make the
//! count wrong.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::SweepError;
use crate::generate::FinishReason;
use crate::record::{Manifest, RecordError, SampleRecord, SampleWriter, utc_timestamp};

/// What the session appended, as of when it was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCounts {
    /// Records appended.
    pub written: u64,
    /// Of those, error records (`finish_reason = "error"`).
    pub errors: u64,
}

struct State {
    manifest: Manifest,
    writer: Option<SampleWriter>,
    counts: SessionCounts,
    closed: bool,
}

/// A session in progress on `dir`.
pub struct LiveSession {
    dir: PathBuf,
    state: Mutex<State>,
}

impl LiveSession {
    /// `manifest` already lists this session (last); `writer` appends to the
    /// directory's records file.
    pub fn new(dir: &Path, manifest: Manifest, writer: SampleWriter) -> Self {
        LiveSession {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                manifest,
                writer: Some(writer),
                counts: SessionCounts::default(),
                closed: false,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every
        // field is updated after the write it counts).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append `record`; fails with [`SweepError::Closed`] once the session
    /// is closed.
    pub fn append(&self, record: &SampleRecord) -> Result<(), SweepError> {
        let mut s = self.lock();
        // Closing takes the writer.
        let Some(writer) = s.writer.as_mut() else {
            return Err(SweepError::Closed);
        };
        writer.append(record)?;
        s.counts.written += 1;
        if record.finish_reason == FinishReason::Error {
            s.counts.errors += 1;
        }
        Ok(())
    }

    /// Counts so far.
    pub fn counts(&self) -> SessionCounts {
        self.lock().counts
    }

    /// End the session: sync the records file, then write the manifest with
    /// the session's end, count, completeness and error. `None` when it was
    /// closed already. The first failure is returned; the manifest is
    /// written even when the sync failed.
    pub fn close(
        &self,
        complete: bool,
        error: Option<String>,
    ) -> Option<Result<SessionCounts, RecordError>> {
        let mut s = self.lock();
        if s.closed {
            return None;
        }
        s.closed = true;
        let synced = match s.writer.take() {
            Some(w) => w.finish().map(|_| ()),
            None => Ok(()),
        };
        let now = utc_timestamp(SystemTime::now());
        let counts = s.counts;
        if let Some(last) = s.manifest.sessions.last_mut() {
            last.ended_at = Some(now.clone());
            last.records_written = counts.written;
            last.complete = complete && synced.is_ok();
            last.error = error;
        }
        s.manifest.ended_at = Some(now);
        let written = s.manifest.write(&self.dir);
        Some(synced.and(written).map(|()| counts))
    }
}

/// The error a session ends with: the sweep's own failure when there is
/// one (a full disk fails the records file first; the manifest write that
/// follows fails too and must not hide it), else the closing failure.
pub fn first_failure<T>(
    result: Result<T, SweepError>,
    close: Option<Result<SessionCounts, RecordError>>,
) -> Result<T, SweepError> {
    match (result, close) {
        (Err(e), Some(Err(also))) => {
            tracing::warn!("could not close the session in the manifest either: {also}");
            Err(e)
        }
        (Err(e), _) => Err(e),
        (Ok(_), Some(Err(e))) => Err(e.into()),
        (Ok(v), _) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_wins_over_the_manifest_write_after_it() {
        let io = |path: &str| RecordError::Io {
            action: "write",
            path: path.into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        let append = SweepError::Record(RecordError::Io {
            action: "append to",
            path: "run/samples.jsonl".into(),
            source: std::io::Error::from_raw_os_error(28),
        });
        let e = first_failure::<()>(Err(append), Some(Err(io("run/manifest.json.tmp"))))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("samples.jsonl") && !e.contains("manifest"),
            "{e}"
        );
        let e = first_failure(Ok(()), Some(Err(io("run/manifest.json.tmp")))).unwrap_err();
        assert!(e.to_string().contains("manifest.json.tmp"), "{e}");
        assert!(first_failure(Ok(1), Some(Ok(SessionCounts::default()))).is_ok());
    }
}
