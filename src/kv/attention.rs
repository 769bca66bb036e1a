//! Decode attention over the [`KvStore`], per backend: the glue between the
//! model's burn tensors and the store's kernels. On Flex the tensors are read
//! in place (no copy when contiguous f32) and the CPU kernel runs on the
//! host payload.

use burn::backend::flex::{Flex, FlexTensor};
use burn::prelude::*;
use burn::tensor::{DType, TensorPrimitive};

use super::{DecodeStep, KvStore, PrefillStep, SeqId, SlotChoice};

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

    /// Prefill attention of one layer under the store's cache policy
    /// ([`KvStore::policy_prefill`]): the chunk attends over the kept
    /// entries and itself under the policy's mask, then the store keeps
    /// what the policy keeps. Runs on the host payload; the default moves
    /// the tensors through host memory.
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
        Tensor::from_data(TensorData::new(out, [t, n_heads, head_dim]), &device)
    }

    /// One decode step of one layer under the store's cache policy
    /// ([`KvStore::policy_decode`]); a dense store takes
    /// [`AttentionBackend::decode_attention`] unchanged.
    ///
    /// # Shapes
    /// As [`AttentionBackend::decode_attention`]; `decisions`: `[batch,
    /// kv_heads]` (DMS, else empty).
    #[expect(
        clippy::too_many_arguments,
        reason = "decode_attention plus the decisions"
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
    ) -> Tensor<Self, 3> {
        if store.policy().is_dense() {
            return Self::decode_attention(store, layer, seqs, q, k, v, scale);
        }
        // The policy's attention with its bookkeeping (placement, eviction).
        let _timed = crate::bench::profile::scope(crate::bench::profile::Phase::Attention);
        let device = q.device();
        let [batch, n_heads, head_dim] = q.dims();
        let (q, k, v) = (host_vec(q), host_vec(k), host_vec(v));
        let mut out = vec![0.0f32; q.len()];
        let step = DecodeStep {
            layer,
            seqs,
            q: &q,
            k: &k,
            v: &v,
            scale,
            slots: &[],
        };
        store
            .policy_decode(step, decisions, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        Tensor::from_data(TensorData::new(out, [batch, n_heads, head_dim]), &device)
    }
}

/// Any backend's tensor as an f32 host vector (a copy).
fn host_vec<B: Backend>(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32 above")
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
        let _timed = crate::bench::profile::scope(crate::bench::profile::Phase::Attention);
        let [batch, n_heads, head_dim] = q.dims();
        let (q, k, v) = (HostF32::new(q), HostF32::new(k), HostF32::new(v));
        let mut out = vec![0.0f32; batch * n_heads * head_dim];
        let step = DecodeStep {
            layer,
            seqs,
            q: q.as_slice(),
            k: k.as_slice(),
            v: v.as_slice(),
            scale,
            slots,
        };
        store
            .decode_step(step, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        let prim = FlexTensor::from_data(TensorData::new(out, [batch, n_heads, head_dim]));
        Tensor::from_primitive(TensorPrimitive::Float(prim))
    }
}
