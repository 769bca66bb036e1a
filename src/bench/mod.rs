//! Benchmarks behind `hyperscale bench`: speed is measured here, never in
//! timed tests. Every figure is a median over repeats after warm-up, next to
//! the bytes it moved and the machine's measured bandwidth, so the distance
//! to the roofline is visible.

pub mod bandwidth;
pub mod decode;
pub mod fma_peak;
pub mod gemm;
pub mod kv_policy;
pub mod kv_store;
pub mod launches;
pub mod parity;
pub mod stats;
pub mod throughput;

pub use decode::{DecodeBenchConfig, DecodePoint, StepProfile, run_decode_bench};
pub use throughput::{ThroughputConfig, ThroughputReport, run_throughput_bench};
