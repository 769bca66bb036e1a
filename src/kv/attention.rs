//! Decode attention over the [`KvStore`], per backend: the glue between the
//! model's burn tensors and the store's kernels.

use burn::backend::flex::Flex;
use burn::prelude::*;

use super::{KvStore, SeqId};

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
    ) -> Tensor<Self, 3>;
}

fn host(t: Tensor<Flex, 3>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().expect("f32 tensor")
}

impl AttentionBackend for Flex {
    fn prefill_write(
        store: &mut KvStore,
        layer: usize,
        seq: SeqId,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
    ) {
        store.append_prefill(seq, layer, &host(k), &host(v));
    }

    fn decode_attention(
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
        scale: f32,
    ) -> Tensor<Self, 3> {
        let device = q.device();
        let [batch, n_heads, head_dim] = q.dims();
        let mut out = vec![0.0f32; batch * n_heads * head_dim];
        store.decode_attend(layer, seqs, &host(q), &host(k), &host(v), scale, &mut out);
        Tensor::from_data(TensorData::new(out, [batch, n_heads, head_dim]), &device)
    }
}
