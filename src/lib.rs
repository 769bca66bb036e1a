//! hyperscale — inference-time hyper-scaling, measured.
//!
//! Compress a reasoning model's KV cache (Dynamic Memory Sparsification and
//! training-free baselines), spend the saved memory and bandwidth on longer or
//! more parallel generations, and measure whether accuracy rises at an equal
//! budget of KV reads, peak KV memory and runtime.
//!
//! The pipeline is the architecture:
//!
//! ```text
//! Problem ─render─▶ Prompt ─generate(model, cache policy, W×L)─▶ Completion
//!         ─grade─▶ Verdict ─record─▶ SampleRecord ─aggregate─▶ Summary ─report─▶ reports/
//! ```
//!
//! | stage | module |
//! |---|---|
//! | task files, loaders, `Problem` | [`task`] |
//! | chat templates, task prompts, `Prompt` | [`prompt`] |
//! | the network: config, weights (GGUF, safetensors), tokenizer, transformer | [`model`] |
//! | the experimental variable: the KV store, its policies and accounting | [`kv`] |
//! | batched decoding, sampling, stop conditions, `Completion` | [`generate`] |
//! | answer extraction, graders, the code sandbox, `Verdict` | [`grade`] |
//! | grids of trials, pipelined generate → grade → record, resume | [`sweep`] |
//! | on-disk results: manifest, sample records, format version | [`record`] |
//! | estimators (pass@k, maj@k, CIs) | [`report`] |
//! | a loaded model on a device, with tokenizer and chat template | [`runtime`] |
//! | benchmarks (`hyperscale bench`) | [`bench`] |
//! | models and task data from the Hugging Face Hub | [`hub`] |
//! | DMS retrofitting (`hyperscale train-dms`) | [`train`] |
//! | bounds on what configs, task files and flags may ask | [`limits`] |
//! | phase timers in the hot paths, read by `bench decode --profile` | [`profile`] |
//! | the command line: raw arguments, and each command's logic | [`cli`], [`commands`] |

pub mod bench;
pub mod cli;
pub mod commands;
pub mod cuda_toolkit;
pub mod device;
pub mod generate;
pub mod grade;
pub mod hub;
pub mod kernel_cache;
pub mod kv;
pub mod limits;
pub mod model;
pub mod profile;
pub mod prompt;
pub mod record;
pub mod report;
pub mod runtime;
pub mod sweep;
pub mod task;
pub mod train;

mod error_chain;
pub use error_chain::error_chain;
mod json;
