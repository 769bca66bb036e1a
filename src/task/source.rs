//! Where a task's problems come from ([`Source`]) and loading them:
//! [`Task::load_problems`] finds the data files and runs the right loader.

use std::path::PathBuf;

use super::aime;
use super::arith::{self, ArithConfig};
use super::date::DateWindow;
use super::error::DataError;
use super::gpqa::{self, ZipSpec};
use super::livecodebench::{self, Release};
use super::load::{Collector, LoadOptions, LoadReport, locate};
use super::spec::Task;

/// A validated `[source]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// AIME-style JSONL; the first of `files` found in `dir` is read.
    Aime { dir: String, files: Vec<String> },
    /// GPQA CSV or the official zip (`zip_member` inside, `zip_password`).
    Gpqa {
        dir: String,
        files: Vec<String>,
        zip_member: String,
        zip_password: String,
    },
    /// LiveCodeBench: all files of `release` if present, else the first of `files`.
    LiveCodeBench {
        dir: String,
        release: Release,
        files: Vec<String>,
        window: DateWindow,
    },
    /// Generated problems.
    Arith(ArithConfig),
}

impl Task {
    /// Loads the task's problems (see [`LoadOptions`] for where data is looked
    /// for). Strict unless `opts.lenient`: the first bad line is an error
    /// naming file, line and field.
    pub fn load_problems(&self, opts: &LoadOptions) -> Result<LoadReport, DataError> {
        let singles = |files: &[String]| files.iter().map(|f| vec![f.clone()]).collect::<Vec<_>>();
        let mut collector = Collector::new(opts.lenient);
        let paths: Vec<PathBuf> = match &self.source {
            Source::Aime { dir, files } => {
                let paths = locate(&self.name, dir, &singles(files), opts, self.hub.as_ref())?;
                for path in &paths {
                    aime::load(&self.name, path, &mut collector)?;
                }
                paths
            }
            Source::Gpqa {
                dir,
                files,
                zip_member,
                zip_password,
            } => {
                let paths = locate(&self.name, dir, &singles(files), opts, self.hub.as_ref())?;
                let zip = ZipSpec {
                    member: zip_member,
                    password: opts.zip_password.as_deref().unwrap_or(zip_password),
                };
                for path in &paths {
                    gpqa::load(path, &zip, &mut collector)?;
                }
                paths
            }
            Source::LiveCodeBench {
                dir,
                release,
                files,
                window,
            } => {
                let mut alternatives = vec![release.files()];
                alternatives.extend(singles(files));
                let paths = locate(&self.name, dir, &alternatives, opts, self.hub.as_ref())?;
                for path in &paths {
                    livecodebench::load(path, window, &mut collector)?;
                }
                paths
            }
            Source::Arith(config) => {
                if let Some(path) = &opts.data {
                    return Err(DataError::Generated {
                        task: self.name.clone(),
                        path: path.clone(),
                    });
                }
                return Ok(LoadReport {
                    problems: arith::generate(config),
                    ..LoadReport::default()
                });
            }
        };
        let last = paths.last().cloned().unwrap_or_default();
        collector.finish(&last)
    }
}
