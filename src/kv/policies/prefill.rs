//! The policy-aware prefill: a chunk of prompt tokens of one layer attends
//! over the row's kept entries and the chunk under the policy's mask (the
//! causal mask; DMS's closed-form `visible_until`), then only what the
//! policy keeps is written. Chunking is exact: a chunk continues from the
//! kept entries and the pending DMS window exactly as decode would.

use super::super::plan::WritePlan;
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
        ResolvedPolicy::Tova { budget, .. } => Some(tova::scorer(budget)),
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
        let mut results = prefill_kernel::prefill_attention(&refs, qs, want, out);
        if tova::layer_wide(&policy) {
            // One index set for the layer: every row scores by the mean of
            // the rows' last-query weights (over all query heads).
            let pos: Vec<&[u32]> = gathered.iter().map(|g| g.pos.as_slice()).collect();
            let w: Vec<&[f32]> = results.iter().map(|r| r.weights.as_slice()).collect();
            let mean = tova::mean_over_rows(&pos, &w)?;
            for r in &mut results {
                r.weights.clone_from(&mean);
            }
        }
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
                    if policy.page_bounds(step.layer) {
                        for j in 0..t {
                            pages.add(g.held + j, &chunk.k[j * d..(j + 1) * d], *page_size);
                        }
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

/// A fresh sequence's DMS prefill of one layer, planned for a payload that
/// attends elsewhere (a device): the mask as each key's `until`, the keys
/// the next query still sees, and where they go.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(any(feature = "cuda", feature = "wgpu")),
    allow(dead_code, reason = "built for the cubecl backends and tests")
)]
pub(crate) struct DmsPrefill {
    /// `[kv_heads, t]`: the first query position that no longer sees each
    /// token (`u32::MAX`: kept).
    pub(crate) until: Vec<u32>,
    /// Indices into the chunk's `[kv_heads, t]` entries of those written, in
    /// the order of `plan.slots`.
    pub(crate) kept: Vec<u32>,
    pub(crate) plan: WritePlan,
}

impl KvStore {
    /// Plan the DMS prefill of `t` tokens of one layer of a sequence that
    /// holds nothing yet (position 0): every key's visibility, the entries
    /// kept (`until > t`, what [`KvStore::policy_prefill`] writes), their
    /// slots, the policy state and the reads (the (query, key) pairs the
    /// mask lets through) — everything but the attention and the payload
    /// writes, which the caller does.
    ///
    /// # Shapes
    /// `decisions`: `[kv_heads, t]`, each token's own decision.
    ///
    /// # Errors
    /// Another policy, missing decisions, a sequence past position 0, an
    /// unknown sequence or row.
    #[cfg_attr(
        not(any(feature = "cuda", feature = "wgpu")),
        allow(dead_code, reason = "called by the cubecl backends and tests")
    )]
    pub(crate) fn dms_prefill_plan(
        &mut self,
        seq: SeqId,
        layer: usize,
        t: usize,
        decisions: &[bool],
    ) -> Result<DmsPrefill, KvError> {
        let kv_heads = self.shape().kv_heads;
        if !matches!(self.ledger.policy.policy, ResolvedPolicy::Dms(_)) {
            return Err(KvError::Policy("dms_prefill_plan needs a DMS store".into()));
        }
        if decisions.len() != kv_heads * t {
            return Err(KvError::Decisions {
                layer,
                expected: kv_heads * t,
                got: decisions.len(),
            });
        }
        if self.position(seq) != 0 {
            return Err(KvError::Policy(
                "a device DMS prefill starts a sequence; continue it by decode".into(),
            ));
        }
        for head in 0..kv_heads {
            self.ledger
                .check_write(RowId { seq, layer, head }, 0, None)?;
        }
        let mut rows = self.ledger.policy.take(seq);
        let result = self.plan_dms_rows(seq, layer, t, decisions, &mut rows);
        self.ledger.policy.put(seq, rows);
        result
    }

    /// [`KvStore::dms_prefill_plan`] over the sequence's taken rows.
    fn plan_dms_rows(
        &mut self,
        seq: SeqId,
        layer: usize,
        t: usize,
        decisions: &[bool],
        rows: &mut [RowState],
    ) -> Result<DmsPrefill, KvError> {
        let kv_heads = self.shape().kv_heads;
        let mut out = DmsPrefill {
            until: Vec::with_capacity(kv_heads * t),
            kept: Vec::new(),
            plan: WritePlan {
                layer,
                ..WritePlan::default()
            },
        };
        for head in 0..kv_heads {
            let row = RowId { seq, layer, head };
            let Some(RowState::Dms(dms)) = rows.get_mut(layer * kv_heads + head) else {
                return Err(KvError::Policy("row state is not DMS".into()));
            };
            let flags = dms.chunk_flags(&decisions[head * t..(head + 1) * t]);
            let mut reads = 0u64;
            for (j, &flag) in flags.iter().enumerate() {
                let until = dms.until(j as u32, flag);
                out.until.push(until);
                reads += u64::from(until.min(t as u32)) - j as u64;
                if until > t as u32 {
                    let slot = self.ledger.append(row, j as u32, &mut out.plan.copies)?;
                    out.plan.slots.push(slot);
                    out.kept.push((head * t + j) as u32);
                    dms.slots.push(j as u32, flag);
                }
            }
            dms.rebuild_ring(t as u32);
            self.ledger.count_prefill_reads(row, reads)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::flex::Flex;
    use burn::prelude::*;

    use super::super::super::attention::until_masked_attention_in_blocks;
    use super::super::super::{DmsParams, KvShape, KvStore, ResolvedPolicy, RowId};
    use super::PrefillStep;

    /// The device route of a fresh DMS prefill — [`KvStore::dms_prefill_plan`]
    /// plus the masked attention in burn ops — against the host's
    /// [`KvStore::policy_prefill`]: the same outputs, kept entries, reads
    /// and policy state, shifted and unshifted, with the queries split into
    /// blocks.
    #[test]
    fn dms_prefill_plan_and_masked_attention_equal_the_host_prefill() {
        let (kv_heads, group, d, t) = (2, 2, 8, 37);
        let n_heads = kv_heads * group;
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2001) as f32 / 1000.0 - 1.0
        };
        let q: Vec<f32> = (0..t * n_heads * d).map(|_| next()).collect();
        let k: Vec<f32> = (0..kv_heads * t * d).map(|_| next()).collect();
        let v: Vec<f32> = (0..kv_heads * t * d).map(|_| next()).collect();
        let decisions: Vec<bool> = (0..kv_heads * t).map(|_| next() > 0.1).collect();
        let shape = KvShape {
            layers: 1,
            kv_heads,
            head_dim: d,
        };
        let scale = 0.35;
        for shifted in [true, false] {
            let policy = ResolvedPolicy::Dms(DmsParams { window: 4, shifted });
            let mut host = KvStore::with_resolved_policy(shape, policy.clone()).unwrap();
            let hs = host.add_sequence();
            let mut want = vec![0.0f32; q.len()];
            let step = PrefillStep {
                layer: 0,
                seq: hs,
                q: &q,
                k: &k,
                v: &v,
                scale,
                decisions: &decisions,
            };
            host.policy_prefill(step, &mut want).unwrap();

            let mut planned = KvStore::with_resolved_policy(shape, policy).unwrap();
            let ps = planned.add_sequence();
            let plan = planned.dms_prefill_plan(ps, 0, t, &decisions).unwrap();
            let device = Default::default();
            let tensor = |x: &[f32], s: [usize; 3]| {
                Tensor::<Flex, 3>::from_data(TensorData::new(x.to_vec(), s), &device)
            };
            for block in [t, 5] {
                let got = until_masked_attention_in_blocks(
                    tensor(&q, [t, n_heads, d]),
                    tensor(&k, [kv_heads, t, d]),
                    tensor(&v, [kv_heads, t, d]),
                    &plan.until,
                    scale,
                    block,
                )
                .into_data()
                .into_vec::<f32>()
                .unwrap();
                let err = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(err < 1e-5, "shifted {shifted}, block {block}: Δ {err}");
            }

            assert_eq!(plan.plan.slots.len(), plan.kept.len());
            assert!(plan.kept.len() < kv_heads * t, "something was evicted");
            for head in 0..kv_heads {
                let row = RowId {
                    seq: hs,
                    layer: 0,
                    head,
                };
                let kept: Vec<u32> = plan
                    .kept
                    .iter()
                    .filter(|&&i| i as usize / t == head)
                    .map(|&i| i % t as u32)
                    .collect();
                assert_eq!(host.row_positions(row).unwrap(), kept, "head {head}");
            }
            assert_eq!(host.stats(hs), planned.stats(ps));
            assert_eq!(
                host.ledger.policy.take(hs),
                planned.ledger.policy.take(ps),
                "policy state"
            );
        }
    }
}
