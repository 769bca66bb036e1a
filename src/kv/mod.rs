//! The experimental variable: the project's own KV store, the decode
//! attention over it, and its accounting.
//!
//! Storage is per (sequence, layer, KV head) *row*, each with its own length,
//! so per-head eviction (DMS, TOVA, H2O, …) shows up as real savings in memory
//! and in bytes read, never hidden by padding to the longest head. RoPE
//! positions are tracked per sequence, separately from the entries kept.

pub mod attention;
pub mod policy;
pub mod stats;
pub mod store;

pub use attention::AttentionBackend;
pub use policy::{Budget, CachePolicy};
pub use stats::KvStats;
pub use store::{KvShape, KvStore, SeqId};
