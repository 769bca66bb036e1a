//! The device-resident payload: each layer's K/V pools in cubecl buffers,
//! written and attended by the kernels of [`super::cube_kernel`], behind
//! [`AttentionBackend`] for every non-fusion `CubeBackend<R, f32, i32, _>`
//! (`Cuda`'s inner backend, `Wgpu`). The ledger — block tables, lengths,
//! positions, counters — stays on the host; per decode step only the rows'
//! block tables, the new entries' slot numbers and the slot copies go to the
//! device, every layer's in one upload
//! ([`AttentionBackend::plan_decode_step`]).

use std::any::Any;
use std::collections::HashSet;

use burn::prelude::*;
use burn::tensor::{DType, Shape, TensorMetadata, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime};
use cubecl::prelude::ComputeClient;
use cubecl::server::Handle;

use super::attention::{host_policy_decode, host_policy_prefill, in_dtype, until_masked_attention};
use super::cube_kernel::{self, DevicePools};
use super::ledger::Ledger;
use super::plan::WritePlan;
use super::store::{DevicePayload, Payload};
use super::{
    AttentionBackend, DevicePoolStats, KvDtype, KvShape, KvStore, ResolvedPolicy, SeqId,
    SlotChoice, SlotCopy,
};

/// burn's CUDA backend without fusion (`burn::backend::Cuda` wraps it in
/// `Fusion` when the `fusion` feature is on): the type the model runs on
/// `--device cuda` so its attention goes through the device-resident store.
#[cfg(feature = "cuda")]
pub type CudaBackend = CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;

/// burn's wgpu backend without fusion (Mesa lavapipe in the tests).
#[cfg(feature = "wgpu")]
pub type WgpuBackend = CubeBackend<cubecl::wgpu::WgpuRuntime, f32, i32, u32>;

/// K/V pools of every layer on one cubecl device, in the store's
/// [`KvDtype`](super::KvDtype).
pub(crate) struct CubePayload<R: CubeRuntime> {
    client: ComputeClient<R>,
    block_size: usize,
    head_dim: usize,
    dtype: super::KvDtype,
    /// Blocks each layer's pools get at their first allocation (the
    /// store's device reservation).
    reserved_blocks: usize,
    stats: DevicePoolStats,
    layers: Vec<Option<DevicePools>>,
    /// The decode step planned for every layer, its tables on the device.
    step: Option<StepTables>,
}

/// A decode step's writes planned for every layer before the first runs,
/// with every layer's tables in one buffer on the device.
struct StepTables {
    table: Handle,
    len: usize,
    seqs: Vec<SeqId>,
    /// Per layer, taken when the layer runs.
    layers: Vec<Option<PlannedLayer>>,
}

/// One layer's part of [`StepTables`].
struct PlannedLayer {
    /// Slot copies to apply first, batch by batch.
    copies: Vec<cube_kernel::CopyAt>,
    tables: cube_kernel::DecodeTables,
}

impl<R: CubeRuntime> Drop for CubePayload<R> {
    /// Free the pools, then ask the device to release the memory its
    /// allocator keeps, so that the next store does not hold both.
    fn drop(&mut self) {
        self.layers.clear();
        self.client.memory_cleanup();
    }
}

impl<R: CubeRuntime> CubePayload<R> {
    /// The layer's pools, grown to the ledger's pool capacity (at least the
    /// reservation).
    fn ensure(&mut self, ledger: &Ledger, layer: usize) -> &DevicePools {
        let blocks = ledger
            .pool(layer)
            .capacity()
            .max(self.reserved_blocks)
            .max(1);
        let len = blocks * self.block_size * self.head_dim;
        let slot = &mut self.layers[layer];
        if slot.as_ref().is_none_or(|p| p.len < len) {
            self.stats.allocations += 2;
            self.stats.bytes += 2 * len as u64 * self.dtype.bytes();
            self.stats.grow_copies += u64::from(slot.is_some());
            *slot = Some(cube_kernel::grow(
                &self.client,
                slot.take(),
                len,
                self.dtype,
            ));
        }
        slot.as_ref().expect("set above")
    }

    /// Apply copies in order, batching consecutive ones into one launch as
    /// long as none reads or overwrites a slot another of the batch writes.
    fn copy(&mut self, ledger: &Ledger, copies: &[SlotCopy]) {
        for b in CopyBatch::split(copies) {
            self.launch(ledger, b);
        }
    }

    fn launch(&mut self, ledger: &Ledger, batch: CopyBatch) {
        let pools = self.ensure(ledger, batch.layer).clone();
        cube_kernel::copy(&self.client, &pools, &batch.src, &batch.dst, self.head_dim);
    }

    /// Copies, then the new entries (`[plan.slots.len(), head_dim]` at `k`, `v`).
    fn apply(&mut self, ledger: &Ledger, plan: &WritePlan, k: &Handle, v: &Handle) {
        self.copy(ledger, &plan.copies);
        let pools = self.ensure(ledger, plan.layer).clone();
        cube_kernel::scatter(&self.client, &pools, k, v, &plan.slots, self.head_dim);
    }
}

impl<R: CubeRuntime> DevicePayload for CubePayload<R> {
    fn apply_copies(&mut self, ledger: &Ledger, copies: &[SlotCopy]) {
        self.copy(ledger, copies);
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn pool_stats(&self) -> DevicePoolStats {
        self.stats
    }
}

/// Slot copies of one layer that can run in one launch.
struct CopyBatch {
    layer: usize,
    src: Vec<u32>,
    dst: Vec<u32>,
    read: HashSet<u32>,
    written: HashSet<u32>,
}

impl CopyBatch {
    /// `copies` in order, in batches that can each run in one launch.
    fn split(copies: &[SlotCopy]) -> Vec<Self> {
        let mut batches = Vec::new();
        let mut batch: Option<CopyBatch> = None;
        for c in copies {
            if let Some(b) = batch.take_if(|b| !b.admits(c)) {
                batches.push(b);
            }
            batch.get_or_insert_with(|| CopyBatch::new(c.layer)).push(c);
        }
        batches.extend(batch);
        batches
    }

    fn new(layer: usize) -> Self {
        Self {
            layer,
            src: Vec::new(),
            dst: Vec::new(),
            read: HashSet::new(),
            written: HashSet::new(),
        }
    }

    /// Can `c` join without reading a slot the batch writes or writing one
    /// it reads or writes?
    fn admits(&self, c: &SlotCopy) -> bool {
        c.layer == self.layer
            && (c.src..c.src + c.n).all(|s| !self.written.contains(&s))
            && (c.dst..c.dst + c.n).all(|s| !self.written.contains(&s) && !self.read.contains(&s))
    }

    fn push(&mut self, c: &SlotCopy) {
        self.src.extend(c.src..c.src + c.n);
        self.dst.extend(c.dst..c.dst + c.n);
        self.read.extend(c.src..c.src + c.n);
        self.written.extend(c.dst..c.dst + c.n);
    }
}

/// The store's device payload for runtime `R`, created on first use.
///
/// # Panics
/// If the store already holds entries on the host or on another runtime:
/// one store serves one backend; if the device cannot store the store's
/// KV dtype (the model's dtype resolution refuses that first).
fn device<'a, R: CubeRuntime>(
    store: &'a mut KvStore,
    client: &ComputeClient<R>,
) -> (&'a Ledger, &'a mut CubePayload<R>) {
    let KvStore { ledger, payload } = store;
    if let Payload::Host(_) = payload {
        assert!(
            ledger.store_stats().blocks == 0,
            "kv store already holds entries on the host; use one backend per store"
        );
        let KvShape {
            layers, head_dim, ..
        } = ledger.shape();
        let dtype = ledger.kv_dtype();
        assert!(
            cube_kernel::supports(client, dtype),
            "kv store: this device cannot store K/V in {dtype}"
        );
        *payload = Payload::Device(Box::new(CubePayload::<R> {
            client: client.clone(),
            block_size: ledger.block_size(),
            head_dim,
            dtype,
            // Whole blocks of every layer within the reservation, and
            // within the largest buffer the device allocates (each layer's
            // K and V pools are one buffer each).
            reserved_blocks: (ledger.device_reserve
                / (layers as u64 * ledger.block_size() as u64 * ledger.entry_bytes()))
            .min(
                client.properties().memory.max_page_size
                    / (ledger.block_size() as u64 * head_dim as u64 * dtype.bytes()),
            ) as usize,
            stats: DevicePoolStats::default(),
            layers: vec![None; layers],
            step: None,
        }));
    }
    let Payload::Device(d) = payload else {
        unreachable!("device payload installed above")
    };
    let p = d
        .as_any_mut()
        .downcast_mut::<CubePayload<R>>()
        .expect("kv store payload lives on another cubecl runtime");
    (ledger, p)
}

/// A contiguous f32 device tensor.
fn f32_primitive<R: CubeRuntime, BT: BoolElement>(
    t: Tensor<CubeBackend<R, f32, i32, BT>, 3>,
) -> CubeTensor<R> {
    let t = into_contiguous(t.into_primitive().tensor());
    assert_eq!(
        t.dtype(),
        DType::F32,
        "kv store: device tensors must be f32"
    );
    t
}

/// Plan one decode step of every layer (see
/// [`AttentionBackend::plan_decode_step`]): place and plan each layer's
/// writes as its own decode would, then upload every layer's copies, slots
/// and row tables in one buffer. Dense, and DMS with deferred decisions
/// (placed with placeholders, as its layers will pass); other policies
/// plan per layer.
fn plan_step<R: CubeRuntime>(
    store: &mut KvStore,
    seqs: &[SeqId],
    client: &ComputeClient<R>,
    dms_deferred: bool,
) {
    let dms = matches!(store.policy(), ResolvedPolicy::Dms(_));
    if let Payload::Device(d) = &mut store.payload
        && let Some(p) = d.as_any_mut().downcast_mut::<CubePayload<R>>()
    {
        p.step = None;
    }
    if seqs.is_empty() || !(store.policy().is_dense() || dms && dms_deferred) {
        return;
    }
    device::<R>(store, client);
    let KvShape {
        layers, kv_heads, ..
    } = store.shape();
    let placeholders = vec![false; seqs.len() * kv_heads];
    let plans: Vec<WritePlan> = (0..layers)
        .map(|layer| {
            if !dms {
                return store.plan_decode(layer, seqs, &[]);
            }
            let mut plan = None;
            store.policy_decode_placed(layer, seqs, &placeholders, |store, slots| {
                plan = Some(store.plan_decode(layer, seqs, slots)?);
                Ok(())
            })?;
            Ok(plan.expect("policy_decode_placed places once"))
        })
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let (ledger, p) = device::<R>(store, client);
    let mut table = Vec::new();
    let mut planned = Vec::with_capacity(layers);
    for plan in &plans {
        let copies = CopyBatch::split(&plan.copies)
            .into_iter()
            .map(|b| {
                let src_at = table.len();
                table.extend_from_slice(&b.src);
                let dst_at = table.len();
                table.extend_from_slice(&b.dst);
                cube_kernel::CopyAt {
                    src_at,
                    dst_at,
                    n: b.src.len(),
                }
            })
            .collect();
        let rows = ledger
            .row_tables(plan.layer, seqs)
            .unwrap_or_else(|e| panic!("{e}"));
        let tables = cube_kernel::DecodeTables::push(&mut table, &plan.slots, &rows, p.block_size);
        planned.push(Some(PlannedLayer { copies, tables }));
    }
    p.step = Some(StepTables {
        table: cube_kernel::upload_u32(&p.client, &table),
        len: table.len(),
        seqs: seqs.to_vec(),
        layers: planned,
    });
}

/// The layer's part of the step [`plan_step`] planned for `seqs`, taken
/// (`None` when none was).
fn take_planned<R: CubeRuntime>(
    store: &mut KvStore,
    layer: usize,
    seqs: &[SeqId],
) -> Option<(Handle, usize, PlannedLayer)> {
    let Payload::Device(d) = &mut store.payload else {
        return None;
    };
    let p = d.as_any_mut().downcast_mut::<CubePayload<R>>()?;
    let step = p.step.as_mut().filter(|s| s.seqs == seqs)?;
    let planned = step.layers.get_mut(layer)?.take()?;
    Some((step.table.clone(), step.len, planned))
}

/// `[batch, n_heads, head_dim]` queries and `[batch, kv_heads, head_dim]`
/// keys and values for `store`: returns (batch, n_heads, head_dim, group).
fn decode_dims<R: CubeRuntime>(
    store: &KvStore,
    q: &CubeTensor<R>,
    k: &CubeTensor<R>,
    v: &CubeTensor<R>,
) -> [usize; 4] {
    let [batch, n_heads, d] = q.shape().dims::<3>();
    let shape = store.shape();
    assert_eq!(
        k.shape().dims::<3>(),
        [batch, shape.kv_heads, shape.head_dim],
        "k is not [batch, kv_heads, head_dim]"
    );
    assert_eq!(v.shape(), k.shape(), "v is not shaped like k");
    assert_eq!(
        n_heads % shape.kv_heads,
        0,
        "n_heads is not a multiple of kv_heads"
    );
    [batch, n_heads, d, n_heads / shape.kv_heads]
}

/// The attention output handle (`dtype` elements) as a `[batch, n_heads,
/// head_dim]` tensor.
fn output<R: CubeRuntime, BT: BoolElement>(
    q: &CubeTensor<R>,
    out: Handle,
    [batch, n_heads, d]: [usize; 3],
    dtype: KvDtype,
) -> Tensor<CubeBackend<R, f32, i32, BT>, 3> {
    let dtype = match dtype {
        KvDtype::F32 => DType::F32,
        KvDtype::F16 => DType::F16,
        KvDtype::Bf16 => DType::BF16,
    };
    let out = CubeTensor::new_contiguous(
        q.client.clone(),
        q.device.clone(),
        Shape::new([batch, n_heads, d]),
        out,
        dtype,
    );
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// One layer's decode step from the step's plan: its copies, then the new
/// entries written and attended with the tables already on the device;
/// the output in `out` (the output projection's input).
#[expect(clippy::too_many_arguments, reason = "a decode step's arguments")]
fn decode_planned<R: CubeRuntime, BT: BoolElement>(
    store: &mut KvStore,
    layer: usize,
    seqs: &[SeqId],
    (table, len, planned): (Handle, usize, PlannedLayer),
    q: Tensor<CubeBackend<R, f32, i32, BT>, 3>,
    k: Tensor<CubeBackend<R, f32, i32, BT>, 3>,
    v: Tensor<CubeBackend<R, f32, i32, BT>, 3>,
    scale: f32,
    out: KvDtype,
) -> Tensor<CubeBackend<R, f32, i32, BT>, 3> {
    let out_dtype = out;
    let (q, k, v) = (f32_primitive(q), f32_primitive(k), f32_primitive(v));
    let [batch, n_heads, d, group] = decode_dims(store, &q, &k, &v);
    assert_eq!(
        planned.tables.slots.n,
        batch * store.shape().kv_heads,
        "the step was planned for this batch"
    );
    let out = {
        let (ledger, p) = device::<R>(store, &q.client);
        let pools = p.ensure(ledger, layer).clone();
        for c in planned.copies {
            cube_kernel::copy_in(&p.client, &pools, (&table, len), c, p.head_dim);
        }
        let params = cube_kernel::AttendParams {
            block_size: p.block_size,
            head_dim: d,
            group,
            scale,
            span: None,
            out: out_dtype,
        };
        cube_kernel::scatter_attend_in(
            &p.client,
            &pools,
            (&table, len),
            planned.tables,
            Some((&k.handle, &v.handle)),
            &q.handle,
            params,
        )
    };
    store
        .count_attend_reads(layer, seqs)
        .unwrap_or_else(|e| panic!("{e}"));
    output::<R, BT>(&q, out, [batch, n_heads, d], out_dtype)
}

impl<R: CubeRuntime, BT: BoolElement> AttentionBackend for CubeBackend<R, f32, i32, BT> {
    /// Dense, and DMS with deferred decisions: every layer's writes
    /// planned and their tables uploaded at once.
    fn plan_decode_step(
        store: &mut KvStore,
        seqs: &[SeqId],
        dev: &Self::Device,
        dms_deferred: bool,
    ) {
        plan_step::<R>(store, seqs, &R::client(dev), dms_deferred);
    }

    /// DMS prefills a fresh sequence on the device (the mask in burn ops,
    /// the kept entries gathered and scattered into the pools); other
    /// policies go through the host payload.
    fn policy_prefill(
        store: &mut KvStore,
        layer: usize,
        seq: SeqId,
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
        decisions: &[bool],
    ) -> Tensor<Self, 3> {
        if !matches!(store.policy(), ResolvedPolicy::Dms(_)) {
            return host_policy_prefill(store, layer, seq, q, k, v, scale, decisions);
        }
        let [kv_heads, t, d] = k.dims();
        let client = k.clone().into_primitive().tensor().client;
        device::<R>(store, &client);
        let plan = store
            .dms_prefill_plan(seq, layer, t, decisions)
            .unwrap_or_else(|e| panic!("{e}"));
        let out = until_masked_attention(q, k.clone(), v.clone(), &plan.until, scale);
        if !plan.kept.is_empty() {
            let n = plan.kept.len();
            let idx: Vec<i32> = plan.kept.iter().map(|&i| i as i32).collect();
            crate::profile::upload(4 * n);
            let idx = Tensor::<Self, 1, Int>::from_data(TensorData::new(idx, [n]), &k.device());
            let gather = |x: Tensor<Self, 3>| {
                f32_primitive(
                    x.reshape([kv_heads * t, d])
                        .select(0, idx.clone())
                        .reshape([1, n, d]),
                )
            };
            let (kk, vv) = (gather(k), gather(v));
            let (ledger, p) = device::<R>(store, &client);
            p.apply(ledger, &plan.plan, &kk.handle, &vv.handle);
        }
        out
    }

    /// DMS decodes on the device (the store places, the kernel writes and
    /// attends); dense as always; other policies through the host payload.
    /// A planned step's merge writes the output in `out` (no cast launch);
    /// any other step's output is cast.
    fn policy_decode(
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
        decisions: &[bool],
        out: DType,
    ) -> Tensor<Self, 3> {
        let written = match out {
            DType::F32 => Some(KvDtype::F32),
            DType::F16 => Some(KvDtype::F16),
            DType::BF16 => Some(KvDtype::Bf16),
            _ => None,
        };
        // Placed and planned before the step (`plan_decode_step`).
        if let Some(written) = written
            && let Some(planned) = take_planned::<R>(store, layer, seqs)
        {
            return decode_planned::<R, BT>(store, layer, seqs, planned, q, k, v, scale, written);
        }
        let o = match store.policy() {
            ResolvedPolicy::Dense => Self::decode_attention(store, layer, seqs, q, k, v, scale),
            ResolvedPolicy::Dms(_) => {
                let mut o = None;
                store
                    .policy_decode_placed(layer, seqs, decisions, |store, slots| {
                        o = Some(Self::decode_attention_placed(
                            store, layer, seqs, slots, q, k, v, scale,
                        ));
                        Ok(())
                    })
                    .unwrap_or_else(|e| panic!("{e}"));
                o.expect("policy_decode_placed attends once")
            }
            _ => host_policy_decode(store, layer, seqs, q, k, v, scale, decisions),
        };
        in_dtype(o, out)
    }

    /// The store places DMS entries before the decisions are read; they
    /// come back with the step's logits.
    fn defers_dms_decisions() -> bool {
        true
    }

    /// In query blocks over the keys (bounded scores): see the trait.
    fn dense_prefill_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
    ) -> Tensor<Self, 3> {
        let [kv_heads, t, _] = k.dims();
        until_masked_attention(q, k, v, &vec![u32::MAX; kv_heads * t], scale)
    }

    /// DMS continues a sequence token by token (its device prefill starts
    /// sequences only).
    fn continues_policy_prefill(policy: &ResolvedPolicy) -> bool {
        !policy.is_dense() && !matches!(policy, ResolvedPolicy::Dms(_))
    }

    fn prefill_write(
        store: &mut KvStore,
        layer: usize,
        seq: SeqId,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
    ) {
        let (k, v) = (f32_primitive(k), f32_primitive(v));
        let [kv_heads, t, d] = k.shape().dims::<3>();
        let shape = store.shape();
        assert_eq!(
            (kv_heads, d),
            (shape.kv_heads, shape.head_dim),
            "k is not [kv_heads, t, head_dim]"
        );
        assert_eq!(v.shape(), k.shape(), "v is not shaped like k");
        device::<R>(store, &k.client);
        let plan = store
            .plan_prefill(seq, layer, t)
            .unwrap_or_else(|e| panic!("{e}"));
        let (ledger, p) = device::<R>(store, &k.client);
        p.apply(ledger, &plan, &k.handle, &v.handle);
    }

    fn decode_attention_placed(
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
        slots: &[SlotChoice],
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
    ) -> Tensor<Self, 3> {
        let (q, k, v) = (f32_primitive(q), f32_primitive(k), f32_primitive(v));
        let [batch, n_heads, d, group] = decode_dims(store, &q, &k, &v);
        device::<R>(store, &q.client);
        let plan = store
            .plan_decode(layer, seqs, slots)
            .unwrap_or_else(|e| panic!("{e}"));
        let out = {
            let (ledger, p) = device::<R>(store, &q.client);
            p.copy(ledger, &plan.copies);
            let pools = p.ensure(ledger, layer).clone();
            let rows = ledger
                .row_tables(layer, seqs)
                .unwrap_or_else(|e| panic!("{e}"));
            // The new entries' slots and the row tables in one upload.
            let new = cube_kernel::NewEntries {
                k: &k.handle,
                v: &v.handle,
                slots: &plan.slots,
            };
            let params = cube_kernel::AttendParams {
                block_size: p.block_size,
                head_dim: d,
                group,
                scale,
                span: None,
                out: KvDtype::F32,
            };
            cube_kernel::scatter_attend(&p.client, &pools, Some(new), &rows, &q.handle, params)
        };
        store
            .count_attend_reads(layer, seqs)
            .unwrap_or_else(|e| panic!("{e}"));
        output::<R, BT>(&q, out, [batch, n_heads, d], KvDtype::F32)
    }
}
