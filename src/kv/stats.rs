//! Budgets counted by the store itself: reads and resident entries, per
//! sequence, per row and for the whole store.

use serde::{Deserialize, Serialize};

/// What one sequence cost the KV store, counted, never estimated.
///
/// Entries are (token × layer × KV head) key/value pairs; a read is one entry
/// read by one decode query group (the G query heads of a KV head read each
/// entry once).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvStats {
    /// Σ over decode steps of entries read by attention.
    pub decode_reads: u64,
    /// Entries read by attention during prefill (causal: Σ_t (t+1) per row).
    pub prefill_reads: u64,
    /// Entries this sequence holds now (its rows' lengths; a prefix shared
    /// with forks counts in full here, once in [`StoreStats`]).
    pub resident: u64,
    /// Maximum of `resident` over the sequence's life.
    pub peak_resident: u64,
    /// Bytes of K and V payload at the peak (`peak_resident × 2 × head_dim × 4`).
    pub peak_bytes: u64,
    /// Positions seen (prompt + generated tokens).
    pub positions: u64,
}

/// One (layer, KV head) row of a sequence: what it keeps versus what it saw,
/// for the achieved compression ratio per layer and head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowStats {
    /// Entries kept now.
    pub len: u64,
    /// Entries ever written into the row (tokens that reached it, kept or
    /// not, including those inherited from a fork parent).
    pub seen: u64,
    /// Σ over decode steps of entries of this row read by attention.
    pub decode_reads: u64,
    /// Entries of this row read by prefill attention.
    pub prefill_reads: u64,
}

impl RowStats {
    /// Positions seen per entry kept (`seen / len`; 1 for a dense row,
    /// infinite for an emptied one).
    pub fn compression_ratio(&self) -> f64 {
        self.seen as f64 / self.len as f64
    }
}

/// The whole store: physical entries (a block shared by forks counts once)
/// and reads summed over every sequence, released ones included.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Physically held entries now: per allocated block, its occupied slots.
    pub resident: u64,
    /// Maximum of `resident` over the store's life.
    pub peak_resident: u64,
    /// Blocks allocated now (K and V of `block_size` slots each, all layers).
    pub blocks: u64,
    /// Maximum of `blocks` over the store's life.
    pub peak_blocks: u64,
    /// K and V payload bytes of `peak_blocks` (block granularity: what the
    /// pools really hold at the peak).
    pub peak_bytes: u64,
    /// Σ of every sequence's decode reads.
    pub decode_reads: u64,
    /// Σ of every sequence's prefill reads.
    pub prefill_reads: u64,
    /// Blocks copied because a write hit a block shared by forks.
    pub cow_copies: u64,
}
