//! Reading a records file back: which samples are finished (for resuming)
//! and the records themselves (for tests and reports).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;

use super::{RecordError, SampleKey, SampleRecord};

/// The finished samples of a run directory.
#[derive(Debug, Clone, Default)]
pub struct ResumeIndex {
    keys: HashSet<SampleKey>,
    /// The keys of error records (`finish_reason = "error"`), also in `keys`.
    errors: HashSet<SampleKey>,
    /// True when the file ended in a torn line (ignored, not repaired).
    pub torn_tail: bool,
}

/// The columns that identify a record; the rest of the line is skipped.
#[derive(Deserialize)]
struct KeyColumns {
    trial: String,
    problem_id: String,
    repeat: u32,
    sample: u32,
    #[serde(default)]
    finish_reason: Option<String>,
}

impl ResumeIndex {
    /// Read the keys of every record in `path` (an absent file is empty).
    /// A torn last line is skipped and flagged; a malformed or duplicate
    /// complete line is an error naming its line.
    pub fn load(path: &Path) -> Result<Self, RecordError> {
        let mut index = ResumeIndex::default();
        let mut first_line: HashMap<SampleKey, usize> = HashMap::new();
        for_each_line(path, |line_no, line, complete| {
            if !complete {
                index.torn_tail = true;
                return Ok(());
            }
            let k: KeyColumns =
                serde_json::from_slice(line).map_err(|e| RecordError::Malformed {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: e.to_string(),
                })?;
            let key = SampleKey {
                trial: k.trial,
                problem_id: k.problem_id,
                repeat: k.repeat,
                sample: k.sample,
            };
            if let Some(&first) = first_line.get(&key) {
                return Err(RecordError::Duplicate {
                    path: path.to_path_buf(),
                    line: line_no,
                    first,
                    sample_id: key.sample_id(),
                });
            }
            first_line.insert(key.clone(), line_no);
            if k.finish_reason.as_deref() == Some("error") {
                index.errors.insert(key.clone());
            }
            index.keys.insert(key);
            Ok(())
        })?;
        Ok(index)
    }

    /// Error records among the keys: samples a resume retries.
    pub fn errors(&self) -> usize {
        self.errors.len()
    }

    /// The index with its error records counted as not done (what a session
    /// that retries them will find after [`super::set_aside_errors`]).
    pub fn without_errors(mut self) -> Self {
        for k in self.errors.drain() {
            self.keys.remove(&k);
        }
        self
    }

    pub fn contains(&self, key: &SampleKey) -> bool {
        self.keys.contains(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Every record of `path`, in file order. Any incomplete or malformed line is
/// an error.
pub fn read_records(path: &Path) -> Result<Vec<SampleRecord>, RecordError> {
    let mut out = Vec::new();
    for_each_line(path, |line_no, line, complete| {
        let malformed = |message: String| RecordError::Malformed {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        if !complete {
            return Err(malformed("torn last line (no newline)".into()));
        }
        out.push(serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?);
        Ok(())
    })?;
    Ok(out)
}

/// The complete records of `path` with their line numbers, in file order,
/// and whether a torn last line (a crash mid-write) was left out. A
/// malformed complete line is an error.
pub fn read_complete_records(
    path: &Path,
) -> Result<(Vec<(usize, SampleRecord)>, bool), RecordError> {
    let (lines, torn) = read_complete_lines(path)?;
    Ok((lines.into_iter().map(|(n, r, _)| (n, r)).collect(), torn))
}

/// Line number, record, and the line as written (without its newline).
pub(crate) type RecordLine = (usize, SampleRecord, Vec<u8>);

/// [`read_complete_records`] with each record's line as written, for
/// rewriting records without re-serialising them.
pub(crate) fn read_complete_lines(path: &Path) -> Result<(Vec<RecordLine>, bool), RecordError> {
    let mut out = Vec::new();
    let mut torn = false;
    for_each_line(path, |line_no, line, complete| {
        if !complete {
            torn = true;
            return Ok(());
        }
        let record = serde_json::from_slice(line).map_err(|e| RecordError::Malformed {
            path: path.to_path_buf(),
            line: line_no,
            message: e.to_string(),
        })?;
        out.push((line_no, record, line.to_vec()));
        Ok(())
    })?;
    Ok((out, torn))
}

/// Call `f(line number, bytes without the newline, ends with newline)` per line.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &[u8], bool) -> Result<(), RecordError>,
) -> Result<(), RecordError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RecordError::io("open", path, e)),
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| RecordError::io("read", path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let complete = buf.last() == Some(&b'\n');
        let body = if complete {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        f(line_no, body, complete)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(trial: &str, sample: u32) -> String {
        format!(
            "{{\"trial\":\"{trial}\",\"problem_id\":\"p\",\"repeat\":0,\"sample\":{sample},\"extra\":1}}\n"
        )
    }

    #[test]
    fn keys_are_read_and_a_torn_tail_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, format!("{}{}{{\"tri", line("a", 0), line("a", 1))).unwrap();
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.len(), 2);
        assert!(index.torn_tail);
        let key = |s| SampleKey {
            trial: "a".into(),
            problem_id: "p".into(),
            repeat: 0,
            sample: s,
        };
        assert!(index.contains(&key(1)) && !index.contains(&key(2)));
        assert!(
            ResumeIndex::load(&dir.path().join("absent"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn duplicates_and_malformed_lines_are_errors_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(
            &path,
            format!("{}{}{}", line("a", 0), line("b", 0), line("a", 0)),
        )
        .unwrap();
        let e = ResumeIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("first on line 1"), "{e}");
        std::fs::write(&path, format!("{}not json\n", line("a", 0))).unwrap();
        let e = ResumeIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 2: malformed"), "{e}");
    }
}
