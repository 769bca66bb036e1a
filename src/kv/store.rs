//! The KV store: per (sequence, layer, KV head) rows of post-RoPE keys and
//! values over per-layer pools of fixed-size blocks.
//!
//! Each row has a block table, its own length, a RoPE position per slot and
//! a count of entries seen; sequences track positions seen separately from
//! entries kept. [`KvStore::fork`] shares the parent's blocks by reference
//! count (W samples of one prompt hold the prompt once); a write into a
//! shared block copies it first. The payload (keys and values) lives in host
//! memory, or in device buffers once a cubecl backend writes to the store.

use std::any::Any;

use super::cpu_kernel::{self, PagedKv, RowRef};
use super::host::HostPayload;
use super::ledger::Ledger;
use super::plan::WritePlan;
use super::policies::PolicyBook;
use super::{
    CachePolicy, DmsParams, KvError, KvStats, ResolvedPolicy, RowId, RowStats, SlotCopy, StoreStats,
};

/// Slots per block unless asked otherwise.
pub const DEFAULT_BLOCK_SIZE: usize = 32;

/// Dimensions of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KvShape {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// Handle of one sequence in a [`KvStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqId(pub(crate) u32);

/// Where a decode step puts a row's new entry: after the last one, or over
/// an entry an eviction policy gave up (DMS ring slot reuse, window, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotChoice {
    #[default]
    Append,
    Reuse(usize),
}

/// One decode step of one layer for a batch of sequences.
///
/// # Shapes
/// `q`: `[batch, n_heads, head_dim]`; `k`, `v`: `[batch, kv_heads,
/// head_dim]`; `slots`: empty (append everywhere) or `[batch, kv_heads]`.
#[derive(Debug, Clone, Copy)]
pub struct DecodeStep<'a> {
    pub layer: usize,
    pub seqs: &'a [SeqId],
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub scale: f32,
    pub slots: &'a [SlotChoice],
}

impl<'a> DecodeStep<'a> {
    /// A step whose new entries are appended everywhere (no `slots`).
    pub fn appending(
        layer: usize,
        seqs: &'a [SeqId],
        [q, k, v]: [&'a [f32]; 3],
        scale: f32,
    ) -> Self {
        Self {
            layer,
            seqs,
            q,
            k,
            v,
            scale,
            slots: &[],
        }
    }
}

/// Where the K/V payload lives.
pub(crate) enum Payload {
    Host(HostPayload),
    /// Device pools of a cubecl runtime (see `cube_store`).
    #[cfg_attr(
        not(any(feature = "wgpu", feature = "cuda")),
        expect(dead_code, reason = "built only with a cubecl backend")
    )]
    Device(Box<dyn DevicePayload>),
}

/// A payload in device memory, type-erased so the store stays one type for
/// every backend.
pub(crate) trait DevicePayload: Send {
    /// Apply copy-on-write and eviction moves, in order.
    fn apply_copies(&mut self, ledger: &Ledger, copies: &[SlotCopy]);
    #[cfg_attr(
        not(any(feature = "wgpu", feature = "cuda")),
        expect(dead_code, reason = "built only with a cubecl backend")
    )]
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// The pools' allocations so far.
    fn pool_stats(&self) -> super::DevicePoolStats;
}

/// The project's KV store. Mutable inference state: passed explicitly (`&mut`)
/// into the model.
pub struct KvStore {
    pub(crate) ledger: Ledger,
    pub(crate) payload: Payload,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("shape", &self.ledger.shape())
            .field("block_size", &self.ledger.block_size())
            .field("stats", &self.ledger.store_stats())
            .finish_non_exhaustive()
    }
}

impl KvStore {
    /// An empty store with [`DEFAULT_BLOCK_SIZE`]-slot blocks.
    pub fn new(shape: KvShape) -> Self {
        Self::with_block_size(shape, DEFAULT_BLOCK_SIZE).expect("default block size is valid")
    }

    /// An empty store with `block_size`-slot blocks (errors on 0).
    pub fn with_block_size(shape: KvShape, block_size: usize) -> Result<Self, KvError> {
        let host = HostPayload::new(shape.layers, block_size, shape.head_dim);
        Ok(Self {
            ledger: Ledger::new(shape, block_size)?,
            payload: Payload::Host(host),
        })
    }

    /// An empty store running a cache policy, resolved against the model's
    /// DMS parameters (`None` for a model without them). Drive it with
    /// [`KvStore::policy_prefill`] and [`KvStore::policy_decode`] (the
    /// direct writes and evictions bypass the policy's state). Quest stores
    /// use `page_size`-slot blocks (pages are blocks).
    ///
    /// # Errors
    /// As [`CachePolicy::resolve`].
    pub fn with_policy(
        shape: KvShape,
        policy: &CachePolicy,
        dms: Option<DmsParams>,
    ) -> Result<Self, KvError> {
        Self::with_resolved_policy(shape, policy.resolve(dms)?)
    }

    /// An empty store running an already resolved policy.
    pub fn with_resolved_policy(shape: KvShape, policy: ResolvedPolicy) -> Result<Self, KvError> {
        let block_size = match policy {
            ResolvedPolicy::Quest { page_size, .. } => page_size,
            _ => DEFAULT_BLOCK_SIZE,
        };
        let mut store = Self::with_block_size(shape, block_size)?;
        store.ledger.policy = PolicyBook::new(policy, shape);
        Ok(store)
    }

    /// The store storing K and V as `dtype` in device memory: the width
    /// [`KvStore::entry_bytes`] and every byte figure count. f32 is what the
    /// host payload holds; f16/bf16 take effect on a cubecl backend (the
    /// device payload is made on first use), so they are accepted for the
    /// policies served there, dense and DMS, only.
    ///
    /// # Errors
    /// [`KvError::KvDtypeOnHost`] for a narrower dtype under another policy;
    /// [`KvError::KvDtypeNotEmpty`] once the store holds entries.
    pub fn with_kv_dtype(mut self, dtype: super::KvDtype) -> Result<Self, KvError> {
        if dtype != super::KvDtype::F32 && !Self::device_served(self.policy()) {
            return Err(KvError::KvDtypeOnHost {
                dtype,
                policy: self.policy().method().to_string(),
            });
        }
        if self.ledger.store_stats().blocks > 0 {
            return Err(KvError::KvDtypeNotEmpty(dtype));
        }
        self.ledger.set_kv_dtype(dtype);
        Ok(self)
    }

    /// Whether a cubecl backend keeps this policy's K/V in device memory
    /// (the others go through the host payload, in f32).
    pub fn device_served(policy: &ResolvedPolicy) -> bool {
        matches!(policy, ResolvedPolicy::Dense | ResolvedPolicy::Dms(_))
    }

    /// The store with its device pools sized once for `bytes` of K/V (all
    /// layers, in the stored width: a KV memory budget) when a cubecl
    /// backend first writes: a run that stays within it never copies a
    /// pool to grow it. Each layer's K and V pools are one buffer each, so
    /// the reservation stops at the largest buffer the device allocates
    /// (cubecl's `max_page_size`: 128 MiB per buffer over lavapipe, a
    /// quarter of the memory on CUDA). Past it the pools still grow (×1.5,
    /// copying), as a fallback counted in [`KvStore::device_pool_stats`].
    /// No effect on the host payload.
    pub fn with_device_pool_bytes(mut self, bytes: u64) -> Self {
        self.ledger.device_reserve = bytes;
        self
    }

    /// The device pools' allocations so far; `None` while the payload is
    /// on the host. Dropping the store frees the pools and asks the device
    /// to release the memory.
    pub fn device_pool_stats(&self) -> Option<super::DevicePoolStats> {
        match &self.payload {
            Payload::Host(_) => None,
            Payload::Device(d) => Some(d.pool_stats()),
        }
    }

    /// The element K and V are stored in.
    pub fn kv_dtype(&self) -> super::KvDtype {
        self.ledger.kv_dtype()
    }

    /// The cache policy the store runs.
    pub fn policy(&self) -> &ResolvedPolicy {
        &self.ledger.policy.policy
    }

    pub fn shape(&self) -> KvShape {
        self.ledger.shape()
    }

    pub fn block_size(&self) -> usize {
        self.ledger.block_size()
    }

    /// A new, empty sequence.
    pub fn add_sequence(&mut self) -> SeqId {
        self.ledger.add_sequence()
    }

    /// `n` new sequences that continue from `parent` (its entries and
    /// position), sharing its blocks. The parent stays valid until released.
    ///
    /// # Panics
    /// If `parent` was released.
    pub fn fork(&mut self, parent: SeqId, n: usize) -> Vec<SeqId> {
        self.ledger
            .fork(parent, n)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Drop a sequence; blocks nobody else holds return to the free list.
    /// Releasing twice is a no-op.
    pub fn release(&mut self, seq: SeqId) {
        let _ = self.ledger.release(seq);
    }

    /// Positions seen by `seq`: the RoPE position of its next token.
    pub fn position(&self, seq: SeqId) -> usize {
        self.book(seq).positions as usize
    }

    /// Record that `n` more tokens of `seq` went through every layer. Call
    /// once per forward pass, after the last layer: writes of the pass get
    /// positions `position(seq)..`, and a row refuses a position that does
    /// not follow its last one.
    pub fn advance(&mut self, seq: SeqId, n: usize) {
        self.ledger
            .advance(seq, n)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Counters of one sequence.
    pub fn stats(&self, seq: SeqId) -> KvStats {
        self.ledger.stats(seq).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Counters of each (layer, KV head) row of `seq`, layer-major.
    pub fn row_stats(&self, seq: SeqId) -> Vec<RowStats> {
        self.ledger.row_stats(seq).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Counters of the whole store (shared blocks counted once).
    pub fn store_stats(&self) -> StoreStats {
        self.ledger.store_stats()
    }

    /// Maximum over time of the entries physically held by the store (a
    /// prefix shared by forks counts once).
    pub fn peak_resident(&self) -> u64 {
        self.ledger.store_stats().peak_resident
    }

    /// Check the store's bookkeeping invariants (see the tests); `Ok` on a
    /// healthy store.
    pub fn audit(&self) -> Result<(), KvError> {
        self.ledger.audit()
    }

    /// Entries kept by one row.
    pub fn row_len(&self, row: RowId) -> Result<usize, KvError> {
        Ok(self.ledger.row(row)?.len as usize)
    }

    /// RoPE positions of one row's entries, in slot order (not sorted once
    /// slots are reused).
    pub fn row_positions(&self, row: RowId) -> Result<Vec<u32>, KvError> {
        let len = self.ledger.row(row)?.len as usize;
        let pool = self.ledger.pool(row.layer);
        (0..len)
            .map(|s| Ok(pool.position(self.ledger.global_slot(row, s)?)))
            .collect()
    }

    /// Keys and values of one row in slot order (a copy, host payload only).
    ///
    /// # Shapes
    /// Both `[len, head_dim]`, row-major.
    pub fn read_row(&self, row: RowId) -> Result<(Vec<f32>, Vec<f32>), KvError> {
        let host = self.host()?;
        let d = self.shape().head_dim;
        let len = self.ledger.row(row)?.len as usize;
        let (mut k, mut v) = (Vec::with_capacity(len * d), Vec::with_capacity(len * d));
        let layer = &host.layers[row.layer];
        for s in 0..len {
            let at = self.ledger.global_slot(row, s)? as usize * d;
            k.extend_from_slice(&layer.keys[at..at + d]);
            v.extend_from_slice(&layer.values[at..at + d]);
        }
        Ok((k, v))
    }

    /// Append one entry at RoPE position `pos`; returns its slot.
    ///
    /// # Shapes
    /// `k`, `v`: `[head_dim]`.
    pub fn append(&mut self, row: RowId, k: &[f32], v: &[f32], pos: u32) -> Result<usize, KvError> {
        self.host_write(row, k, v, |ledger, copies| ledger.append(row, pos, copies))?;
        Ok(self.ledger.row(row)?.len as usize - 1)
    }

    /// Overwrite the entry in `slot` with a new one at `pos` (slot reuse:
    /// the length is unchanged, a shared block is copied first).
    ///
    /// # Shapes
    /// `k`, `v`: `[head_dim]`.
    pub fn write_slot(
        &mut self,
        row: RowId,
        slot: usize,
        k: &[f32],
        v: &[f32],
        pos: u32,
    ) -> Result<(), KvError> {
        self.host_write(row, k, v, |ledger, copies| {
            ledger.overwrite(row, slot, pos, copies)
        })
    }

    /// One entry of `row` written on the host: checked, given its global
    /// slot by `place` (which records the block copies that must come
    /// first), then copied in.
    fn host_write(
        &mut self,
        row: RowId,
        k: &[f32],
        v: &[f32],
        place: impl FnOnce(&mut Ledger, &mut Vec<SlotCopy>) -> Result<u32, KvError>,
    ) -> Result<(), KvError> {
        self.check_entry(k, v)?;
        self.host()?;
        let mut plan = WritePlan {
            layer: row.layer,
            ..WritePlan::default()
        };
        plan.slots.push(place(&mut self.ledger, &mut plan.copies)?);
        self.host_apply(&plan, k, v);
        Ok(())
    }

    /// Drop the entry in `slot`: the row's last entry moves into it and the
    /// length shrinks by one. Returns the slot the moved entry came from
    /// (`None` when `slot` was the last), so a policy can move its per-slot
    /// state the same way.
    pub fn evict(&mut self, row: RowId, slot: usize) -> Result<Option<usize>, KvError> {
        let mut copies = Vec::new();
        let moved = self.ledger.evict(row, slot, &mut copies)?;
        self.apply_copies(&copies);
        Ok(moved)
    }

    /// Keep only the first `len` entries of a row.
    pub fn truncate(&mut self, row: RowId, len: usize) -> Result<(), KvError> {
        let mut copies = Vec::new();
        self.ledger.truncate(row, len, &mut copies)?;
        self.apply_copies(&copies);
        Ok(())
    }

    /// Count `n` entries (or token-equivalents of metadata) read at decode by
    /// a policy outside the store's kernels.
    pub fn count_decode_reads(&mut self, row: RowId, n: u64) -> Result<(), KvError> {
        self.ledger.count_decode_reads(row, n)
    }

    /// Count `n` entries read by a prefill attention the policy ran itself.
    pub fn count_prefill_reads(&mut self, row: RowId, n: u64) -> Result<(), KvError> {
        self.ledger.count_prefill_reads(row, n)
    }

    /// Append `t` prefill tokens of one layer at positions `position(seq)..`
    /// and count the causal reads of the prefill attention over them.
    ///
    /// # Shapes
    /// `k`, `v`: `[kv_heads, t, head_dim]`, row-major.
    ///
    /// # Panics
    /// On a released sequence, a device payload or misshapen input.
    pub fn append_prefill(&mut self, seq: SeqId, layer: usize, k: &[f32], v: &[f32]) {
        let KvShape {
            kv_heads, head_dim, ..
        } = self.shape();
        let t = k.len() / (kv_heads * head_dim);
        assert_eq!(
            k.len(),
            kv_heads * t * head_dim,
            "k is not [kv_heads, t, head_dim]"
        );
        assert_eq!(v.len(), k.len(), "v is not shaped like k");
        self.host().unwrap_or_else(|e| panic!("{e}"));
        let plan = self
            .plan_prefill(seq, layer, t)
            .unwrap_or_else(|e| panic!("{e}"));
        self.host_apply(&plan, k, v);
    }

    /// One decode step of one layer for a batch of sequences: append each
    /// sequence's new key/value, then attend with its query over all its
    /// entries (the new one included).
    ///
    /// # Shapes
    /// `q`: `[batch, n_heads, head_dim]`; `k`, `v`: `[batch, kv_heads,
    /// head_dim]`; `out`: `[batch, n_heads, head_dim]`. `n_heads` is a
    /// multiple of `kv_heads` (GQA).
    ///
    /// # Panics
    /// As [`KvStore::decode_step`] errors.
    #[expect(
        clippy::too_many_arguments,
        reason = "the model's established call; see decode_step"
    )]
    pub fn decode_attend(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        scale: f32,
        out: &mut [f32],
    ) {
        let step = DecodeStep {
            layer,
            seqs,
            q,
            k,
            v,
            scale,
            slots: &[],
        };
        self.decode_step(step, out)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// One decode step of one layer: write each row's new entry where
    /// `step.slots` says (appending by default) at position
    /// `position(seq)`, then attend over each row.
    ///
    /// # Shapes
    /// See [`DecodeStep`]; `out`: `[batch, n_heads, head_dim]`.
    pub fn decode_step(&mut self, step: DecodeStep<'_>, out: &mut [f32]) -> Result<(), KvError> {
        self.decode_write(&step)?;
        self.attend(step.layer, step.seqs, step.q, step.scale, out)
    }

    /// The write half of a decode step.
    pub(crate) fn decode_write(&mut self, step: &DecodeStep<'_>) -> Result<(), KvError> {
        let KvShape {
            kv_heads, head_dim, ..
        } = self.shape();
        let batch = step.seqs.len();
        if step.k.len() != batch * kv_heads * head_dim || step.v.len() != step.k.len() {
            return Err(KvError::EntryWidth {
                got: step.k.len(),
                head_dim,
            });
        }
        self.host()?;
        let plan = self.plan_decode(step.layer, step.seqs, step.slots)?;
        self.host_apply(&plan, step.k, step.v);
        Ok(())
    }

    /// [`KvStore::decode_step`] that also returns each entry's attention
    /// weight, averaged over the row's query heads: what score-based
    /// policies (TOVA, H2O) evict by.
    ///
    /// # Shapes
    /// `weights` is resized to `[Σ row lengths]`: rows `[batch, kv_heads]`
    /// one after the other (row `i` starts at the sum of the lengths before
    /// it, see [`KvStore::row_len`]), each in slot order.
    pub fn decode_step_weights(
        &mut self,
        step: DecodeStep<'_>,
        out: &mut [f32],
        weights: &mut Vec<f32>,
    ) -> Result<(), KvError> {
        self.decode_write(&step)?;
        self.attend_impl(
            step.layer,
            step.seqs,
            step.q,
            step.scale,
            out,
            Some(weights),
        )
    }

    /// Attend each sequence's query over its rows of `layer` as they are (no
    /// write), counting the reads.
    ///
    /// # Shapes
    /// `q`, `out`: `[batch, n_heads, head_dim]`.
    pub fn attend(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        q: &[f32],
        scale: f32,
        out: &mut [f32],
    ) -> Result<(), KvError> {
        self.attend_impl(layer, seqs, q, scale, out, None)
    }

    fn attend_impl(
        &mut self,
        layer: usize,
        seqs: &[SeqId],
        q: &[f32],
        scale: f32,
        out: &mut [f32],
        weights: Option<&mut Vec<f32>>,
    ) -> Result<(), KvError> {
        let shape = self.shape();
        let (kv_heads, d) = (shape.kv_heads, shape.head_dim);
        let group = q.len() / (seqs.len() * kv_heads * d).max(1);
        if q.len() != seqs.len() * kv_heads * group * d || out.len() != q.len() {
            return Err(KvError::EntryWidth {
                got: q.len(),
                head_dim: d,
            });
        }
        {
            let host = self.host()?;
            let rows: Vec<RowRef> = self
                .row_tables(layer, seqs)?
                .into_iter()
                .map(|(blocks, len)| RowRef { blocks, len })
                .collect();
            let pool = &host.layers[layer];
            let kv = PagedKv {
                keys: &pool.keys,
                values: &pool.values,
                block_size: self.block_size(),
                head_dim: d,
            };
            match weights {
                Some(w) => {
                    w.clear();
                    w.resize(rows.iter().map(|r| r.len).sum(), 0.0);
                    cpu_kernel::decode_attention_weights(kv, &rows, q, group, scale, out, w);
                }
                None => cpu_kernel::decode_attention(kv, &rows, q, group, scale, out),
            }
        }
        self.count_attend_reads(layer, seqs)
    }

    fn book(&self, seq: SeqId) -> &super::ledger::SeqBook {
        self.ledger.seq(seq).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn host(&self) -> Result<&HostPayload, KvError> {
        match &self.payload {
            Payload::Host(h) => Ok(h),
            Payload::Device(_) => Err(KvError::PayloadOnDevice),
        }
    }

    fn check_entry(&self, k: &[f32], v: &[f32]) -> Result<(), KvError> {
        let d = self.shape().head_dim;
        if k.len() != d || v.len() != d {
            return Err(KvError::EntryWidth {
                got: k.len().max(v.len()),
                head_dim: d,
            });
        }
        Ok(())
    }

    /// Grow the layer's host payload to the pool, apply the plan's copies,
    /// then write its entries.
    ///
    /// # Shapes
    /// `k`, `v`: `[plan.slots.len(), head_dim]`.
    fn host_apply(&mut self, plan: &WritePlan, k: &[f32], v: &[f32]) {
        assert_eq!(
            self.kv_dtype(),
            super::KvDtype::F32,
            "kv store: the host payload stores f32; a narrower kv dtype needs a cubecl backend"
        );
        let d = self.shape().head_dim;
        let blocks = self.ledger.pool(plan.layer).capacity();
        if let Payload::Host(h) = &mut self.payload {
            h.ensure(plan.layer, blocks);
            h.apply(&plan.copies);
            for (i, &slot) in plan.slots.iter().enumerate() {
                h.write(
                    plan.layer,
                    slot,
                    &k[i * d..(i + 1) * d],
                    &v[i * d..(i + 1) * d],
                );
            }
        }
    }

    /// Apply payload copies wherever the payload lives.
    pub(super) fn apply_copies(&mut self, copies: &[SlotCopy]) {
        match &mut self.payload {
            Payload::Host(h) => {
                for c in copies {
                    h.ensure(c.layer, self.ledger.pool(c.layer).capacity());
                }
                h.apply(copies)
            }
            Payload::Device(d) => d.apply_copies(&self.ledger, copies),
        }
    }
}
