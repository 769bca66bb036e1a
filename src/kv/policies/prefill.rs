//! The policy-aware prefill: a chunk of prompt tokens of one layer attends
//! over the row's kept entries and the chunk under the policy's mask (the
//! causal mask; DMS's closed-form `visible_until`), then only what the
//! policy keeps is written. Chunking is exact: a chunk continues from the
//! kept entries and the pending DMS window exactly as decode would.

use super::super::prefill_kernel::{self, PrefillKeys, PrefillQueries, Weights};
use super::super::{KvError, KvShape, KvStore, ResolvedPolicy, RowId, SeqId};
use super::book::RowState;
use super::scorer::Scorer;
use super::slots::{Slots, drop_slots, lowest};
use super::{h2o, tova, window};

/// One layer's prefill of a chunk of `t` tokens of one sequence, at
/// positions `position(seq)..`.
///
/// # Shapes
/// `q`: `[t, n_heads, head_dim]`; `k`, `v`: `[kv_heads, t, head_dim]`
/// (post-RoPE); `decisions`: `[kv_heads, t]`, each token's own DMS eviction
/// decision (`logit > 0`), empty unless the policy is DMS.
#[derive(Debug, Clone, Copy)]
pub struct PrefillStep<'a> {
    pub layer: usize,
    pub seq: SeqId,
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub scale: f32,
    pub decisions: &'a [bool],
}

/// The keys one row's chunk attends over: kept entries (slot order), then
/// the chunk.
struct RowKeys {
    keys: Vec<f32>,
    values: Vec<f32>,
    pos: Vec<u32>,
    until: Vec<u32>,
    /// Entries held before the chunk.
    held: usize,
    /// DMS flags of the chunk's tokens.
    flags: Vec<bool>,
}

/// The scorer of a scored policy.
pub(crate) fn scorer(policy: &ResolvedPolicy) -> Option<Scorer> {
    match *policy {
        ResolvedPolicy::Window { sink, budget } => Some(window::scorer(sink, budget)),
        ResolvedPolicy::Tova { budget } => Some(tova::scorer(budget)),
        ResolvedPolicy::H2o { recent, budget } => Some(h2o::scorer(recent, budget)),
        ResolvedPolicy::Dense | ResolvedPolicy::Dms(_) | ResolvedPolicy::Quest { .. } => None,
    }
}

impl KvStore {
    /// Prefill a chunk of one layer under the store's policy: attend and
    /// write what the policy keeps. Chunks may follow each other and decode
    /// steps (call [`KvStore::advance`] after each forward pass, as usual).
    /// Prefill reads are counted as the (query, key) pairs the mask lets
    /// through.
    ///
    /// # Shapes
    /// See [`PrefillStep`]; `out`: `[t, n_heads, head_dim]`.
    ///
    /// # Errors
    /// Misshapen inputs, missing DMS decisions, an unknown sequence or row,
    /// a device payload.
    pub fn policy_prefill(
        &mut self,
        step: PrefillStep<'_>,
        out: &mut [f32],
    ) -> Result<(), KvError> {
        let KvShape {
            kv_heads,
            head_dim: d,
            ..
        } = self.shape();
        let t = step.k.len() / (kv_heads * d).max(1);
        let width = |got: usize| KvError::EntryWidth { got, head_dim: d };
        if t == 0 || step.k.len() != kv_heads * t * d || step.v.len() != step.k.len() {
            return Err(width(step.k.len()));
        }
        if !step.q.len().is_multiple_of(t * kv_heads * d) || out.len() != step.q.len() {
            return Err(width(step.q.len()));
        }
        let needs = self.ledger.policy.policy.needs_decisions();
        if needs && step.decisions.len() != kv_heads * t {
            return Err(KvError::Decisions {
                layer: step.layer,
                expected: kv_heads * t,
                got: step.decisions.len(),
            });
        }
        self.host()?;
        self.ledger.row(RowId {
            seq: step.seq,
            layer: step.layer,
            head: 0,
        })?;
        let mut rows = self.ledger.policy.take(step.seq);
        let result = self.prefill_rows(&step, t, &mut rows, out);
        self.ledger.policy.put(step.seq, rows);
        result
    }

    fn prefill_rows(
        &mut self,
        step: &PrefillStep<'_>,
        t: usize,
        rows: &mut [RowState],
        out: &mut [f32],
    ) -> Result<(), KvError> {
        let KvShape {
            kv_heads,
            head_dim: d,
            ..
        } = self.shape();
        let policy = self.ledger.policy.policy.clone();
        let scorer = scorer(&policy);
        let p0 = self.position(step.seq) as u32;
        let seen = p0 + t as u32;
        let id = |head| RowId {
            seq: step.seq,
            layer: step.layer,
            head,
        };
        let mut gathered = Vec::with_capacity(kv_heads);
        for h in 0..kv_heads {
            let (mut keys, mut values) = self.read_row(id(h))?;
            let mut pos = self.row_positions(id(h))?;
            let held = pos.len();
            let mut until = vec![u32::MAX; held + t];
            let mut flags = Vec::new();
            if let Some(RowState::Dms(dms)) = rows.get_mut(step.layer * kv_heads + h) {
                let dec = &step.decisions[h * t..(h + 1) * t];
                if dms.params.shifted {
                    dms.mark_previous(p0, dec[0]);
                }
                debug_assert_eq!(dms.slots.pos, pos, "dms state follows the row");
                for s in 0..held {
                    until[s] = dms.until(pos[s], dms.slots.val[s]);
                }
                flags = dms.chunk_flags(dec);
                for (j, &f) in flags.iter().enumerate() {
                    until[held + j] = dms.until(p0 + j as u32, f);
                }
            }
            keys.extend_from_slice(&step.k[h * t * d..(h + 1) * t * d]);
            values.extend_from_slice(&step.v[h * t * d..(h + 1) * t * d]);
            pos.extend(p0..seen);
            gathered.push(RowKeys {
                keys,
                values,
                pos,
                until,
                held,
                flags,
            });
        }
        let refs: Vec<PrefillKeys> = gathered
            .iter()
            .map(|g| PrefillKeys {
                keys: &g.keys,
                values: &g.values,
                pos: &g.pos,
                until: &g.until,
            })
            .collect();
        let qs = PrefillQueries {
            q: step.q,
            first_pos: p0,
            group: step.q.len() / (t * kv_heads * d),
            head_dim: d,
            scale: step.scale,
        };
        let want = scorer.map_or(Weights::None, |s| s.weights());
        let results = prefill_kernel::prefill_attention(&refs, qs, want, out);
        for (h, (g, res)) in gathered.iter().zip(&results).enumerate() {
            self.ledger.count_prefill_reads(id(h), res.reads)?;
            let chunk = Chunk {
                row: g,
                k: &step.k[h * t * d..(h + 1) * t * d],
                v: &step.v[h * t * d..(h + 1) * t * d],
                d,
            };
            match (rows.get_mut(step.layer * kv_heads + h), &policy) {
                (Some(RowState::Dms(dms)), _) => {
                    let keep: Vec<bool> = g.until.iter().map(|&u| u > seen).collect();
                    chunk.commit(self, id(h), &mut dms.slots, &keep, &g.flags)?;
                    dms.rebuild_ring(seen);
                }
                (Some(RowState::Scored(slots)), _) => {
                    let s = scorer.expect("scored rows belong to scored policies");
                    let n = g.pos.len();
                    let w = |i: usize| res.weights.get(i).copied().unwrap_or(0.0);
                    let score: Vec<f32> = (0..n)
                        .map(|i| {
                            let old = if i < g.held { slots.val[i] } else { 0.0 };
                            s.score(old, g.pos[i], w(i))
                        })
                        .collect();
                    let excess = n.saturating_sub(s.keep(seen));
                    let mut keep = vec![true; n];
                    for i in lowest(&score, &g.pos, s.protected(seen), excess) {
                        keep[i] = false;
                    }
                    slots.val.copy_from_slice(&score[..g.held]);
                    chunk.commit(self, id(h), slots, &keep, &score[g.held..])?;
                }
                (Some(RowState::Quest(pages)), ResolvedPolicy::Quest { page_size, .. }) => {
                    let keep = vec![true; g.pos.len()];
                    chunk.commit(self, id(h), &mut Slots::default(), &keep, &vec![(); t])?;
                    for j in 0..t {
                        pages.add(g.held + j, &chunk.k[j * d..(j + 1) * d], *page_size);
                    }
                }
                _ => {
                    let keep = vec![true; g.pos.len()];
                    chunk.commit(self, id(h), &mut Slots::default(), &keep, &vec![(); t])?;
                }
            }
        }
        Ok(())
    }
}

/// One row's chunk, ready to be written.
struct Chunk<'a> {
    row: &'a RowKeys,
    /// `[t, d]`
    k: &'a [f32],
    v: &'a [f32],
    d: usize,
}

impl Chunk<'_> {
    /// Drop the held entries `keep` refuses (the shared mechanism), then
    /// append the chunk's kept tokens with their policy values.
    ///
    /// # Shapes
    /// `keep`: `[held + t]`; `vals`: `[t]`.
    fn commit<T: Copy>(
        &self,
        store: &mut KvStore,
        id: RowId,
        slots: &mut Slots<T>,
        keep: &[bool],
        vals: &[T],
    ) -> Result<(), KvError> {
        let (held, d) = (self.row.held, self.d);
        let tracked = slots.len() == held;
        if tracked {
            let drops = (0..held).filter(|&s| !keep[s]).collect();
            drop_slots(store, id, slots, drops)?;
        }
        for (j, &val) in vals.iter().enumerate() {
            if keep[held + j] {
                let pos = self.row.pos[held + j];
                store.append(
                    id,
                    &self.k[j * d..(j + 1) * d],
                    &self.v[j * d..(j + 1) * d],
                    pos,
                )?;
                if tracked {
                    slots.push(pos, val);
                }
            }
        }
        Ok(())
    }
}
