//! Task loading and grading: math, multiple choice, code, and regrading of records.

mod choice;
mod code;
mod math;
mod regrade;
mod tasks;
