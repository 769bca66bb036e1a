//! The sweep wired to the real stages: models identified by the hash of
//! their files and loaded once on their device, built-in (or file) tasks,
//! prompts through the model's chat template, generation into a fresh
//! [`crate::kv::KvStore`] per batch, grading with the task's grader and one
//! shared sandbox. [`run`] is what `hyperscale sweep` calls.
//!
//! | boundary trait | implementation | file |
//! |---|---|---|
//! | [`super::ModelCatalog`] | [`FileCatalog`] | `catalog.rs` |
//! | [`super::TaskSource`] | [`TaskRegistry`] | `tasks.rs` |
//! | [`super::PromptRenderer`], [`super::SampleGenerator`] | [`ChatRenderer`], [`ModelGenerator`] over one [`ModelCache`] | `model.rs` |
//! | cache policy → store | [`kv_store_for`], [`policy_supported`] | `store.rs` |
//! | [`super::SampleGrader`] | [`TaskGrader`] | `grader.rs` |
//! | errors | [`WiringError`] | `error.rs` |
//! | all of the model side for `backend = "openai"` | [`remote`] | `remote/` |

pub mod catalog;
pub mod error;
pub mod grader;
pub mod model;
pub mod remote;
pub mod run;
pub mod store;
pub mod tasks;

pub use catalog::FileCatalog;
pub use error::WiringError;
pub use grader::{TaskGrader, verdict_label};
pub use model::{ChatRenderer, ModelCache, ModelGenerator};
pub use run::run;
pub use store::{kv_store_for, policy_supported, policy_supported_on};
pub use tasks::{RegisteredTask, TaskRegistry};
