//! [`KvStore::copy_sequence`]: a new sequence holding its own physical copy
//! of another's entries — what a second prefill of the same prompt would
//! have written, without running it.
//!
//! Unlike [`KvStore::fork`] nothing is shared: every block of the source is
//! copied into a fresh block, so the copy's entries count in the store's
//! resident entries and its decode reads its own memory, exactly as a
//! sequence prefilled on its own. The copy starts its own group (its peak
//! is its own, as after `add_sequence`), continues from the source's
//! position, and carries the source's per-row policy state (TOVA/H2O/window
//! scores, DMS flags and ring, Quest page bounds), so it decodes as the
//! source would. Its read counters start at zero: it read nothing.
//! `bench throughput` uses it to fill memory with long sequences at the cost
//! of one prefill.
//!
//! [`KvStore::copy_prefilled`] is the same copy standing for a prefill of
//! the same prompt: it also carries the source's prefill reads and its
//! group's peak, so that what the copy's samples report is what they would
//! have reported after prefilling the prompt themselves (the continuous
//! scheduler's shared prompts).

use super::ledger::{Row, RowId, SlotCopy};
use super::store::{KvStore, SeqId};

impl KvStore {
    /// A new sequence with its own copy of every entry of `source` (block
    /// for block, slot order, positions and policy state kept).
    ///
    /// # Panics
    /// If `source` was released.
    pub fn copy_sequence(&mut self, source: SeqId) -> SeqId {
        self.copy(source, false)
    }

    /// [`copy_sequence`](Self::copy_sequence) of a sequence that has just
    /// prefilled its prompt and nothing else (no decode step, no fork
    /// sharing its group), as if the copy had prefilled the prompt itself:
    /// each row also keeps the source's prefill reads, and the copy's group
    /// starts with the peak of the source's (a prefill may peak above what
    /// it keeps, as TOVA and H2O do while they evict).
    ///
    /// # Panics
    /// If `source` was released.
    pub fn copy_prefilled(&mut self, source: SeqId) -> SeqId {
        self.copy(source, true)
    }

    fn copy(&mut self, source: SeqId, prefilled: bool) -> SeqId {
        let ledger = &mut self.ledger;
        let src = ledger.seq(source).unwrap_or_else(|e| panic!("{e}")).clone();
        let kv_heads = ledger.shape().kv_heads;
        let bs = ledger.block_size();
        let copy = ledger.add_sequence();
        let mut copies = Vec::new();
        for (r, from) in src.rows.iter().enumerate() {
            let id = RowId {
                seq: copy,
                layer: r / kv_heads,
                head: r % kv_heads,
            };
            let (pool, book, index) = ledger.parts(id).expect("the copy was just added");
            let blocks = from
                .blocks
                .iter()
                .enumerate()
                .map(|(i, &old)| {
                    let live = (from.len as usize - i * bs).min(bs) as u32;
                    let new = pool.alloc();
                    pool.copy_positions(old, new, live);
                    pool.grow_fill(new, live);
                    copies.push(SlotCopy {
                        layer: id.layer,
                        src: old * bs as u32,
                        dst: new * bs as u32,
                        n: live,
                    });
                    new
                })
                .collect();
            book.rows[index] = Row {
                blocks,
                len: from.len,
                seen: from.seen,
                last_pos: from.last_pos,
                decode_reads: 0,
                prefill_reads: if prefilled { from.prefill_reads } else { 0 },
            };
        }
        let book = ledger
            .parts(RowId {
                seq: copy,
                layer: 0,
                head: 0,
            })
            .expect("the copy was just added")
            .1;
        book.positions = src.positions;
        book.resident = src.resident;
        book.peak_resident = src.peak_resident;
        ledger.touch(copy);
        if prefilled {
            ledger.inherit_group_peak(copy, source);
        }
        ledger.policy.fork(source, &[copy]);
        self.apply_copies(&copies);
        copy
    }
}
