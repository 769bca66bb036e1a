//! Tasks: task files (`tasks/*.toml`), loaders that turn any supported source
//! into [`Problem`]s, and the per-sample rendering of a problem into a user
//! message plus what the grader expects.

pub mod problem;

pub use problem::{Expected, Problem, Reference, TestCase, TestKind};
