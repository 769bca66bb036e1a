//! The task file as written (`tasks/*.toml`): serde structs that mirror the
//! TOML exactly and reject unknown keys. Nothing outside [`super::spec`] reads
//! these; [`TaskFile::validate`](super::spec) turns them into a [`super::Task`].

use serde::Deserialize;

/// The task-file format version this build reads.
pub const TASK_FILE_VERSION: u32 = 1;

/// A whole task file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// Task-file format version; must equal [`TASK_FILE_VERSION`].
    pub version: u32,
    /// Task name (`aime24`, `gpqa-diamond`, …); ids and reports use it.
    pub name: String,
    pub description: String,
    pub source: SourceFile,
    /// Choice ordering; multiple-choice tasks only.
    pub choices: Option<ChoicesFile>,
    pub prompt: PromptFile,
    pub answer: AnswerFile,
    pub grader: GraderFile,
    pub sampling: SamplingFile,
}

/// `[source]`: where problems come from. The `format` tag picks the loader.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceFile {
    /// AIME-style JSONL (NeMo-Skills, Qwen2.5-Math, `question`/`answer`, QwQ).
    AimeJsonl {
        /// Folder name under the data root (defaults to the task name).
        dir: Option<String>,
        /// Candidate file names, first found wins.
        files: Vec<String>,
        /// Where `hyperscale data fetch` gets the files.
        hub: Option<HubFile>,
    },
    /// GPQA CSV, or the official zip holding it.
    Gpqa {
        dir: Option<String>,
        files: Vec<String>,
        zip_member: String,
        zip_password: String,
        hub: Option<HubFile>,
    },
    /// LiveCodeBench `code_generation_lite` JSONL (or the public-only derivative).
    Livecodebench {
        dir: Option<String>,
        /// `release_v1` … `release_v6` (cumulative) or `v1` … `v6` (one file).
        release: String,
        /// Fallback file names when the release files are not all present.
        files: Vec<String>,
        /// Inclusive `YYYY-MM-DD` bounds on `contest_date`.
        date_from: String,
        date_to: String,
        hub: Option<HubFile>,
    },
    /// The synthetic arithmetic generator.
    Arith {
        seed: u64,
        per_difficulty: usize,
        difficulties: Vec<u8>,
    },
}

/// `[source.hub]`: the task's official files on the Hugging Face Hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubFile {
    /// `org/name`.
    pub repo: String,
    /// `dataset` (default) or `model`.
    #[serde(default = "default_repo_type")]
    pub repo_type: String,
    /// Branch, tag or commit; default `main`.
    pub revision: Option<String>,
    /// Paths inside the repository, all read. Default (LiveCodeBench only):
    /// the files of `source.release`.
    pub files: Option<Vec<String>>,
}

fn default_repo_type() -> String {
    "dataset".into()
}

/// `[choices]`: how multiple-choice options are ordered per repeat.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoicesFile {
    /// `simple-evals` or `per-repeat`.
    pub order: String,
    pub seed: u64,
}

/// `[prompt]`: user-message templates with `{{name}}` placeholders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptFile {
    pub template: String,
    /// Code tasks: the template for problems without starter code.
    pub stdin_template: Option<String>,
}

/// `[answer]`: which part of a completion is graded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerFile {
    /// `strict`, `lenient` or `whole` (see [`crate::prompt::template::RegionMode`]).
    pub region: String,
}

/// `[grader]`: the grader and its options.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GraderFile {
    Math { fallback_last_number: bool },
    MultipleChoice {},
    Code { test_timeout_s: f64 },
}

/// `[sampling]`: default decoding settings for the task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingFile {
    pub temperature: f64,
    pub top_p: f64,
    /// Absent: no top-k cut.
    pub top_k: Option<u32>,
    pub max_new_tokens: u32,
    /// Samples per problem.
    pub samples: u32,
}
