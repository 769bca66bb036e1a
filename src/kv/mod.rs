//! The experimental variable: the project's own KV store, the decode
//! attention over it, and its accounting.
//!
//! Storage is per (sequence, layer, KV head) *row*, each with its own length,
//! so per-head eviction (DMS, TOVA, H2O, …) shows up as real savings in memory
//! and in bytes read, never hidden by padding to the longest head. RoPE
//! positions are kept per slot and per sequence, separately from the entries
//! kept.
//!
//! # Layout
//!
//! Per layer, a pool of fixed-size blocks (`block_size` slots × `head_dim`,
//! keys and values) with reference counts and a free list (`pool.rs`); per row
//! a block table, a length and the positions of its slots (`ledger.rs`). The
//! payload lives on the host (`host.rs`) or in device buffers (`cube_store`,
//! with the `wgpu`/`cuda` features); the ledger is always on the host.
//! [`KvStore::fork`] shares blocks: W samples of one prompt hold the prompt
//! once, and a write into a shared block copies it first (copy-on-write).
//!
//! # Cache policies
//!
//! A store built with [`KvStore::with_policy`] runs one [`CachePolicy`]
//! (dense, DMS, window, TOVA, H2O, Quest; `policies/`, one file per method
//! over one shared eviction mechanism). The model drives it through
//! [`KvStore::policy_prefill`] (a chunk attends over the kept entries and
//! itself under the policy's mask, then only what the policy keeps is
//! written) and [`KvStore::policy_decode`] (place, attend, evict), or the
//! [`AttentionBackend`] wrappers of both. DMS decisions come with each call,
//! per token and KV head. Per-sequence policy state follows forks and
//! releases. Training-free budgets: after `t` positions a row keeps
//! `max(min_tokens, ceil(t / CR))` entries, protected sinks and recent
//! windows included, a protected window larger than `min_tokens` raising it
//! ([`Budget`], [`CachePolicy::resolve`]). `docs/cache-policies.md` states
//! each policy's rule, reference, defaults and accounting.
//!
//! # How an eviction policy plugs in
//!
//! A policy keeps its own per-slot state (scores, DMS ring, flags), indexed
//! by the row's slot numbers, and drives the store through:
//!
//! - [`KvStore::decode_step`] with [`SlotChoice::Reuse`]`(slot)` per row to
//!   write the new token over an entry it gave up (DMS §2.3 slot reuse,
//!   window rings): O(1), no fragmentation, length unchanged;
//! - [`KvStore::evict`]`(row, slot)` to drop an entry now (swap-remove: the
//!   last entry moves into `slot`; the returned source slot tells the policy
//!   to move its state too), [`KvStore::truncate`] to cut a row;
//! - [`KvStore::append`] / [`KvStore::write_slot`] with explicit positions
//!   for survivors of an exact sparse prefill, and
//!   [`KvStore::count_prefill_reads`] / [`KvStore::count_decode_reads`] for
//!   reads the policy's own attention or metadata makes;
//! - [`KvStore::decode_step_weights`] for the attention weight of every
//!   entry (mean over the query group) to score by (TOVA, H2O);
//! - [`KvStore::row_positions`] / [`KvStore::read_row`] to inspect a row.
//!
//! On a device (`AttentionBackend` for `CubeBackend`), slot reuse goes
//! through `AttentionBackend::decode_attention_placed`; evict/truncate work
//! on either payload; per-entry weights are host-only for now.
//!
//! Reads of the store's kernels are counted by the store; resident entries
//! and peaks are maintained by it on every write.

pub mod attention;
mod audit;
mod copy;
pub mod cpu_kernel;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod cube_kernel;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube_store;
pub mod dtype;
pub mod error;
mod group;
mod host;
mod ledger;
mod plan;
pub mod policies;
pub mod policy;
mod pool;
pub mod prefill_kernel;
pub mod reference;
mod simd;
pub mod stats;
pub mod store;
#[cfg(target_arch = "x86_64")]
mod tile;
mod writes;

pub use attention::AttentionBackend;
#[cfg(feature = "cuda")]
pub use cube_store::CudaBackend;
#[cfg(feature = "wgpu")]
pub use cube_store::WgpuBackend;
pub use dtype::{KvDtype, KvDtypeChoice, KvDtypeError, KvTarget};
pub use error::KvError;
pub use ledger::{RowId, SlotCopy};
pub use policies::PrefillStep;
pub use policy::{
    Budget, CachePolicy, DmsParams, QUEST_DENSE_LAYERS, QuestGranularity, ResolvedPolicy,
    TovaGranularity,
};
pub use stats::{DevicePoolStats, KvStats, RowStats, StoreStats};
pub use store::{DEFAULT_BLOCK_SIZE, DecodeStep, KvShape, KvStore, SeqId, SlotChoice};
