//! Residency of a group of sequences: the entries physically held by the
//! W samples of one request, a block shared among them counted once.
//!
//! The continuous-batching scheduler ([`crate::generate::scheduler`]) runs
//! several requests in one store; a request's `batch_peak_resident` must
//! still be the peak of its own samples, whatever else shares the store.

use std::collections::HashSet;

use super::{KvStore, SeqId};

impl KvStore {
    /// Entries held now by `seqs` together: Σ fill over the distinct blocks
    /// their rows reference (a block shared by forks counts once), plus,
    /// under Quest, one entry-equivalent of page bounds per distinct block
    /// of a layer whose pages carry bounds. Equals
    /// [`KvStore::store_stats`]`.resident` when `seqs` are all the store's
    /// sequences.
    ///
    /// # Panics
    /// If a sequence was released.
    pub fn resident_of(&self, seqs: &[SeqId]) -> u64 {
        let ledger = &self.ledger;
        let kv_heads = ledger.shape().kv_heads;
        let mut seen: HashSet<(usize, u32)> = HashSet::new();
        let mut entries = 0u64;
        for &seq in seqs {
            let book = ledger.seq(seq).unwrap_or_else(|e| panic!("{e}"));
            for (r, row) in book.rows.iter().enumerate() {
                let layer = r / kv_heads;
                for &block in &row.blocks {
                    if seen.insert((layer, block)) {
                        entries += u64::from(ledger.pool(layer).fill(block))
                            + ledger.bounds_per_page(layer);
                    }
                }
            }
        }
        entries
    }
}
