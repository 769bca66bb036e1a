//! The Hugging Face Hub: models (`--model hf:ORG/NAME[@REV]`) and task data
//! (`hyperscale data fetch`) downloaded into, and read from, the same cache
//! Python's `huggingface_hub` uses.
//!
//! ```text
//! HubConfig::from_env ─▶ HubClient ─resolve(Repo)─▶ Resolved (commit + listing | cache only)
//!                                  ─file(&Resolved, name)─▶ snapshots/<commit>/<name>
//! ```
//!
//! | file | owns |
//! |---|---|
//! | `env.rs` | `HubConfig`: endpoint, token, cache folder, offline mode |
//! | `repo.rs` | `RepoId`, `Repo`, `ModelRef` (`hf:…`) |
//! | `cache.rs` | `HubCache`: blobs / refs / snapshots layout |
//! | `api.rs` | the API listing, file URLs, ETags, error responses |
//! | `retry.rs` | `RetryPolicy`: backoff on 429 / 5xx / dropped connections (shared with other HTTP clients) |
//! | `download.rs` | resumable, hash-checked download of one file |
//! | `client.rs` | `HubClient`, `block_on` |
//! | `model.rs` | a model checkpoint as a snapshot folder |
//! | `data.rs` | a task's `[source.hub]` files |
//! | `error.rs` | `HubError` |

pub mod api;
pub mod cache;
pub mod client;
pub mod data;
mod download;
pub mod env;
pub mod error;
pub mod model;
pub mod repo;
pub mod retry;

pub use api::{ExpectedHash, FileMeta, RepoInfo, Sibling};
pub use cache::{HubCache, Lookup};
pub use client::{HubClient, Resolved, block_on, http_client};
pub use data::{DataFetch, FetchError, fetch_task_data};
pub use env::{DEFAULT_ENDPOINT, HubConfig};
pub use error::{HashAlgorithm, HubError};
pub use model::{resolve_model_arg, snapshot_model};
pub use repo::{DEFAULT_REVISION, HF_PREFIX, ModelRef, Repo, RepoId, RepoType, is_commit};
pub use retry::RetryPolicy;
