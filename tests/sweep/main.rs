//! Sweep tests: config and plan, the pipeline and runner with mocks, resume, shards, remote engines, end to end and the smoke sweep.

mod batching;
mod config;
mod e2e;
mod pipeline;
mod remote;
mod resume;
mod runner;
mod shard;
mod smoke;
mod sweep_mocks;
