//! GPQA loader: the official CSV (78 columns, quoted multi-line fields), read
//! directly or from inside the official password-protected `dataset.zip`
//! (`docs/data-formats.md` §2.2).
//!
//! The zip's members are ZipCrypto-encrypted (general-purpose flag bit 0, no
//! AES extra field), which the `zip` crate decrypts without extra features.
//! Question and answers are kept verbatim, as simple-evals uses them; the
//! problem id is `Record ID`; metadata carries the CSV `row` and `n_rows`,
//! which fix the simple-evals choice order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::error::DataError;
use super::load::{Collector, LineError, Outcome};
use super::problem::{Problem, Reference};

/// Metadata key: 0-based row of the problem in its CSV.
pub const ROW: &str = "row";
/// Metadata key: number of data rows in the problem's CSV.
pub const N_ROWS: &str = "n_rows";

const QUESTION: &str = "Question";
const CORRECT: &str = "Correct Answer";
const INCORRECT: [&str; 3] = [
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
];
const RECORD_ID: &str = "Record ID";
const DOMAIN: &str = "High-level domain";
const SUBDOMAIN: &str = "Subdomain";

/// Where the CSV bytes come from.
pub(crate) struct ZipSpec<'a> {
    pub member: &'a str,
    pub password: &'a str,
}

/// Reads `path` (a CSV, or a zip holding `zip.member`) into `collector`.
pub(crate) fn load(
    path: &Path,
    zip: &ZipSpec<'_>,
    collector: &mut Collector,
) -> Result<(), DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err)?;
    collector.add_file(path);
    if bytes.starts_with(b"PK\x03\x04") {
        let csv = read_member(path, bytes, zip)?;
        parse_csv(&path.join(zip.member), &csv, collector)
    } else {
        parse_csv(path, &bytes, collector)
    }
}

fn read_member(path: &Path, bytes: Vec<u8>, zip: &ZipSpec<'_>) -> Result<Vec<u8>, DataError> {
    let zip_err = |source| DataError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let index = archive
        .index_for_name(zip.member)
        .ok_or(zip::result::ZipError::FileNotFound)
        .map_err(zip_err)?;
    let encrypted = archive.by_index_raw(index).map_err(zip_err)?.encrypted();
    let decrypt_err = |detail: String| DataError::ZipDecrypt {
        path: path.to_path_buf(),
        member: zip.member.to_string(),
        detail,
    };
    let mut out = Vec::new();
    let result = if encrypted {
        archive
            .by_index_decrypt(index, zip.password.as_bytes())
            .map_err(|e| decrypt_err(e.to_string()))?
            .read_to_end(&mut out)
    } else {
        archive
            .by_index(index)
            .map_err(zip_err)?
            .read_to_end(&mut out)
    };
    // ZipCrypto's header check passes 1 in 256 wrong passwords; those fail
    // here, in inflate or on the CRC.
    result.map_err(|e| decrypt_err(e.to_string()))?;
    Ok(out)
}

fn parse_csv(path: &Path, bytes: &[u8], collector: &mut Collector) -> Result<(), DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers = reader.headers().map_err(|e| DataError::Line {
        path: path.to_path_buf(),
        line: 1,
        reason: format!("invalid CSV header: {e}"),
    })?;
    let column = |name: &str| -> Result<usize, DataError> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::Field {
                path: path.to_path_buf(),
                line: 1,
                field: name.to_string(),
                reason: "column missing from the header".into(),
            })
    };
    let columns = Columns {
        question: column(QUESTION)?,
        correct: column(CORRECT)?,
        incorrect: [
            column(INCORRECT[0])?,
            column(INCORRECT[1])?,
            column(INCORRECT[2])?,
        ],
        record_id: column(RECORD_ID)?,
        domain: headers.iter().position(|h| h == DOMAIN),
        subdomain: headers.iter().position(|h| h == SUBDOMAIN),
    };
    // Rows are numbered by position in the file, bad ones included, so the
    // choice order of the others does not shift when one is skipped.
    let rows: Vec<(usize, Result<csv::StringRecord, csv::Error>)> = reader
        .records()
        .map(|r| {
            let line = match &r {
                Ok(rec) => rec.position().map(|p| p.line() as usize),
                Err(e) => e.position().map(|p| p.line() as usize),
            };
            (line.unwrap_or(0), r)
        })
        .collect();
    let n_rows = rows.len();
    for (row, (line, record)) in rows.into_iter().enumerate() {
        let outcome = match record {
            Ok(record) => columns.problem(&record, row, n_rows).map(Outcome::Keep),
            Err(e) => Err(LineError::record(format!("invalid CSV record: {e}"))),
        };
        collector.accept(path, line, outcome)?;
    }
    Ok(())
}

struct Columns {
    question: usize,
    correct: usize,
    incorrect: [usize; 3],
    record_id: usize,
    domain: Option<usize>,
    subdomain: Option<usize>,
}

impl Columns {
    fn problem(
        &self,
        record: &csv::StringRecord,
        row: usize,
        n_rows: usize,
    ) -> Result<Problem, LineError> {
        let get = |index: usize, name: &str| -> Result<String, LineError> {
            let value = record
                .get(index)
                .ok_or_else(|| LineError::field(name, "missing (short record)"))?;
            if value.trim().is_empty() {
                return Err(LineError::field(name, "empty"));
            }
            Ok(value.to_string())
        };
        let question = get(self.question, QUESTION)?;
        let correct = get(self.correct, CORRECT)?;
        let incorrect = self
            .incorrect
            .iter()
            .zip(INCORRECT)
            .map(|(&i, name)| get(i, name))
            .collect::<Result<Vec<_>, _>>()?;
        let id = get(self.record_id, RECORD_ID)?.trim().to_string();
        let mut metadata = BTreeMap::new();
        metadata.insert(ROW.into(), Value::from(row));
        metadata.insert(N_ROWS.into(), Value::from(n_rows));
        for (key, index) in [("domain", self.domain), ("subdomain", self.subdomain)] {
            if let Some(value) = index.and_then(|i| record.get(i)) {
                metadata.insert(key.into(), Value::from(value.trim()));
            }
        }
        Ok(Problem {
            id,
            question,
            reference: Reference::MultipleChoice { correct, incorrect },
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A synthetic two-row CSV in the GPQA column layout (not GPQA content).
    const CSV: &str = "Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3,High-level domain\n\
rec1,\"Which colour,\nif any?\",red ,blue,green,\"say \"\"none\"\"\",Physics\n\
rec2,Pick one,a,b,c,d,Chemistry\n";

    #[test]
    fn parses_quoted_multiline_fields_verbatim() {
        let mut c = Collector::new(false);
        parse_csv(Path::new("x.csv"), CSV.as_bytes(), &mut c).unwrap();
        let report = c.finish(Path::new("x.csv")).unwrap();
        assert_eq!(report.problems.len(), 2);
        let p = &report.problems[0];
        assert_eq!(p.id, "rec1");
        assert_eq!(p.question, "Which colour,\nif any?");
        assert_eq!(
            p.reference,
            Reference::MultipleChoice {
                correct: "red ".into(),
                incorrect: vec!["blue".into(), "green".into(), "say \"none\"".into()],
            }
        );
        assert_eq!(p.metadata[ROW], 0);
        assert_eq!(report.problems[1].metadata[ROW], 1);
        assert_eq!(report.problems[1].metadata[N_ROWS], 2);
    }

    #[test]
    fn empty_answer_names_line_and_column() {
        let csv = CSV.replace("rec2,Pick one,a,", "rec2,Pick one,,");
        let mut c = Collector::new(false);
        let err = parse_csv(Path::new("x.csv"), csv.as_bytes(), &mut c).unwrap_err();
        assert_eq!(err.to_string(), "x.csv:4: field `Correct Answer`: empty");
    }

    #[test]
    fn missing_column_is_an_error() {
        let csv = CSV.replace("Record ID", "Record");
        let mut c = Collector::new(false);
        let err = parse_csv(Path::new("x.csv"), csv.as_bytes(), &mut c).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.csv:1: field `Record ID`: column missing from the header"
        );
    }
}
