//! Report tests: estimators, golden report maths, and the smoke report snapshots.

mod estimators;
mod golden;
mod smoke;
