//! Decode attention over the [`KvStore`], per backend: the glue between the
//! model's burn tensors and the store's kernels. On Flex the tensors are read
//! in place (no copy when contiguous f32) and the CPU kernel runs on the
//! host payload.

use burn::backend::flex::{Flex, FlexTensor};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, TensorPrimitive};

use super::{DecodeStep, KvStore, PrefillStep, ResolvedPolicy, SeqId, SlotChoice};

/// A burn backend whose tensors can be written into and attended over in the
/// project's KV store.
pub trait AttentionBackend: Backend {
    /// Append a fresh sequence's prefill keys/values of one layer.
    ///
    /// # Shapes
    /// `k`, `v`: `[kv_heads, t, head_dim]` (post-RoPE).
    fn prefill_write(
        store: &mut KvStore,
        layer: usize,
        seq: SeqId,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
    );

    /// One decode step of one layer (append, then attend).
    ///
    /// # Shapes
    /// `q`: `[batch, n_heads, head_dim]`; `k`, `v`: `[batch, kv_heads,
    /// head_dim]` (post-RoPE); returns `[batch, n_heads, head_dim]`.
    fn decode_attention(
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
    ) -> Tensor<Self, 3> {
        Self::decode_attention_placed(store, layer, seqs, &[], q, k, v, scale)
    }

    /// One decode step of one layer, each row's new entry placed where
    /// `slots` says (`[batch, kv_heads]`; empty = append everywhere): the
    /// entry point of eviction policies that reuse slots.
    ///
    /// # Shapes
    /// As [`AttentionBackend::decode_attention`].
    #[expect(
        clippy::too_many_arguments,
        reason = "decode_attention plus the placement"
    )]
    fn decode_attention_placed(
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
        slots: &[SlotChoice],
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
    ) -> Tensor<Self, 3>;

    /// Called once before a decode step runs its layers, with the step's
    /// sequences (as every layer gets them) and whether DMS layers will pass
    /// placeholder decisions ([`AttentionBackend::defers_dms_decisions`]).
    /// A backend may plan every layer's writes here: the cubecl store
    /// places and plans them all and uploads every layer's tables at once,
    /// and each layer's [`AttentionBackend::policy_decode`] takes its part.
    /// The default plans nothing (each layer plans its own).
    fn plan_decode_step(
        _store: &mut KvStore,
        _seqs: &[SeqId],
        _device: &Self::Device,
        _dms_deferred: bool,
    ) {
    }

    /// Whether a decode step may place DMS entries before reading the
    /// step's decisions back (placement needs token `t − window − 1`'s flag
    /// only), so every layer's decisions come back once, with the logits
    /// ([`KvStore::decide_decoded`](super::KvStore)). Device backends do;
    /// the CPU reads them where they are made.
    fn defers_dms_decisions() -> bool {
        false
    }

    /// Dense causal attention of a fresh sequence's prefill chunk over its
    /// own keys. The default is burn's attention module (on Flex its fused
    /// kernel); cubecl backends go through [`until_masked_attention`] in
    /// query blocks, so the scores stay bounded at any length (burn-cubecl
    /// sends an explicit scale to its naive attention, which materialises
    /// `[heads, t, t]`).
    ///
    /// # Shapes
    /// `q`: `[t, n_heads, head_dim]`; `k`, `v`: `[kv_heads, t, head_dim]`;
    /// returns `[t, n_heads, head_dim]`.
    fn dense_prefill_attention(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
    ) -> Tensor<Self, 3> {
        dense_module_attention(q, k, v, scale)
    }

    /// Prefill attention of one layer under the store's cache policy
    /// ([`KvStore::policy_prefill`]): the chunk attends over the kept
    /// entries and itself under the policy's mask, then the store keeps
    /// what the policy keeps. The default runs on the host payload, moving
    /// the tensors through host memory; cubecl backends keep DMS on the
    /// device.
    ///
    /// # Shapes
    /// `q`: `[t, n_heads, head_dim]`; `k`, `v`: `[kv_heads, t, head_dim]`
    /// (post-RoPE); `decisions`: `[kv_heads, t]` (DMS, else empty); returns
    /// `[t, n_heads, head_dim]`.
    ///
    /// # Panics
    /// On the store's errors (misshapen input, missing decisions, a device
    /// payload).
    #[expect(
        clippy::too_many_arguments,
        reason = "prefill_write plus the queries, scale and decisions"
    )]
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
        host_policy_prefill(store, layer, seq, q, k, v, scale, decisions)
    }

    /// Whether [`AttentionBackend::policy_prefill`] continues a sequence
    /// that already holds entries; where it does not, the model runs such
    /// chunks token by token through decode (the same visibility, so the
    /// same outputs). Dense always goes token by token.
    fn continues_policy_prefill(policy: &ResolvedPolicy) -> bool {
        !policy.is_dense()
    }

    /// One decode step of one layer under the store's cache policy
    /// ([`KvStore::policy_decode`]); a dense store takes
    /// [`AttentionBackend::decode_attention`] unchanged. The output comes
    /// in `out`, the dtype the output projection reads (a half-precision
    /// weight's on a device, else f32): the default casts the f32 output
    /// where `out` differs ([`in_dtype`]); the cubecl store writes a
    /// planned step's output in `out` in its last attention launch, rounded
    /// once as the cast would.
    ///
    /// # Shapes
    /// As [`AttentionBackend::decode_attention`]; `decisions`: `[batch,
    /// kv_heads]` (DMS, else empty).
    #[expect(
        clippy::too_many_arguments,
        reason = "decode_attention plus the decisions and the output dtype"
    )]
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
        let o = if store.policy().is_dense() {
            Self::decode_attention(store, layer, seqs, q, k, v, scale)
        } else {
            host_policy_decode(store, layer, seqs, q, k, v, scale, decisions)
        };
        in_dtype(o, out)
    }
}

/// `o` in `dtype`: itself where it already is, else cast.
pub(crate) fn in_dtype<B: Backend>(o: Tensor<B, 3>, dtype: DType) -> Tensor<B, 3> {
    if o.dtype() == dtype {
        o
    } else {
        o.cast(burn::tensor::FloatDType::from(dtype))
    }
}

/// Causal attention through burn's attention module, each KV head repeated
/// for its group of query heads.
///
/// # Shapes
/// As [`AttentionBackend::dense_prefill_attention`].
pub(crate) fn dense_module_attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    scale: f32,
) -> Tensor<B, 3> {
    let [t, n_heads, head_dim] = q.dims();
    let n_kv_heads = k.dims()[0];
    let group = n_heads / n_kv_heads;
    let repeat = |x: Tensor<B, 3>| {
        x.unsqueeze_dim::<4>(1)
            .expand([n_kv_heads, group, t, head_dim])
            .reshape([1, n_heads, t, head_dim])
    };
    let q = q.swap_dims(0, 1).unsqueeze::<4>();
    let options = AttentionModuleOptions {
        scale: Some(f64::from(scale)),
        softcap: None,
        is_causal: true,
    };
    let out = attention(q, repeat(k), repeat(v), None, None, options);
    // [1, n_heads, t, hd] -> [t, n_heads, hd]
    out.squeeze_dim::<3>(0).swap_dims(0, 1)
}

/// [`AttentionBackend::policy_prefill`] on the host payload: the tensors go
/// through host memory.
#[expect(clippy::too_many_arguments, reason = "policy_prefill's arguments")]
pub(crate) fn host_policy_prefill<B: Backend>(
    store: &mut KvStore,
    layer: usize,
    seq: SeqId,
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    scale: f32,
    decisions: &[bool],
) -> Tensor<B, 3> {
    let device = q.device();
    let [t, n_heads, head_dim] = q.dims();
    let (q, k, v) = (host_vec(q), host_vec(k), host_vec(v));
    let mut out = vec![0.0f32; q.len()];
    let step = PrefillStep {
        layer,
        seq,
        q: &q,
        k: &k,
        v: &v,
        scale,
        decisions,
    };
    store
        .policy_prefill(step, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    crate::profile::upload_to::<B>(4 * out.len());
    Tensor::from_data(TensorData::new(out, [t, n_heads, head_dim]), &device)
}

/// [`AttentionBackend::policy_decode`] of a non-dense policy on the host
/// payload: the tensors go through host memory.
#[expect(clippy::too_many_arguments, reason = "policy_decode's arguments")]
pub(crate) fn host_policy_decode<B: Backend>(
    store: &mut KvStore,
    layer: usize,
    seqs: &[SeqId],
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    scale: f32,
    decisions: &[bool],
) -> Tensor<B, 3> {
    // The policy's attention with its bookkeeping (placement, eviction).
    let _timed = crate::profile::scope(crate::profile::Phase::Attention);
    let device = q.device();
    let [batch, n_heads, head_dim] = q.dims();
    let (q, k, v) = (host_vec(q), host_vec(k), host_vec(v));
    let mut out = vec![0.0f32; q.len()];
    let step = DecodeStep::appending(layer, seqs, [&q, &k, &v], scale);
    store
        .policy_decode(step, decisions, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    crate::profile::upload_to::<B>(4 * out.len());
    Tensor::from_data(TensorData::new(out, [batch, n_heads, head_dim]), &device)
}

/// Causal attention of a chunk at positions `0..t` over its own keys, key
/// `j` visible to query `i` iff `j ≤ i < until[h][j]` (DMS's closed-form
/// mask, `prefill_kernel`'s rule), in burn ops on any backend. Queries go
/// in blocks so the scores stay under 256 MiB.
///
/// # Shapes
/// `q`: `[t, n_heads, head_dim]`; `k`, `v`: `[kv_heads, t, head_dim]`;
/// `until`: `[kv_heads, t]`; returns `[t, n_heads, head_dim]`.
pub fn until_masked_attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    until: &[u32],
    scale: f32,
) -> Tensor<B, 3> {
    let [t, n_heads, _] = q.dims();
    let block = ((1usize << 26) / (n_heads * t).max(1)).clamp(1, t.max(1));
    until_masked_attention_in_blocks(q, k, v, until, scale, block)
}

/// [`until_masked_attention`] with `block` queries at a time.
pub(crate) fn until_masked_attention_in_blocks<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    until: &[u32],
    scale: f32,
    block: usize,
) -> Tensor<B, 3> {
    let device = q.device();
    let [t, n_heads, d] = q.dims();
    let kv_heads = k.dims()[0];
    assert_eq!(until.len(), kv_heads * t, "until is not [kv_heads, t]");
    assert!(block > 0, "blocks of no queries");
    let group = n_heads / kv_heads;
    // Positions up to 2^24 are exact in f32; u32::MAX stands for "never".
    crate::profile::upload_to::<B>(4 * until.len());
    let until = Tensor::<B, 3>::from_data(
        TensorData::new(
            until.iter().map(|&u| u as f32).collect::<Vec<f32>>(),
            [kv_heads, 1, t],
        ),
        &device,
    );
    let positions =
        |n: usize, from: usize| -> Vec<f32> { (from..from + n).map(|p| p as f32).collect() };
    let mut outs = Vec::with_capacity(t.div_ceil(block));
    for i0 in (0..t).step_by(block) {
        let c = block.min(t - i0);
        let keys = i0 + c; // causal: later keys are never visible
        // [c, n_heads, d] -> [kv_heads, group * c, d]
        let qc = q
            .clone()
            .narrow(0, i0, c)
            .reshape([c, kv_heads, group, d])
            .permute([1, 2, 0, 3])
            .reshape([kv_heads, group * c, d]);
        let kc = k.clone().narrow(1, 0, keys);
        let vc = v.clone().narrow(1, 0, keys);
        let scores = qc.matmul(kc.swap_dims(1, 2)).mul_scalar(scale);
        let shape = [kv_heads, c, keys];
        crate::profile::upload_to::<B>(4 * (c + keys));
        let qpos = Tensor::<B, 3>::from_data(TensorData::new(positions(c, i0), [1, c, 1]), &device)
            .expand(shape);
        let kpos =
            Tensor::<B, 3>::from_data(TensorData::new(positions(keys, 0), [1, 1, keys]), &device)
                .expand(shape);
        let hidden = kpos
            .greater(qpos.clone())
            .bool_or(qpos.greater_equal(until.clone().narrow(2, 0, keys).expand(shape)));
        // The same mask for every query head of a KV head.
        let hidden = hidden
            .unsqueeze_dim::<4>(1)
            .expand([kv_heads, group, c, keys])
            .reshape([kv_heads, group * c, keys]);
        let weights =
            burn::tensor::activation::softmax(scores.mask_fill(hidden, f32::NEG_INFINITY), 2);
        // [kv_heads, group * c, d] -> [c, n_heads, d]
        let out = weights
            .matmul(vc)
            .reshape([kv_heads, group, c, d])
            .permute([2, 0, 1, 3])
            .reshape([c, n_heads, d]);
        outs.push(out);
    }
    Tensor::cat(outs, 0)
}

/// Any backend's tensor as an f32 host vector (a copy).
fn host_vec<B: Backend>(t: Tensor<B, 3>) -> Vec<f32> {
    crate::profile::read_back(t)
}

/// A Flex tensor as contiguous f32 host memory: borrowed in place when it
/// already is, copied (and converted) otherwise.
enum HostF32 {
    InPlace(FlexTensor),
    Owned(Vec<f32>),
}

impl HostF32 {
    fn new(t: Tensor<Flex, 3>) -> Self {
        let prim = t.into_primitive().tensor();
        if prim.dtype() != DType::F32 {
            let data = prim.into_data().convert::<f32>();
            return Self::Owned(data.into_vec::<f32>().expect("converted to f32 above"));
        }
        if prim.as_slice::<f32>().is_some() {
            Self::InPlace(prim)
        } else {
            Self::InPlace(prim.to_contiguous())
        }
    }

    fn as_slice(&self) -> &[f32] {
        match self {
            Self::InPlace(t) => t.as_slice::<f32>().expect("checked contiguous f32"),
            Self::Owned(v) => v,
        }
    }
}

impl AttentionBackend for Flex {
    fn prefill_write(
        store: &mut KvStore,
        layer: usize,
        seq: SeqId,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
    ) {
        let (k, v) = (HostF32::new(k), HostF32::new(v));
        store.append_prefill(seq, layer, k.as_slice(), v.as_slice());
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
        let _timed = crate::profile::scope(crate::profile::Phase::Attention);
        let [batch, n_heads, head_dim] = q.dims();
        let (q, k, v) = (HostF32::new(q), HostF32::new(k), HostF32::new(v));
        let mut out = vec![0.0f32; batch * n_heads * head_dim];
        let step = DecodeStep {
            slots,
            ..DecodeStep::appending(
                layer,
                seqs,
                [q.as_slice(), k.as_slice(), v.as_slice()],
                scale,
            )
        };
        store
            .decode_step(step, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        let prim = FlexTensor::from_data(TensorData::new(out, [batch, n_heads, head_dim]));
        Tensor::from_primitive(TensorPrimitive::Float(prim))
    }
}
