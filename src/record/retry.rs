//! Error records are not final: a remote engine that failed on a sample
//! after every retry leaves a record with `finish_reason = "error"` (no
//! text, no tokens), and a later session retries that sample.
//!
//! [`set_aside_errors`] runs at the start of such a session, under the run
//! directory's lock: the error lines are appended to `errors.jsonl` (a log
//! for diagnosis, never read back by the sweep) and `samples.jsonl` is
//! rewritten without them, byte for byte otherwise, through a temporary
//! file and a rename. The session then decodes those samples again and
//! appends their new records, so a key is never in `samples.jsonl` twice.
//! A crash between the two steps leaves an error line in both files, which
//! the next session sets aside again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::Deserialize;

use super::manifest::replace_file;
use super::{ERRORS_FILE, RecordError, SAMPLES_FILE};

/// The column that marks an error record.
#[derive(Deserialize)]
struct FinishColumn {
    #[serde(default)]
    finish_reason: Option<String>,
}

/// True when a record line is an error record (`finish_reason = "error"`).
pub fn is_error_line(line: &[u8]) -> bool {
    serde_json::from_slice::<FinishColumn>(line)
        .is_ok_and(|c| c.finish_reason.as_deref() == Some("error"))
}

/// Move the error records of `dir/samples.jsonl` to `dir/errors.jsonl`;
/// returns how many were moved (0: nothing was rewritten). A torn last line
/// is dropped with them (a crash mid-write; its sample is redone anyway).
/// The caller must hold the directory's [`super::RunLock`] and must not have
/// the records file open for appending.
pub fn set_aside_errors(dir: &Path) -> Result<u64, RecordError> {
    let path = dir.join(SAMPLES_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(RecordError::io("open", &path, e)),
    };
    let mut reader = BufReader::new(file);
    let (mut keep, mut errors) = (Vec::new(), Vec::new());
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| RecordError::io("read", &path, e))?;
        if read == 0 || line.last() != Some(&b'\n') {
            break; // end, or a torn last line
        }
        if is_error_line(&line[..line.len() - 1]) {
            errors.extend_from_slice(&line);
            n += 1;
        } else {
            keep.extend_from_slice(&line);
        }
    }
    if n == 0 {
        return Ok(0);
    }
    let log = dir.join(ERRORS_FILE);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| {
            f.write_all(&errors)?;
            f.sync_all()
        })
        .map_err(|e| RecordError::io("append to", &log, e))?;
    replace_file(&path, &keep, |tmp, bytes| {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sample: u32, finish: &str) -> String {
        format!(
            "{{\"trial\":\"t\",\"problem_id\":\"p\",\"repeat\":0,\"sample\":{sample},\"finish_reason\":\"{finish}\",\"x\":1.9574468085106382}}\n"
        )
    }

    #[test]
    fn error_records_move_to_the_log_and_the_rest_stays_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let samples = dir.path().join(SAMPLES_FILE);
        let (a, b, c) = (line(0, "eos"), line(1, "error"), line(2, "length"));
        std::fs::write(&samples, format!("{a}{b}{c}{{\"tor")).unwrap();
        assert_eq!(set_aside_errors(dir.path()).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(&samples).unwrap(),
            format!("{a}{c}")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(ERRORS_FILE)).unwrap(),
            b
        );
        // Nothing left to set aside: the file is not rewritten.
        assert_eq!(set_aside_errors(dir.path()).unwrap(), 0);
        assert!(!dir.path().join("samples.jsonl.tmp").exists());
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(set_aside_errors(empty.path()).unwrap(), 0);
    }
}
