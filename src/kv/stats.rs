//! Budgets counted by the store itself: reads and resident entries.

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
    /// Entries held now (shared prefix entries counted once per store).
    pub resident: u64,
    /// Maximum of `resident` over the steps so far.
    pub peak_resident: u64,
    /// Bytes of K and V payload at the peak.
    pub peak_bytes: u64,
    /// Positions seen (prompt + generated tokens).
    pub positions: u64,
}
