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
    /// with forks counts in full here, once in [`StoreStats`]), plus, under
    /// Quest, one entry-equivalent per page of each row past the dense
    /// layers: the page's min and max keys (`2 × head_dim` floats, the size
    /// of one entry's K and V).
    pub resident: u64,
    /// Maximum of `resident` over the sequence's life.
    pub peak_resident: u64,
    /// Bytes of K and V payload (and Quest page bounds) at the peak
    /// (`peak_resident × 2 × head_dim ×` the stored element's bytes: 4 for
    /// f32, 2 for a device store in f16/bf16).
    pub peak_bytes: u64,
    /// Positions seen (prompt + generated tokens).
    pub positions: u64,
    /// Entries kept now per (layer, KV head) row, layer-major: the achieved
    /// compression ratio of a row is `positions / row_len`.
    pub row_len: Vec<u32>,
}

impl KvStats {
    /// Positions seen per entry kept, over all rows (`positions × rows /
    /// Σ row_len`; 1 for dense).
    pub fn compression_ratio(&self) -> f64 {
        let kept: u64 = self.row_len.iter().map(|&l| u64::from(l)).sum();
        (self.positions * self.row_len.len() as u64) as f64 / kept as f64
    }

    /// The achieved compression ratio of each layer (its KV heads pooled),
    /// for `kv_heads` heads per layer.
    pub fn layer_compression(&self, kv_heads: usize) -> Vec<f64> {
        self.row_len
            .chunks(kv_heads.max(1))
            .map(|l| {
                let kept: u64 = l.iter().map(|&x| u64::from(x)).sum();
                (self.positions * l.len() as u64) as f64 / kept as f64
            })
            .collect()
    }
}

/// One (layer, KV head) row of a sequence: what it keeps versus what it saw,
/// for the achieved compression ratio per layer and head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowStats {
    /// Entries kept now.
    pub len: u64,
    /// Positions the sequence has seen (the same for every row of it).
    pub positions: u64,
    /// Entries ever written into the row (tokens that reached it, kept or
    /// not, including those inherited from a fork parent).
    pub seen: u64,
    /// Σ over decode steps of entries of this row read by attention.
    pub decode_reads: u64,
    /// Entries of this row read by prefill attention.
    pub prefill_reads: u64,
}

impl RowStats {
    /// Positions seen per entry kept (`positions / len`; 1 for a dense
    /// row, infinite for an emptied one). Not `seen / len`: an exact sparse
    /// prefill never writes the entries it drops.
    pub fn compression_ratio(&self) -> f64 {
        self.positions as f64 / self.len as f64
    }
}

/// A device payload's pool allocations over its life
/// ([`KvStore::device_pool_stats`](super::KvStore::device_pool_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePoolStats {
    /// Pool buffers allocated (a layer's K and V count as two).
    pub allocations: u64,
    /// Bytes of those buffers.
    pub bytes: u64,
    /// Times a layer's pools were replaced by larger ones, copying the old
    /// contents (0 when the reservation covered the run).
    pub grow_copies: u64,
}

/// The whole store: physical entries (a block shared by forks counts once)
/// and reads summed over every sequence, released ones included.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Physically held entries now: per allocated block, its occupied slots
    /// (and one entry-equivalent for its Quest page bounds, where it has
    /// them).
    pub resident: u64,
    /// Maximum of `resident` over the store's life.
    pub peak_resident: u64,
    /// Blocks allocated now (K and V of `block_size` slots each, all layers).
    pub blocks: u64,
    /// Maximum of `blocks` over the store's life.
    pub peak_blocks: u64,
    /// Peak of the K and V payload bytes of the allocated blocks (block
    /// granularity: what the pools really hold) plus their Quest page
    /// bounds.
    pub peak_bytes: u64,
    /// Σ of every sequence's decode reads.
    pub decode_reads: u64,
    /// Σ of every sequence's prefill reads.
    pub prefill_reads: u64,
    /// Blocks copied because a write hit a block shared by forks.
    pub cow_copies: u64,
}
