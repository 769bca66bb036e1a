//! Appending records: one `write` per record (the line and its newline
//! together), so a killed process leaves at most one torn last line, which
//! the next open detects and cuts off.
//!
//! Records reach the operating system as they are written, which is what a
//! SIGKILL can't undo; the file is `fsync`ed when the writer is finished.
//! A write that fails (a full disk) is cut back off, so the file keeps only
//! whole records and the error names this file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{RecordError, SampleRecord};

/// Appends [`SampleRecord`]s to a JSON Lines file.
#[derive(Debug)]
pub struct SampleWriter {
    path: PathBuf,
    file: File,
    written: u64,
    /// The file's length after the last whole record.
    len: u64,
}

impl SampleWriter {
    /// Open `path` for appending, creating it if needed. A torn last line is
    /// cut off first; the number of bytes removed is returned.
    pub fn open(path: &Path) -> Result<(Self, Option<u64>), RecordError> {
        let repaired = if path.exists() {
            repair_torn_tail(path)?
        } else {
            None
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| RecordError::io("open", path, e))?;
        Ok((Self::from_file(path, file)?, repaired))
    }

    /// A writer appending to `file`, opened for appending, named `path` in
    /// errors.
    pub(crate) fn from_file(path: &Path, file: File) -> Result<Self, RecordError> {
        let len = file
            .metadata()
            .map_err(|e| RecordError::io("stat", path, e))?
            .len();
        Ok(SampleWriter {
            path: path.to_path_buf(),
            file,
            written: 0,
            len,
        })
    }

    /// Append one record as one line, written in a single call.
    pub fn append(&mut self, record: &SampleRecord) -> Result<(), RecordError> {
        let mut line = serde_json::to_vec(record).map_err(|e| RecordError::Malformed {
            path: self.path.clone(),
            line: 0,
            message: format!("cannot serialise record `{}`: {e}", record.sample_id),
        })?;
        line.push(b'\n');
        if let Err(e) = self.file.write_all(&line).and_then(|()| self.file.flush()) {
            // Part of the line may be in: cut it (best effort; a torn line
            // left by a failed cut is repaired by the next open).
            let _ = self.file.set_len(self.len);
            return Err(RecordError::io("append to", &self.path, e));
        }
        self.len += line.len() as u64;
        self.written += 1;
        Ok(())
    }

    /// Flush what was written to disk, keeping the writer open.
    pub fn sync(&self) -> Result<(), RecordError> {
        self.file
            .sync_all()
            .map_err(|e| RecordError::io("sync", &self.path, e))
    }

    /// Records appended through this writer.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flush the file to disk.
    pub fn finish(self) -> Result<u64, RecordError> {
        self.file
            .sync_all()
            .map_err(|e| RecordError::io("sync", &self.path, e))?;
        Ok(self.written)
    }
}

/// If `path` does not end with a newline, truncate it after its last newline
/// (to empty when it has none). Returns the number of bytes removed.
pub fn repair_torn_tail(path: &Path) -> Result<Option<u64>, RecordError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| RecordError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| RecordError::io("stat", path, e))?
        .len();
    let keep = match last_newline(&mut file, len).map_err(|e| RecordError::io("read", path, e))? {
        Some(at) if at + 1 == len => return Ok(None),
        Some(at) => at + 1,
        None if len == 0 => return Ok(None),
        None => 0,
    };
    file.set_len(keep)
        .and_then(|()| file.sync_all())
        .map_err(|e| RecordError::io("truncate", path, e))?;
    Ok(Some(len - keep))
}

/// Offset of the last `\n` in the first `len` bytes of `file`.
fn last_newline(file: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_to_the_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        assert_eq!(repair_torn_tail(&path).unwrap(), Some(5));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
        // Whole lines are left alone.
        assert_eq!(repair_torn_tail(&path).unwrap(), None);
        // A file that is one torn line becomes empty.
        std::fs::write(&path, b"{\"a\"").unwrap();
        assert_eq!(repair_torn_tail(&path).unwrap(), Some(4));
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        assert_eq!(repair_torn_tail(&path).unwrap(), None);
    }

    #[test]
    fn a_failed_append_names_the_records_file() {
        // `/dev/full` fails every write with ENOSPC: the disk-full case,
        // injected (Linux only, always there).
        let full = OpenOptions::new().append(true).open("/dev/full").unwrap();
        let path = Path::new("results/run/samples.jsonl");
        let mut w = SampleWriter::from_file(path, full).unwrap();
        let record: SampleRecord = serde_json::from_str(
            r#"{"run": "r", "trial": "t", "group": "g", "sample_id": "t:p:0:0", "task": "arith",
            "task_version": "1", "problem_id": "p", "repeat": 0, "sample": 0, "model": "m",
            "method": "dense", "policy": "dense", "policy_params": "{}", "cr_target": null,
            "cr_achieved": null, "width": 1, "max_tokens": 4, "seed": 0, "temperature": 0.0,
            "top_p": 1.0, "top_k": 0, "prompt_tokens": 1, "generated_tokens": 1,
            "finish_reason": "eos", "extracted_answer": null, "verdict": "incorrect",
            "is_correct": false, "kv_reads": 0, "prefill_reads": 0, "peak_resident": 0,
            "peak_resident_batch": 0, "batch_first": 0, "batch_samples": 1, "peak_bytes": 0,
            "kv_rows": 1, "budget_source": "measured", "wall_seconds": 0.0,
            "prefill_seconds": 0.0, "decode_tokens_per_second": 0.0, "grade_seconds": 0.0,
            "device": "cpu", "token_hash": "00", "text": null}"#,
        )
        .unwrap();
        let e = crate::error_chain(&w.append(&record).unwrap_err());
        assert!(
            e.contains("failed to append to `results/run/samples.jsonl`") && e.contains("space"),
            "{e}"
        );
        assert_eq!(w.written(), 0);
    }

    #[test]
    fn newline_search_crosses_chunk_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut data = b"x\n".to_vec();
        data.extend(std::iter::repeat_n(b'y', 200_000));
        std::fs::write(&path, &data).unwrap();
        assert_eq!(repair_torn_tail(&path).unwrap(), Some(200_000));
        assert_eq!(std::fs::read(&path).unwrap(), b"x\n");
    }
}
