//! Finding a task's data files and collecting problems from them: options,
//! the [`LoadReport`], and the line-by-line JSONL driver shared by loaders.
//!
//! Data is looked for in this order: the explicit `--data` path (a file, or a
//! folder holding the task's files; nothing else is searched then); else
//! `$HYPERSCALE_DATA/<dir>/`; else `data/<dir>/`; else, for a task with a
//! `[source.hub]`, its files in the Hugging Face cache (`$HF_HUB_CACHE`,
//! default `$HF_HOME/hub`), where `hyperscale data fetch` puts them: the
//! snapshot the task's revision points at, then any other snapshot of that
//! repository holding all the files (newest first). A bad line is an error naming file, line and field; with
//! `lenient` it is skipped and listed in [`LoadReport::skipped`] instead.
//! Problems are never dropped silently.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::DataError;
use super::problem::Problem;
use super::spec::HubSource;
use crate::hub::HubCache;
pub(crate) use crate::json::kind;

/// The environment variable naming the data root.
pub const DATA_ENV: &str = "HYPERSCALE_DATA";

/// How to find and read a task's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `--data`: a data file, or a folder holding the task's files.
    pub data: Option<PathBuf>,
    /// Roots searched for `<root>/<dir>/<file>` when `data` is `None`, in order.
    pub roots: Vec<PathBuf>,
    /// Skip bad lines (listing them in the report) instead of failing.
    pub lenient: bool,
    /// Overrides the task file's zip password.
    pub zip_password: Option<String>,
    /// The Hugging Face hub cache searched last (tasks with `[source.hub]`).
    pub hub_cache: Option<PathBuf>,
}

impl LoadOptions {
    /// Roots `$HYPERSCALE_DATA` (when set and non-empty), then `data`; then
    /// the hub cache of [`HubConfig::from_env`](crate::hub::HubConfig::from_env).
    pub fn from_env() -> Self {
        let mut roots = Vec::new();
        if let Some(root) = std::env::var_os(DATA_ENV).filter(|r| !r.is_empty()) {
            roots.push(PathBuf::from(root));
        }
        roots.push(PathBuf::from("data"));
        Self {
            roots,
            hub_cache: Some(crate::hub::HubConfig::from_env().cache_dir),
            ..Self::default()
        }
    }

    /// Reads exactly `path` (a file or a folder), searching no roots.
    pub fn with_data(path: impl Into<PathBuf>) -> Self {
        Self {
            data: Some(path.into()),
            ..Self::default()
        }
    }
}

/// What a load produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
    /// Lines skipped in lenient mode, with reasons.
    pub skipped: Vec<Skipped>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// Well-formed problems left out by the task's filter (e.g. the LCB date window).
    pub filtered_out: usize,
}

/// One line skipped in lenient mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: PathBuf,
    /// 1-based line (for CSV: where the record starts).
    pub line: usize,
    pub reason: String,
}

/// Why one record is unusable; the caller adds file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    pub field: Option<String>,
    pub reason: String,
}

impl LineError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            reason: reason.into(),
        }
    }

    pub fn record(reason: impl Into<String>) -> Self {
        Self {
            field: None,
            reason: reason.into(),
        }
    }
}

/// What became of one well-formed record.
pub(crate) enum Outcome {
    Keep(Problem),
    /// Left out by a filter (counted, not an error).
    Filtered,
}

/// Accumulates problems, enforcing unique ids and the strict/lenient rule.
pub(crate) struct Collector {
    lenient: bool,
    report: LoadReport,
    seen: HashMap<String, (PathBuf, usize)>,
}

impl Collector {
    pub fn new(lenient: bool) -> Self {
        Self {
            lenient,
            report: LoadReport::default(),
            seen: HashMap::new(),
        }
    }

    pub fn add_file(&mut self, path: &Path) {
        self.report.files.push(path.to_path_buf());
    }

    /// Takes one record's outcome: keeps it, counts it as filtered, or turns
    /// its error into a [`DataError`] (strict) or a [`Skipped`] (lenient).
    pub fn accept(
        &mut self,
        path: &Path,
        line: usize,
        outcome: Result<Outcome, LineError>,
    ) -> Result<(), DataError> {
        let outcome = outcome.and_then(|o| match o {
            Outcome::Keep(problem) => match self.seen.get(&problem.id) {
                Some((first_path, first_line)) => Err(LineError::field(
                    "id",
                    format!(
                        "duplicate id `{}` (first at {}:{first_line})",
                        problem.id,
                        first_path.display()
                    ),
                )),
                None => Ok(Outcome::Keep(problem)),
            },
            filtered => Ok(filtered),
        });
        match outcome {
            Ok(Outcome::Keep(problem)) => {
                self.seen
                    .insert(problem.id.clone(), (path.to_path_buf(), line));
                self.report.problems.push(problem);
            }
            Ok(Outcome::Filtered) => self.report.filtered_out += 1,
            Err(err) if self.lenient => self.report.skipped.push(Skipped {
                file: path.to_path_buf(),
                line,
                reason: match err.field {
                    Some(field) => format!("field `{field}`: {}", err.reason),
                    None => err.reason,
                },
            }),
            Err(err) => {
                return Err(match err.field {
                    Some(field) => DataError::Field {
                        path: path.to_path_buf(),
                        line,
                        field,
                        reason: err.reason,
                    },
                    None => DataError::Line {
                        path: path.to_path_buf(),
                        line,
                        reason: err.reason,
                    },
                });
            }
        }
        Ok(())
    }

    /// The report; an error if nothing at all was read from `last_path`'s load.
    pub fn finish(self, last_path: &Path) -> Result<LoadReport, DataError> {
        let report = self.report;
        if report.problems.is_empty() && report.skipped.is_empty() && report.filtered_out == 0 {
            return Err(DataError::Empty {
                path: last_path.to_path_buf(),
            });
        }
        Ok(report)
    }
}

/// Reads a JSONL file line by line, handing each object to `parse` with its
/// 1-based line number. Blank lines are not records and are passed over.
pub(crate) fn read_jsonl(
    path: &Path,
    collector: &mut Collector,
    mut parse: impl FnMut(usize, &Map<String, Value>) -> Result<Outcome, LineError>,
) -> Result<(), DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    collector.add_file(path);
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err)?;
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let outcome = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(map)) => parse(number, &map),
            Ok(_) => Err(LineError::record("not a JSON object")),
            Err(e) => Err(LineError::record(format!("invalid JSON: {e}"))),
        };
        collector.accept(path, number, outcome)?;
    }
    Ok(())
}

/// Finds the files to read: `alternatives` are sets of file names that must
/// all be present; the first complete set wins. An explicit `data` file is
/// returned as is. Without `data`, the `hub` files in the hub cache come last.
pub(crate) fn locate(
    task: &str,
    dir: &str,
    alternatives: &[Vec<String>],
    opts: &LoadOptions,
    hub: Option<&HubSource>,
) -> Result<Vec<PathBuf>, DataError> {
    let not_found = |searched| DataError::NotFound {
        task: task.to_string(),
        searched,
        fetch: hub.is_some(),
    };
    let folders: Vec<PathBuf> = match &opts.data {
        Some(path) if path.is_dir() => vec![path.clone()],
        Some(path) if path.is_file() => return Ok(vec![path.clone()]),
        Some(path) => return Err(not_found(vec![path.clone()])),
        None => opts.roots.iter().map(|root| root.join(dir)).collect(),
    };
    let mut searched = Vec::new();
    for folder in &folders {
        for set in alternatives {
            let paths: Vec<PathBuf> = set.iter().map(|name| folder.join(name)).collect();
            if paths.iter().all(|p| p.is_file()) {
                return Ok(paths);
            }
            searched.extend(paths);
        }
    }
    if let (None, Some(cache), Some(hub)) = (&opts.data, &opts.hub_cache, hub) {
        let cache = HubCache::new(cache);
        match cache.find_with_files(&hub.repo, &hub.files) {
            (Some(snapshot), _) => return Ok(hub.files.iter().map(|f| snapshot.join(f)).collect()),
            (None, looked) if looked.is_empty() => searched.push(cache.repo_dir(&hub.repo.id)),
            (None, looked) => searched.extend(looked),
        }
    }
    Err(not_found(searched))
}

/// A required string field of a JSON record.
pub(crate) fn string_field<'a>(
    map: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a str, LineError> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(LineError::field(
            field,
            format!("expected a string, found {}", kind(other)),
        )),
        None => Err(LineError::field(field, "missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_records_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blank.jsonl");
        std::fs::write(&path, "\n  \n").unwrap();
        let mut c = Collector::new(false);
        read_jsonl(&path, &mut c, |_, _| Err(LineError::record("unreachable"))).unwrap();
        assert!(matches!(c.finish(&path), Err(DataError::Empty { .. })));
    }

    #[test]
    fn locate_prefers_earlier_roots_then_earlier_alternatives() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for (root, name) in [(&a, "second.jsonl"), (&b, "first.jsonl")] {
            std::fs::create_dir(root.path().join("t")).unwrap();
            std::fs::write(root.path().join("t").join(name), "{}").unwrap();
        }
        let alternatives = vec![
            vec!["first.jsonl".to_string()],
            vec!["second.jsonl".to_string()],
        ];
        let opts = LoadOptions {
            roots: vec![a.path().to_path_buf(), b.path().to_path_buf()],
            ..LoadOptions::default()
        };
        let found = locate("t", "t", &alternatives, &opts, None).unwrap();
        assert_eq!(found, [a.path().join("t/second.jsonl")]);

        let missing = LoadOptions::with_data(a.path().join("nope.jsonl"));
        let err = locate("t", "t", &alternatives, &missing, None).unwrap_err();
        assert!(err.to_string().contains("nope.jsonl"), "{err}");
    }
}
