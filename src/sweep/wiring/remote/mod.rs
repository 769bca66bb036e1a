//! The sweep against a remote OpenAI-compatible engine (`model.backend =
//! "openai"`): prompts rendered and tokenised locally from the model's
//! tokenizer and chat template, generation by the server's
//! `/v1/completions` with token-id prompts (or, `prompt_format = "text"`,
//! the rendered text checked to tokenise back to the same ids), dense only,
//! budgets computed from token counts. docs/remote-engines.md says how to
//! point it at vLLM, SGLang, llama.cpp and Ollama.
//!
//! | part | file |
//! |---|---|
//! | HTTP client: retries, backoff, timeouts, concurrency | `client.rs` |
//! | closed-form dense budgets | `budget.rs` |
//! | tokenizer + chat template without weights; renderer; identity | `prompt.rs` |
//! | [`crate::sweep::SampleGenerator`] | `generator.rs` |

pub mod budget;
pub mod client;
pub mod generator;
pub mod prompt;

pub use budget::{dense_batch_peak, dense_stats};
pub use client::{
    Choice, CompletionRequest, CompletionResponse, OpenAiClient, PromptBody, RemoteError, Usage,
};
pub use generator::RemoteGenerator;
pub use prompt::{PromptModel, RemoteCatalog, RemoteRenderer};
