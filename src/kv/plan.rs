//! Planning a batch of writes on the ledger: the global slot of every new
//! entry and the copies (copy-on-write) that must happen before. Host and
//! device payloads both apply the same plans; a plan is validated in full
//! before the ledger changes, so a refused batch leaves the store untouched.

use super::ledger::RowId;
use super::{KvError, KvStore, SeqId, SlotChoice, SlotCopy};

/// Where a batch of new entries of one layer goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct WritePlan {
    pub(crate) layer: usize,
    /// Global slot of each new entry, in the order of the input tensor.
    pub(crate) slots: Vec<u32>,
    /// Payload copies to apply first, in order.
    pub(crate) copies: Vec<SlotCopy>,
}

impl KvStore {
    /// Prefill of `t` tokens of one layer: entries ordered `[kv_heads, t]`
    /// at positions `position(seq)..`; counts the causal prefill reads.
    pub(crate) fn plan_prefill(
        &mut self,
        seq: SeqId,
        layer: usize,
        t: usize,
    ) -> Result<WritePlan, KvError> {
        let kv_heads = self.shape().kv_heads;
        let pos0 = self.ledger.seq(seq)?.positions as u32;
        if t > 0 {
            for head in 0..kv_heads {
                self.ledger
                    .check_write(RowId { seq, layer, head }, pos0, None)?;
            }
        }
        let mut plan = WritePlan {
            layer,
            slots: Vec::with_capacity(kv_heads * t),
            copies: Vec::new(),
        };
        for head in 0..kv_heads {
            let row = RowId { seq, layer, head };
            let before = u64::from(self.ledger.row(row)?.len);
            for i in 0..t {
                let slot = self.ledger.append(row, pos0 + i as u32, &mut plan.copies)?;
                plan.slots.push(slot);
            }
            let t = t as u64;
            self.ledger
                .count_prefill_reads(row, t * before + t * (t + 1) / 2)?;
        }
        Ok(plan)
    }

    /// One decode token per sequence of one layer: entries ordered `[batch,
    /// kv_heads]` at `position(seq)`, placed per `choices` (`[batch,
    /// kv_heads]`, or empty to append everywhere).
    pub(crate) fn plan_decode(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        choices: &[SlotChoice],
    ) -> Result<WritePlan, KvError> {
        let kv_heads = self.shape().kv_heads;
        let choice = |i: usize| choices.get(i).copied().unwrap_or_default();
        for (b, &seq) in seqs.iter().enumerate() {
            if seqs[..b].contains(&seq) {
                return Err(KvError::DuplicateSequence(seq));
            }
            let pos = self.ledger.seq(seq)?.positions as u32;
            for head in 0..kv_heads {
                let slot = match choice(b * kv_heads + head) {
                    SlotChoice::Append => None,
                    SlotChoice::Reuse(s) => Some(s),
                };
                self.ledger
                    .check_write(RowId { seq, layer, head }, pos, slot)?;
            }
        }
        let mut plan = WritePlan {
            layer,
            slots: Vec::with_capacity(seqs.len() * kv_heads),
            copies: Vec::new(),
        };
        for (b, &seq) in seqs.iter().enumerate() {
            let pos = self.ledger.seq(seq)?.positions as u32;
            for head in 0..kv_heads {
                let row = RowId { seq, layer, head };
                let slot = match choice(b * kv_heads + head) {
                    SlotChoice::Append => self.ledger.append(row, pos, &mut plan.copies)?,
                    SlotChoice::Reuse(s) => self.ledger.overwrite(row, s, pos, &mut plan.copies)?,
                };
                plan.slots.push(slot);
            }
        }
        Ok(plan)
    }

    /// Block tables and lengths of the rows `[batch, kv_heads]` of `layer`.
    pub(crate) fn row_tables(
        &self,
        layer: usize,
        seqs: &[SeqId],
    ) -> Result<Vec<(&[u32], usize)>, KvError> {
        self.ledger.row_tables(layer, seqs)
    }

    /// Count one decode read per entry of each row `[batch, kv_heads]` of
    /// `layer` (what an attention over them reads).
    pub(crate) fn count_attend_reads(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
    ) -> Result<(), KvError> {
        let kv_heads = self.shape().kv_heads;
        for &seq in seqs {
            for head in 0..kv_heads {
                let row = RowId { seq, layer, head };
                let n = u64::from(self.ledger.row(row)?.len);
                self.ledger.count_decode_reads(row, n)?;
            }
        }
        Ok(())
    }
}
