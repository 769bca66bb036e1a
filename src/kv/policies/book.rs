//! Per-sequence policy state, beside the ledger: one [`RowState`] per
//! (layer, KV head) row, cloned on fork and dropped on release, so W samples
//! of one prompt each continue the prompt's policy state.

use super::super::{KvShape, ResolvedPolicy, SeqId};
use super::dms::DmsRow;
use super::quest::QuestRow;
use super::slots::Slots;

/// One row's policy state, indexed by the row's slots.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RowState {
    /// DMS: eviction flags and the ring of the last window + 1 positions.
    Dms(DmsRow),
    /// Window, TOVA and H2O: one score per slot (see each policy's file).
    Scored(Slots<f32>),
    /// Quest: per-page key bounds.
    Quest(QuestRow),
}

/// The store's policy and every live sequence's state.
#[derive(Debug, Clone)]
pub(crate) struct PolicyBook {
    pub(crate) policy: ResolvedPolicy,
    rows: usize,
    /// By sequence id; `None` until first used, and after release.
    seqs: Vec<Option<Vec<RowState>>>,
}

impl PolicyBook {
    pub(crate) fn new(policy: ResolvedPolicy, shape: KvShape) -> Self {
        Self {
            policy,
            rows: shape.layers * shape.kv_heads,
            seqs: Vec::new(),
        }
    }

    fn fresh(&self) -> Vec<RowState> {
        let one = match &self.policy {
            ResolvedPolicy::Dense => return Vec::new(),
            ResolvedPolicy::Dms(p) => RowState::Dms(DmsRow::new(*p)),
            ResolvedPolicy::Window { .. }
            | ResolvedPolicy::Tova { .. }
            | ResolvedPolicy::H2o { .. } => RowState::Scored(Slots::default()),
            ResolvedPolicy::Quest { .. } => RowState::Quest(QuestRow::default()),
        };
        vec![one; self.rows]
    }

    fn slot(&mut self, seq: SeqId) -> &mut Option<Vec<RowState>> {
        let i = seq.0 as usize;
        if self.seqs.len() <= i {
            self.seqs.resize(i + 1, None);
        }
        &mut self.seqs[i]
    }

    /// Children continue from the parent's state.
    pub(crate) fn fork(&mut self, parent: SeqId, children: &[SeqId]) {
        if self.policy.is_dense() {
            return;
        }
        let state = self.slot(parent).clone();
        for &c in children {
            *self.slot(c) = state.clone();
        }
    }

    pub(crate) fn release(&mut self, seq: SeqId) {
        if let Some(s) = self.seqs.get_mut(seq.0 as usize) {
            *s = None;
        }
    }

    /// The sequence's rows (fresh ones on first use), taken out so the
    /// caller can drive the store while updating them; give them back with
    /// [`PolicyBook::put`].
    pub(crate) fn take(&mut self, seq: SeqId) -> Vec<RowState> {
        match self.slot(seq).take() {
            Some(rows) => rows,
            None => self.fresh(),
        }
    }

    pub(crate) fn put(&mut self, seq: SeqId, rows: Vec<RowState>) {
        *self.slot(seq) = Some(rows);
    }
}
