//! The sweep config as written (`configs/*.toml`): serde structs that mirror
//! the file exactly, unknown keys refused. Nothing downstream reads these;
//! [`super::Plan::from_config`] validates them into a plan.
//!
//! ```toml
//! [run]
//! name = "smoke"                 # results/<name>/ (default: the file's stem)
//!
//! [model]
//! path = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
//! [[model.dms]]                  # DMS checkpoints, one per compression ratio
//! cr = 8
//! path = "nvidia/Qwen3-8B-DMS-8x"
//!
//! [[tasks]]
//! name = "aime24"
//! data = "tests/data/aime24/nemo_skills_aime24_test.jsonl"  # default: the task's own search
//! limit = 2
//! answer_region = "whole"        # default: the task's (strict for aime24)
//!
//! [sampling]
//! temperature = 0.6
//! seeds = [0]
//!
//! [grid]
//! cr = [2, 4]                    # for methods with a budget
//! widths = [1, 2]                # W
//! lengths = [64]                 # L
//! [[grid.methods]]
//! policy = "dense"
//! [[grid.methods]]
//! policy = "tova"
//! ```
//!
//! **DMS at several CRs.** A DMS model's compression ratio is learned into
//! its checkpoint, so it is not a grid knob: each `[[model.dms]]` entry names
//! a checkpoint and the CR it was trained for, and a `dms` method runs once
//! per entry (or per entry whose `cr` is in the method's own `cr` list).
//! `grid.cr` applies to training-free methods only; dense ignores it.

use serde::{Deserialize, Serialize};

use super::keypath::key_at;
use super::{ConfigError, SweepError};
use crate::kv::{QUEST_DENSE_LAYERS, QuestGranularity, TovaGranularity};
use crate::prompt::template::RegionMode;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    #[serde(default)]
    pub run: RunSection,
    pub model: ModelSection,
    pub tasks: Vec<TaskSection>,
    #[serde(default)]
    pub sampling: SamplingSection,
    pub grid: GridSection,
    /// How generation uses the machine; never changes a record, so it is
    /// left out of the resolved config (a run resumes under other settings).
    #[serde(default, skip_serializing)]
    pub engine: EngineSection,
}

/// `[engine]`: how many sequences decode together. Changes wall time only:
/// every sample is the same whatever these are (docs/batching.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Sequences decoded together at most (≥ 1; `--max-sequences`
    /// overrides it). Default [`crate::sweep::DEFAULT_MAX_SEQUENCES`].
    pub max_sequences: Option<usize>,
    /// KV memory the requests in flight may hold together, e.g. `"2GiB"`
    /// (B, kB, MB, GB, KiB, MiB, GiB; `--kv-memory` overrides it). Default:
    /// half the memory available when the sweep starts.
    pub kv_memory: Option<String>,
    /// Prompt tokens prefilled between two decode steps at most (≥ 1;
    /// `--prefill-chunk` overrides it), where that is bit-identical to one
    /// piece (no cache policy yet: docs/batching.md). Default: a prompt in
    /// one piece.
    pub prefill_chunk: Option<usize>,
}

/// `[run]`: where results go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Run directory name. Default: the config file's stem.
    pub name: Option<String>,
    /// Parent of run directories. Default `results`.
    #[serde(default = "default_results_dir")]
    pub results_dir: String,
    /// Keep each sample's text in its record. Default `true`; long-L sweeps
    /// may turn it off (32k-token texts make large files).
    #[serde(default = "default_true")]
    pub save_text: bool,
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            name: None,
            results_dir: default_results_dir(),
            save_text: true,
        }
    }
}

/// `[model]`: the network the sweep runs. Relative paths are relative to the
/// working directory (the repository root in CI); the model catalog may also
/// accept hub ids.
///
/// With `backend = "openai"` generation goes to an OpenAI-compatible server
/// (see [`super::backend`]); `path` is then a local directory (or GGUF) with
/// the model's tokenizer and chat template — weights are not needed — so
/// prompts are rendered exactly as in local runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The model for dense and training-free methods.
    pub path: String,
    /// `local` (this process decodes) or `openai` (a server does). Default
    /// `local`; left out of the resolved config when local, so runs recorded
    /// before the key existed still resume.
    #[serde(default, skip_serializing_if = "BackendKind::is_local")]
    pub backend: BackendKind,
    /// `openai`: the API root, e.g. `http://localhost:8000/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// `openai`: the served model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `openai`: environment variable holding the API key (sent as a bearer
    /// token). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// `openai`: the attention shape for computed budgets. Default: read
    /// from `path` (config.json or GGUF metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<ShapeSection>,
    /// `openai`: requests in flight at once. Default 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// `openai`: most samples per request (`n`); a batch of W is split into
    /// ceil(W / max_n) concurrent requests. Default 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_n: Option<usize>,
    /// `openai`: seconds before a request is given up and retried. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// `openai`: retries after a 429, a 5xx, a timeout or a connection
    /// error, with exponential backoff. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// `openai`: first backoff in seconds (doubling per retry, at most 60,
    /// or the server's `Retry-After`). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_seconds: Option<f64>,
    /// `openai`: how the prompt is sent: `tokens` (the local token ids;
    /// default) or `text` (the locally rendered prompt as a string, for
    /// servers that take only strings: llama.cpp, Ollama). See
    /// docs/remote-engines.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_format: Option<PromptFormat>,
    /// `openai` with `prompt_format = "text"`: whether the server prepends
    /// BOS to a string prompt (then the prompt is sent without its own).
    /// Default: what the model's tokenizer does (`add_bos_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_adds_bos: Option<bool>,
    /// `cpu`, `cuda`, `cuda:N`, `wgpu`. Default `cpu`.
    #[serde(default = "default_device")]
    pub device: String,
    /// The projection weights, as `--decode-weights` names them: `f32`
    /// (dequantized once at load), `bf16`, `f16` (half precision where a
    /// device has no bf16: wgpu, which refuses `bf16`), `quantized` (a
    /// GGUF's Q4_0/Q4_1/Q8_0 blocks as stored, read by CPU decode steps:
    /// f32's logits bit for bit, 4–7× fewer bytes per step) or `q8act`.
    /// Default `f32`.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// DMS-retrofitted checkpoints of this model, one per CR.
    #[serde(default)]
    pub dms: Vec<DmsCheckpointSection>,
}

/// Who decodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    #[default]
    Local,
    Openai,
}

impl BackendKind {
    fn is_local(&self) -> bool {
        *self == BackendKind::Local
    }
}

/// `model.prompt_format`: what a remote engine is sent as the prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// Token ids: the server sees exactly the local tokens.
    #[default]
    Tokens,
    /// The rendered prompt as a string, checked to tokenise back to the
    /// local tokens.
    Text,
}

/// `model.shape`: what the closed-form budget of dense attention needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeSection {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// `[[model.dms]]`: one DMS checkpoint and the CR it was trained for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmsCheckpointSection {
    pub cr: f64,
    pub path: String,
}

/// `[[tasks]]`: one benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    /// Task name as the task loader knows it (`aime24`, `gpqa-diamond`, …).
    pub name: String,
    /// Data file; default: the task's own.
    pub data: Option<String>,
    /// Use only the first `limit` problems (after `problems`). Default: all.
    pub limit: Option<usize>,
    /// Use only these problem ids, in this order. Default: all.
    pub problems: Option<Vec<String>>,
    /// Which part of a completion is graded: `strict` (after the last
    /// `</think>`, none without it), `lenient` (after `</think>`, else all)
    /// or `whole`. Default: the task's. Models that do not think in tags
    /// (SmolLM2) need `whole` on tasks whose default is `strict`.
    /// Left out of the resolved config when unset, so runs recorded before
    /// the key existed still resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_region: Option<RegionMode>,
}

/// `[sampling]`: how tokens are drawn. Defaults follow the R1 convention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSection {
    /// Default `0.6`; `0` is greedy.
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// Default `0.95`.
    #[serde(default = "default_top_p")]
    pub top_p: f32,
    /// Default `0` (off).
    #[serde(default)]
    pub top_k: usize,
    /// Base seeds; each runs the whole grid again. Default `[0]`.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
}

impl Default for SamplingSection {
    fn default() -> Self {
        SamplingSection {
            temperature: default_temperature(),
            top_p: default_top_p(),
            top_k: 0,
            seeds: default_seeds(),
        }
    }
}

/// `[grid]`: the experimental design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSection {
    pub methods: Vec<MethodSection>,
    /// Compression ratios for methods with a budget. Default: none.
    #[serde(default)]
    pub cr: Vec<f64>,
    /// W: parallel samples per problem.
    pub widths: Vec<usize>,
    /// L: the most new tokens per sample.
    pub lengths: Vec<usize>,
    /// Independent W-batches per problem (for pass@1 and maj@W estimates).
    /// Default `1`.
    #[serde(default = "default_repeats")]
    pub repeats: usize,
    /// Samples of a larger W reuse the first samples of a smaller W (only the
    /// extra ones are decoded). Default `false`: every W is decoded as one
    /// batch, so its batch peak memory is measured exactly. Token for token,
    /// sample `i` is the same either way.
    #[serde(default)]
    pub nested_widths: bool,
}

/// `[[grid.methods]]`: a cache policy with its parameters, minus the budget
/// (which comes from `cr`). `name` tells two methods of one policy apart
/// (default: the policy name); `cr` overrides `grid.cr` for this method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum MethodSection {
    /// Keeps everything; takes no `cr`.
    Dense {
        name: Option<String>,
        cr: Option<Vec<f64>>,
    },
    /// The checkpoints of `[[model.dms]]`; `cr` picks among them.
    Dms {
        name: Option<String>,
        cr: Option<Vec<f64>>,
        /// Default: the checkpoint's.
        window: Option<usize>,
        /// Default: the checkpoint's.
        shifted: Option<bool>,
    },
    Window {
        name: Option<String>,
        cr: Option<Vec<f64>>,
        sink: usize,
        /// Budget floor (`Budget::Ratio::min_tokens`). Default `16`.
        min_tokens: Option<usize>,
    },
    Tova {
        name: Option<String>,
        cr: Option<Vec<f64>>,
        min_tokens: Option<usize>,
        /// `layer` (the reference: weights averaged over all query heads of
        /// the layer, one eviction set per layer) or `kv_head`. Default
        /// `layer`; always written to the resolved config, so a run made
        /// before the key existed (per KV head) is not resumed as if it
        /// were the same.
        #[serde(default)]
        granularity: TovaGranularity,
    },
    H2o {
        name: Option<String>,
        cr: Option<Vec<f64>>,
        recent: usize,
        min_tokens: Option<usize>,
    },
    Quest {
        name: Option<String>,
        cr: Option<Vec<f64>>,
        page_size: usize,
        min_tokens: Option<usize>,
        /// `query_head` (the reference: each query head reads its own top
        /// pages) or `kv_head` (one page set per KV head). Default
        /// `query_head`; always written to the resolved config.
        #[serde(default)]
        granularity: QuestGranularity,
        /// The first layers decode densely. Default 2 (the reference's);
        /// always written to the resolved config.
        #[serde(default = "default_quest_dense_layers")]
        dense_layers: usize,
    },
}

/// Default budget floor of training-free methods.
pub const DEFAULT_MIN_TOKENS: usize = 16;

impl SweepConfig {
    /// Read and parse the config file at `path`: the one way a sweep reads
    /// its config. A file that cannot be read is
    /// [`SweepError::ReadConfig`]; one that does not parse is one line
    /// `path:line: key: message` ([`SweepError::Config`]).
    pub fn load(path: &std::path::Path) -> Result<Self, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text, &path.display().to_string())?)
    }

    /// Parse a config file's text. Errors are one line naming the key;
    /// `file` is used in messages only.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let mut key = e
                .span()
                .and_then(|span| key_at(text, span))
                .unwrap_or_else(|| "(top level)".to_string());
            let mut line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let mut message = one_line(e.message());
            // Method tables are read through their `policy` tag, which hides
            // the element from the error's span: find the element by hand.
            if key.starts_with("grid.methods")
                && let Some((i, k, m)) = method_error(text)
            {
                line = nth_header_line(text, "[[grid.methods]]", i);
                (key, message) = (k, m);
            }
            ConfigError {
                file: match line {
                    Some(line) => format!("{file}:{line}"),
                    None => file.to_string(),
                },
                key,
                message,
            }
        })
    }
}

fn one_line(message: &str) -> String {
    message.trim().replace('\n', " ")
}

/// The first `[[grid.methods]]` entry that does not parse on its own:
/// `(index, key, message)`.
fn method_error(text: &str) -> Option<(usize, String, String)> {
    let doc: toml::Table = toml::from_str(text).ok()?;
    let methods = doc.get("grid")?.get("methods")?.as_array()?;
    methods.iter().enumerate().find_map(|(i, m)| {
        let e = m.clone().try_into::<MethodSection>().err()?;
        let message = one_line(e.message());
        let quoted = |prefix: &str| {
            let rest = message.strip_prefix(prefix)?;
            rest.split('`').next().map(str::to_string)
        };
        let key = if let Some(field) = quoted("unknown field `") {
            format!("grid.methods[{i}].{field}")
        } else if message.starts_with("unknown variant") {
            format!("grid.methods[{i}].policy")
        } else {
            format!("grid.methods[{i}]")
        };
        Some((i, key, message))
    })
}

/// 1-based line of the `n`-th line that is exactly `header`.
fn nth_header_line(text: &str, header: &str, n: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .nth(n)
        .map(|(i, _)| i + 1)
}

fn default_quest_dense_layers() -> usize {
    QUEST_DENSE_LAYERS
}
fn default_results_dir() -> String {
    "results".into()
}
fn default_true() -> bool {
    true
}
fn default_device() -> String {
    "cpu".into()
}
fn default_dtype() -> String {
    "f32".into()
}
fn default_temperature() -> f32 {
    0.6
}
fn default_top_p() -> f32 {
    0.95
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_repeats() -> usize {
    1
}
