//! Grouped-query self-attention of one layer: fused q/k/v projection (with
//! Qwen2 biases), optional per-head q/k RMSNorm (Qwen3), rotate-half RoPE,
//! then either dense causal attention over a fresh prompt (prefill) or the
//! backend's decode kernel over the [`KvStore`] (decode).

use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::linear::Linear;
use super::norm::RmsNorm;
use super::rope::RopeTables;
use crate::kv::{AttentionBackend, KvStore, SeqId};

/// Head counts and sizes of one attention layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// Self-attention weights of one layer.
#[derive(Debug, Clone)]
pub struct Attention<B: Backend> {
    /// `[hidden, (n_heads + 2 * n_kv_heads) * head_dim]`: q, then k, then v.
    qkv: Linear<B>,
    /// `[n_heads * head_dim, hidden]`
    o: Linear<B>,
    /// Per-head norms of q and k over `head_dim` (Qwen3).
    qk_norm: Option<(RmsNorm<B>, RmsNorm<B>)>,
    heads: Heads,
}

/// Post-RoPE queries, keys and values of `n` tokens.
struct Qkv<B: Backend> {
    /// `[n, n_heads, head_dim]`
    q: Tensor<B, 3>,
    /// `[n, n_kv_heads, head_dim]`
    k: Tensor<B, 3>,
    /// `[n, n_kv_heads, head_dim]`
    v: Tensor<B, 3>,
}

impl<B: AttentionBackend> Attention<B> {
    pub fn new(
        qkv: Linear<B>,
        o: Linear<B>,
        qk_norm: Option<(RmsNorm<B>, RmsNorm<B>)>,
        heads: Heads,
    ) -> Self {
        Self {
            qkv,
            o,
            qk_norm,
            heads,
        }
    }

    fn scale(&self) -> f32 {
        (self.heads.head_dim as f32).powf(-0.5)
    }

    /// Projects `x` and applies q/k norm and RoPE.
    ///
    /// # Shapes
    /// `x`: `[n, hidden]`; `rope` has `n` rows.
    fn project(&self, x: Tensor<B, 2>, rope: &RopeTables<B>) -> Qkv<B> {
        let Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        } = self.heads;
        let [n, _] = x.dims();
        let qkv = self.qkv.forward(x);
        let q = qkv.clone().narrow(1, 0, n_heads * head_dim);
        let k = qkv
            .clone()
            .narrow(1, n_heads * head_dim, n_kv_heads * head_dim);
        let v = qkv.narrow(1, (n_heads + n_kv_heads) * head_dim, n_kv_heads * head_dim);
        let mut q = q.reshape([n, n_heads, head_dim]);
        let mut k = k.reshape([n, n_kv_heads, head_dim]);
        let v = v.reshape([n, n_kv_heads, head_dim]);
        if let Some((q_norm, k_norm)) = &self.qk_norm {
            q = q_norm.forward(q);
            k = k_norm.forward(k);
        }
        Qkv {
            q: rope.apply(q),
            k: rope.apply(k),
            v,
        }
    }

    /// Dense causal attention over the `t` tokens of a fresh sequence, and
    /// their keys/values written to `store`.
    ///
    /// # Shapes
    /// `x`: `[t, hidden]` (normed); `rope` has rows for positions `0..t`;
    /// returns `[t, hidden]`.
    pub fn prefill(
        &self,
        x: Tensor<B, 2>,
        rope: &RopeTables<B>,
        store: &mut KvStore,
        layer: usize,
        seq: SeqId,
    ) -> Tensor<B, 2> {
        let Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        } = self.heads;
        let [t, _] = x.dims();
        let Qkv { q, k, v } = self.project(x, rope);
        let k = k.swap_dims(0, 1);
        let v = v.swap_dims(0, 1);
        B::prefill_write(store, layer, seq, k.clone(), v.clone());
        // GQA: repeat each KV head for its group of query heads.
        let group = n_heads / n_kv_heads;
        let repeat = |x: Tensor<B, 3>| {
            x.unsqueeze_dim::<4>(1)
                .expand([n_kv_heads, group, t, head_dim])
                .reshape([1, n_heads, t, head_dim])
        };
        let q = q.swap_dims(0, 1).unsqueeze::<4>();
        let options = AttentionModuleOptions {
            scale: Some(f64::from(self.scale())),
            softcap: None,
            is_causal: true,
        };
        let out = attention(q, repeat(k), repeat(v), None, None, options);
        // [1, n_heads, t, hd] -> [t, n_heads * hd]
        let out = out
            .squeeze_dim::<3>(0)
            .swap_dims(0, 1)
            .reshape([t, n_heads * head_dim]);
        self.o.forward(out)
    }

    /// One new token per sequence: append its key/value to the store and
    /// attend over each sequence's entries with the backend's kernel.
    ///
    /// # Shapes
    /// `x`: `[batch, hidden]` (normed), row `i` for `seqs[i]`; `rope` has
    /// `batch` rows (each sequence's own position); returns `[batch, hidden]`.
    pub fn decode(
        &self,
        x: Tensor<B, 2>,
        rope: &RopeTables<B>,
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
    ) -> Tensor<B, 2> {
        let Heads {
            n_heads, head_dim, ..
        } = self.heads;
        let [batch, _] = x.dims();
        let Qkv { q, k, v } = self.project(x, rope);
        let out = B::decode_attention(store, layer, seqs, q, k, v, self.scale());
        self.o.forward(out.reshape([batch, n_heads * head_dim]))
    }
}
