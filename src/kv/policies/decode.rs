//! The policy-aware decode step of one layer for a batch of sequences:
//! place each row's new entry (DMS ring slot reuse, the window's oldest
//! entry, or appended), attend, then let scored policies rescore and evict
//! (TOVA, H2O) or read only the selected pages (Quest).

use super::super::cpu_kernel::{self, PagedKv, RowRef};
use super::super::{
    DecodeStep, KvError, KvShape, KvStore, QuestGranularity, ResolvedPolicy, RowId, SeqId,
    SlotChoice,
};
use super::book::RowState;
use super::prefill::scorer;
use super::quest::page_budget;
use super::scorer::{Rule, Scorer};
use super::slots::{evict_to, lowest};
use super::tova;

impl KvStore {
    /// One decode step of one layer under the store's policy: write each
    /// row's new entry where the policy puts it, attend, evict what the
    /// policy drops. `step.slots` must be empty (the policy places).
    ///
    /// # Shapes
    /// See [`DecodeStep`]; `decisions`: `[batch, kv_heads]`, each new
    /// token's own DMS decision (empty unless the policy is DMS); `out`:
    /// `[batch, n_heads, head_dim]`.
    ///
    /// # Errors
    /// As [`KvStore::decode_step`], and on missing decisions or given
    /// slots.
    pub fn policy_decode(
        &mut self,
        step: DecodeStep<'_>,
        decisions: &[bool],
        out: &mut [f32],
    ) -> Result<(), KvError> {
        if !step.slots.is_empty() {
            return Err(KvError::Policy(
                "policy_decode places entries itself; pass no slots".into(),
            ));
        }
        let policy = self.ledger.policy.policy.clone();
        if policy.is_dense() {
            return self.decode_step(step, out);
        }
        self.check_policy_decode(step.layer, step.seqs, decisions)?;
        let mut states = self.take_states(step.seqs);
        let result = match &policy {
            ResolvedPolicy::Dense => unreachable!("dense returned above"),
            ResolvedPolicy::Dms(_) | ResolvedPolicy::Window { .. } => self.decode_placed(
                step.layer,
                step.seqs,
                &mut states,
                decisions,
                scorer(&policy),
                |store, slots| store.decode_step(DecodeStep { slots, ..step }, out),
            ),
            ResolvedPolicy::Tova { .. } | ResolvedPolicy::H2o { .. } => {
                let s = scorer(&policy).expect("tova and h2o are scored");
                self.decode_weighted(step, &mut states, s, out)
            }
            ResolvedPolicy::Quest { page_size, .. } => {
                self.decode_quest(step, &mut states, *page_size, out)
            }
        };
        self.put_states(step.seqs, states);
        result
    }

    /// [`KvStore::policy_decode`] for a payload that writes and attends
    /// elsewhere (a device): the store places each row's new entry under
    /// DMS or window and records it; `attend` writes the entries at the
    /// chosen slots (`[batch, kv_heads]`) and attends. Scored and paged
    /// policies need the attention on the host and are refused.
    ///
    /// # Errors
    /// As [`KvStore::policy_decode`], [`KvError::Policy`] for another
    /// policy, and what `attend` returns.
    #[cfg_attr(
        not(any(feature = "cuda", feature = "wgpu")),
        expect(dead_code, reason = "called by the cubecl backends")
    )]
    pub(crate) fn policy_decode_placed(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        decisions: &[bool],
        attend: impl FnOnce(&mut KvStore, &[SlotChoice]) -> Result<(), KvError>,
    ) -> Result<(), KvError> {
        let policy = self.ledger.policy.policy.clone();
        if !matches!(policy, ResolvedPolicy::Dms(_)) {
            return Err(KvError::Policy(format!(
                "`{}` attends on the host; a device store runs dense and dms",
                policy.method()
            )));
        }
        self.check_policy_decode(layer, seqs, decisions)?;
        let mut states = self.take_states(seqs);
        let result =
            self.decode_placed(layer, seqs, &mut states, decisions, scorer(&policy), attend);
        self.put_states(seqs, states);
        result
    }

    /// The DMS decisions of the tokens a device decode step just wrote into
    /// `layer` (each at `position(seq) − 1`: call after the step advanced the
    /// sequences), placed by [`KvStore::policy_decode_placed`] with
    /// placeholder decisions so the step could read every layer's decisions
    /// back once, with its logits. A no-op under another policy.
    ///
    /// # Shapes
    /// `decisions`: `[seqs.len(), kv_heads]`, row-major.
    ///
    /// # Errors
    /// [`KvError::Decisions`] on a misshapen `decisions`, and an unknown
    /// sequence.
    pub(crate) fn decide_decoded(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        decisions: &[bool],
    ) -> Result<(), KvError> {
        if !matches!(self.ledger.policy.policy, ResolvedPolicy::Dms(_)) {
            return Ok(());
        }
        self.check_policy_decode(layer, seqs, decisions)?;
        let kv_heads = self.shape().kv_heads;
        for (b, &seq) in seqs.iter().enumerate() {
            let t = (self.position(seq) as u32).saturating_sub(1);
            let mut rows = self.ledger.policy.take(seq);
            for h in 0..kv_heads {
                if let Some(RowState::Dms(dms)) = rows.get_mut(layer * kv_heads + h) {
                    dms.decide(t, decisions[b * kv_heads + h]);
                }
            }
            self.ledger.policy.put(seq, rows);
        }
        Ok(())
    }

    /// Decisions present where the policy needs them, rows known, no
    /// sequence twice.
    fn check_policy_decode(
        &self,
        layer: usize,
        seqs: &[SeqId],
        decisions: &[bool],
    ) -> Result<(), KvError> {
        let kv_heads = self.shape().kv_heads;
        let policy = &self.ledger.policy.policy;
        if policy.needs_decisions() && decisions.len() != seqs.len() * kv_heads {
            return Err(KvError::Decisions {
                layer,
                expected: seqs.len() * kv_heads,
                got: decisions.len(),
            });
        }
        for (b, &seq) in seqs.iter().enumerate() {
            if seqs[..b].contains(&seq) {
                return Err(KvError::DuplicateSequence(seq));
            }
            self.ledger.row(RowId {
                seq,
                layer,
                head: 0,
            })?;
        }
        Ok(())
    }

    fn take_states(&mut self, seqs: &[SeqId]) -> Vec<Vec<RowState>> {
        seqs.iter().map(|&s| self.ledger.policy.take(s)).collect()
    }

    fn put_states(&mut self, seqs: &[SeqId], states: Vec<Vec<RowState>>) {
        for (&s, rows) in seqs.iter().zip(states) {
            self.ledger.policy.put(s, rows);
        }
    }

    /// DMS and window: choose each row's slot, let `attend` write and
    /// attend, record.
    fn decode_placed(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        states: &mut [Vec<RowState>],
        decisions: &[bool],
        window: Option<Scorer>,
        attend: impl FnOnce(&mut KvStore, &[SlotChoice]) -> Result<(), KvError>,
    ) -> Result<(), KvError> {
        let kv_heads = self.shape().kv_heads;
        let mut choices = Vec::with_capacity(seqs.len() * kv_heads);
        for (b, &seq) in seqs.iter().enumerate() {
            let t = self.position(seq) as u32;
            for h in 0..kv_heads {
                let id = row_id(seq, layer, h);
                let choice = match (&mut states[b][layer * kv_heads + h], window) {
                    (RowState::Dms(dms), _) => dms.place(t),
                    (RowState::Scored(slots), Some(s)) => {
                        // Full: overwrite the oldest unprotected entry.
                        let keep = s.keep(t + 1);
                        if slots.len() + 1 > keep {
                            evict_to(self, id, slots, s.protected(t + 1), keep.saturating_sub(1))?;
                        }
                        match lowest(&slots.val, &slots.pos, s.protected(t + 1), 1)[..] {
                            [victim] if slots.len() + 1 > keep => SlotChoice::Reuse(victim),
                            _ => SlotChoice::Append,
                        }
                    }
                    _ => return Err(state_mismatch()),
                };
                choices.push(choice);
            }
        }
        let lens: Vec<usize> = seqs
            .iter()
            .flat_map(|&seq| (0..kv_heads).map(move |h| (seq, h)))
            .map(|(seq, h)| self.row_len(row_id(seq, layer, h)))
            .collect::<Result<_, _>>()?;
        attend(self, &choices)?;
        for (b, &seq) in seqs.iter().enumerate() {
            let t = self.position(seq) as u32;
            for h in 0..kv_heads {
                let i = b * kv_heads + h;
                let slot = match choices[i] {
                    SlotChoice::Reuse(s) => s,
                    SlotChoice::Append => lens[i],
                };
                match (&mut states[b][layer * kv_heads + h], window) {
                    (RowState::Dms(dms), _) => dms.record(t, slot, decisions[i]),
                    (RowState::Scored(slots), Some(s)) => {
                        slots.put(slot, t, s.score(0.0, t, 0.0));
                        let id = row_id(seq, layer, h);
                        evict_to(self, id, slots, s.protected(t + 1), s.keep(t + 1))?;
                    }
                    _ => return Err(state_mismatch()),
                }
            }
        }
        Ok(())
    }

    /// TOVA and H2O: append, attend with weights, rescore, evict. Layer-wide
    /// TOVA scores every row of the layer by the weights averaged over all
    /// its KV heads (hence over all query heads), so the rows, which hold
    /// the same positions in the same slots, evict the same entries.
    fn decode_weighted(
        &mut self,
        step: DecodeStep<'_>,
        states: &mut [Vec<RowState>],
        s: Scorer,
        out: &mut [f32],
    ) -> Result<(), KvError> {
        debug_assert!(matches!(s.rule, Rule::Replace | Rule::Accumulate));
        let kv_heads = self.shape().kv_heads;
        let layer_wide = tova::layer_wide(&self.ledger.policy.policy);
        let mut weights = Vec::new();
        self.decode_step_weights(step, out, &mut weights)?;
        let mut at = 0;
        for (b, &seq) in step.seqs.iter().enumerate() {
            let t = self.position(seq) as u32;
            let rows = &mut states[b][step.layer * kv_heads..(step.layer + 1) * kv_heads];
            let mut spans = Vec::with_capacity(kv_heads);
            for row in rows.iter_mut() {
                let RowState::Scored(slots) = row else {
                    return Err(state_mismatch());
                };
                slots.push(t, 0.0);
                spans.push(at..at + slots.len());
                at += slots.len();
            }
            let mean = if layer_wide {
                Some(tova::layer_mean(rows, &weights, &spans)?)
            } else {
                None
            };
            for (h, row) in rows.iter_mut().enumerate() {
                let RowState::Scored(slots) = row else {
                    return Err(state_mismatch());
                };
                let w = mean.as_deref().unwrap_or(&weights[spans[h].clone()]);
                for (i, &w) in w.iter().enumerate() {
                    slots.val[i] = s.score(slots.val[i], slots.pos[i], w);
                }
                let id = row_id(seq, step.layer, h);
                evict_to(self, id, slots, s.protected(t + 1), s.keep(t + 1))?;
            }
        }
        Ok(())
    }

    /// Quest: append, fold the key into its page's bounds, attend over the
    /// selected pages; reads = the entries of the pages any query head of
    /// the KV head selected + the pages whose bounds were read. Layers below
    /// `dense_layers` decode densely.
    fn decode_quest(
        &mut self,
        step: DecodeStep<'_>,
        states: &mut [Vec<RowState>],
        page_size: usize,
        out: &mut [f32],
    ) -> Result<(), KvError> {
        let KvShape {
            kv_heads,
            head_dim: d,
            ..
        } = self.shape();
        let ResolvedPolicy::Quest {
            budget,
            granularity,
            dense_layers,
            ..
        } = self.ledger.policy.policy
        else {
            return Err(state_mismatch());
        };
        if self.block_size() != page_size {
            return Err(KvError::Policy(format!(
                "quest pages of {page_size} need a store with {page_size}-slot blocks, not {}",
                self.block_size()
            )));
        }
        if step.layer < dense_layers {
            return self.decode_step(step, out);
        }
        let group = step.q.len() / (step.seqs.len() * kv_heads * d).max(1);
        // Query heads choosing pages together: the KV head's G, or one.
        let chooser = match granularity {
            QuestGranularity::KvHead => group,
            QuestGranularity::QueryHead => 1,
        };
        self.decode_write(&step)?;
        // One (blocks, len) per chooser, and the reads of each KV head.
        let mut plans: Vec<(Vec<u32>, usize)> = Vec::with_capacity(step.q.len() / d / chooser);
        let mut reads: Vec<u64> = Vec::with_capacity(step.seqs.len() * kv_heads);
        for (b, &seq) in step.seqs.iter().enumerate() {
            let t = self.position(seq);
            for h in 0..kv_heads {
                let i = b * kv_heads + h;
                let row = self.ledger.row(row_id(seq, step.layer, h))?;
                let len = row.len as usize;
                let fill = len - (len - 1) / page_size * page_size;
                let k_pages = page_budget(budget.allowed(t + 1), fill, page_size);
                let RowState::Quest(pages) = &mut states[b][step.layer * kv_heads + h] else {
                    return Err(state_mismatch());
                };
                pages.add(len - 1, &step.k[i * d..(i + 1) * d], page_size);
                let n_pages = len.div_ceil(page_size);
                let q = &step.q[i * group * d..(i + 1) * group * d];
                let mut read = vec![false; n_pages];
                let mut any_selection = false;
                for qc in q.chunks_exact(chooser * d) {
                    match pages.select(qc, d, n_pages, k_pages) {
                        None => {
                            read.fill(true);
                            plans.push((row.blocks.clone(), len));
                        }
                        Some(chosen) => {
                            any_selection = true;
                            let n = (chosen.len() - 1) * page_size + fill;
                            for &p in &chosen {
                                read[p] = true;
                            }
                            plans.push((chosen.iter().map(|&p| row.blocks[p]).collect(), n));
                        }
                    }
                }
                let pages_read = read.iter().filter(|&&r| r).count();
                let entries = (pages_read - 1) * page_size + fill;
                // The bounds of every page but the current one were read.
                let bounds = if any_selection { n_pages - 1 } else { 0 };
                reads.push((entries + bounds) as u64);
            }
        }
        {
            let host = self.host()?;
            let rows: Vec<RowRef> = plans
                .iter()
                .map(|(blocks, len)| RowRef { blocks, len: *len })
                .collect();
            let pool = &host.layers[step.layer];
            let kv = PagedKv {
                keys: &pool.keys,
                values: &pool.values,
                block_size: page_size,
                head_dim: d,
            };
            cpu_kernel::decode_attention(kv, &rows, step.q, chooser, step.scale, out);
        }
        for (i, &n) in reads.iter().enumerate() {
            let id = row_id(step.seqs[i / kv_heads], step.layer, i % kv_heads);
            self.ledger.count_decode_reads(id, n)?;
        }
        Ok(())
    }
}

fn row_id(seq: SeqId, layer: usize, head: usize) -> RowId {
    RowId { seq, layer, head }
}

fn state_mismatch() -> KvError {
    KvError::Invariant("policy state does not match the store's policy".into())
}
