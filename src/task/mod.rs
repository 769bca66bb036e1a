//! Tasks: task files (`tasks/*.toml`), loaders that turn any supported source
//! into [`Problem`]s, and the per-sample rendering of a problem into a user
//! message plus what the grader expects.
//!
//! ```text
//! tasks/<name>.toml ─Task::load / Task::builtin─▶ Task
//! Task::load_problems(LoadOptions) ─▶ LoadReport { problems: Vec<Problem>, skipped, … }
//! Task::render(&Problem, SampleCtx) ─▶ Rendered { user_message, expected: Expected }
//! ```
//!
//! | file | owns |
//! |---|---|
//! | `problem.rs` | `Problem`, `Reference`, `TestCase`, `Expected` |
//! | `file.rs` | the task file as written (serde mirror of the TOML) |
//! | `spec.rs` | the validated `Task`, built-in task files |
//! | `validate.rs` | task file → `Task`, field by field |
//! | `source.rs` | `Source` and `Task::load_problems` |
//! | `load.rs` | data location, `LoadOptions`, `LoadReport`, the JSONL driver |
//! | `aime.rs`, `gpqa.rs`, `livecodebench.rs`, `arith.rs` | one loader / generator each |
//! | `choices.rs`, `pyrandom.rs` | simple-evals choice order; CPython's MT19937 |
//! | `date.rs` | contest-date windows |
//! | `render.rs` | `Task::render`, `SampleCtx`, `Rendered` |
//! | `cli.rs` | `hyperscale tasks list|show` text |
//! | `error.rs` | `TaskError`, `DataError`, `RenderError` |

pub mod aime;
pub mod arith;
pub mod choices;
pub mod cli;
pub mod date;
pub mod error;
pub mod file;
pub mod gpqa;
pub mod livecodebench;
pub mod load;
pub mod problem;
pub mod pyrandom;
pub mod render;
pub mod source;
pub mod spec;
mod validate;

pub use arith::ArithConfig;
pub use choices::{
    ChoiceOrder, ChoiceSchedule, Permutation, correct_letter, simple_evals_permutations,
};
pub use date::{Date, DateWindow};
pub use error::{DataError, RenderError, TaskError};
pub use livecodebench::{Release, decode_private_tests};
pub use load::{DATA_ENV, LoadOptions, LoadReport, Skipped};
pub use problem::{Expected, Problem, Reference, TestCase, TestKind};
pub use pyrandom::PyRandom;
pub use render::{Rendered, SampleCtx};
pub use source::Source;
pub use spec::{GraderSpec, HubSource, PromptSpec, SamplingDefaults, Task};
