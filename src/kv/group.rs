//! Residency of a group of sequences: the entries physically held by the
//! W samples of one request, a block shared among them counted once.
//!
//! The continuous-batching scheduler ([`crate::generate::scheduler`]) runs
//! several requests in one store; a request's `batch_peak_resident` must
//! still be the peak of its own samples, whatever else shares the store.
//! [`KvStore::group_peak`] is that peak, kept by the ledger on every write
//! (a policy that writes a step's entry before it evicts, H2O or TOVA,
//! peaks inside a step); [`KvStore::resident_of`] is the residency now.

use std::collections::HashSet;

use super::{KvStore, SeqId};

impl KvStore {
    /// Entries `seq` has read in decode steps so far, over all its rows
    /// ([`KvStats::decode_reads`](super::KvStats) without building the
    /// stats).
    ///
    /// # Panics
    /// If `seq` was released.
    pub fn decode_reads(&self, seq: SeqId) -> u64 {
        let book = self.ledger.seq(seq).unwrap_or_else(|e| panic!("{e}"));
        book.rows.iter().map(|r| r.decode_reads).sum()
    }

    /// Bytes of one entry's K and V as the store counts them (`peak_bytes`):
    /// `2 × head_dim ×` the stored element's bytes (4 for f32, the host
    /// payload's form; 2 for a device store in f16 or bf16).
    pub fn entry_bytes(&self) -> u64 {
        self.ledger.entry_bytes()
    }

    /// Peak entries held together by `seq`'s group: the sequence `seq` was
    /// forked from (transitively: the one made by [`KvStore::add_sequence`])
    /// and every fork of it, a shared block counted once, plus Quest page
    /// bounds, over every write since that root was added. For a request
    /// prefilled into one sequence and forked into its W samples, this is
    /// the peak of that request alone, whatever else shares the store; it
    /// equals [`KvStore::peak_resident`] of a store that held only it.
    /// Monotonic while the group lives; forgotten with its last release.
    ///
    /// # Panics
    /// If `seq` was released.
    pub fn group_peak(&self, seq: SeqId) -> u64 {
        self.ledger
            .group_peak(seq)
            .unwrap_or_else(|e| panic!("{e}"))
    }

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
