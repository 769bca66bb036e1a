//! Grouped-query self-attention of one layer: fused q/k/v projection (with
//! Qwen2 biases), optional per-head q/k RMSNorm (Qwen3), rotate-half RoPE,
//! then either dense causal attention over a fresh prompt (prefill) or the
//! backend's decode kernel over the [`KvStore`] (decode). Under a cache
//! policy other than dense, prefill and decode go through the store's
//! policy entry points, with the layer's DMS decisions when it has a
//! [`DmsHead`].

use burn::prelude::*;

use crate::kv::{AttentionBackend, KvStore, SeqId};
use crate::model::formats::vars::Vars;
use crate::model::kernels::cube_ops::{self, QkvExtras};
use crate::model::layers::dms::{DmsConfig, DmsHead};
use crate::model::layers::linear::Linear;
use crate::model::layers::norm::RmsNorm;
use crate::model::layers::rope::RopeTables;
use crate::model::{LoadError, ModelConfig};

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
    /// DMS decision head of a retrofitted checkpoint.
    dms: Option<DmsHead<B>>,
}

/// Post-RoPE queries, keys and values of `n` tokens.
struct Qkv<B: Backend> {
    /// `[n, n_heads, head_dim]`
    q: Tensor<B, 3>,
    /// `[n, n_kv_heads, head_dim]`
    k: Tensor<B, 3>,
    /// `[n, n_kv_heads, head_dim]`
    v: Tensor<B, 3>,
    /// `[n, n_kv_heads]` DMS evict decisions, row-major (empty without DMS;
    /// placeholders when deferred).
    decisions: Vec<bool>,
    /// Deferred: the DMS decision logits `[n, n_kv_heads]`, not yet read.
    pending: Option<Tensor<B, 2>>,
}

impl<B: AttentionBackend> Attention<B> {
    /// The fused q/k/v and the output projection.
    pub fn linears(&self) -> [&Linear<B>; 2] {
        [&self.qkv, &self.o]
    }

    /// The dtype the layer's normed input is read in (the q/k/v
    /// projection's, [`Linear::input_dtype`]).
    pub fn input_dtype(&self) -> burn::tensor::DType {
        self.qkv.input_dtype()
    }

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
            dms: None,
        }
    }

    /// The same layer with a DMS decision head.
    pub fn with_dms(mut self, dms: DmsHead<B>) -> Self {
        self.dms = Some(dms);
        self
    }

    fn scale(&self) -> f32 {
        (self.heads.head_dim as f32).powf(-0.5)
    }

    /// Projects `x` and applies q/k norm and RoPE; with DMS, takes the
    /// decisions (and zeroes the borrowed q channel before and after RoPE).
    ///
    /// # Shapes
    /// `x`: `[n, hidden]` (normed); `resid`: `[n, hidden]` (before the
    /// norm, read by the DMS adapter); `rope` has `n` rows.
    /// With `defer`, the DMS decision logits are left on the device
    /// (`pending`) and `decisions` are placeholders (no evictions).
    fn project(
        &self,
        x: Tensor<B, 2>,
        resid: Tensor<B, 2>,
        rope: &RopeTables<B>,
        defer: bool,
    ) -> Qkv<B> {
        let Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        } = self.heads;
        let [n, _] = x.dims();
        let (qkv, bias) = self.qkv.forward_deferred_bias(x);
        // On the cubecl backends: bias, split, q/k norm and RoPE in one
        // launch, with the query neuron's logits when the layer has one.
        let extras = QkvExtras {
            bias,
            norms: self
                .qk_norm
                .as_ref()
                .map(|(q, k)| (q.weight(), k.weight(), q.eps())),
        };
        let heads = [n_heads, n_kv_heads, head_dim];
        let fused = match self.dms.as_ref().and_then(DmsHead::query_neuron) {
            Some(neuron) => {
                cube_ops::qkv_rope_neuron(&qkv, heads, extras, neuron, &rope.cos, &rope.sin)
                    .map(|(q, k, v, logits)| (q, k, v, Some(logits)))
            }
            None => cube_ops::qkv_rope(&qkv, heads, extras, &rope.cos, &rope.sin)
                .map(|(q, k, v)| (q, k, v, None)),
        };
        let decide = |logits: Tensor<B, 2>| {
            if defer {
                (vec![false; n * n_kv_heads], Some(logits))
            } else {
                let dms = self.dms.as_ref().expect("decisions need a DMS head");
                (dms.decisions(logits), None)
            }
        };
        if let Some((q, k, v, neuron_logits)) = fused {
            let (decisions, pending) = match (&self.dms, neuron_logits) {
                (Some(_), Some(logits)) => decide(logits),
                // The adapter reads the residual stream only.
                (Some(dms), None) => decide(dms.logits(q.clone(), resid).0),
                (None, _) => (Vec::new(), None),
            };
            return Qkv {
                q,
                k,
                v,
                decisions,
                pending,
            };
        }
        // The burn ops run in f32 (a half-precision projection keeps its
        // product in the weight's dtype for the fused kernel).
        let qkv = if qkv.dtype() == burn::tensor::DType::F32 {
            qkv
        } else {
            qkv.cast(burn::tensor::FloatDType::F32)
        };
        let qkv = match bias {
            Some(b) => qkv + b.clone().unsqueeze::<2>(),
            None => qkv,
        };
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
        let Some(dms) = &self.dms else {
            return Qkv {
                q: rope.apply(q),
                k: rope.apply(k),
                v,
                decisions: Vec::new(),
                pending: None,
            };
        };
        let (logits, q) = dms.logits(q, resid);
        let (decisions, pending) = decide(logits);
        Qkv {
            q: dms.after_rope(rope.apply(q)),
            k: rope.apply(k),
            v,
            decisions,
            pending,
        }
    }

    /// [`DmsHead::decide`] of this layer's head (`None` without DMS).
    ///
    /// # Shapes
    /// `values`: `[n, n_kv_heads]` decision logits, row-major.
    pub fn decide(&self, values: &[f32]) -> Option<Vec<bool>> {
        let dms = self.dms.as_ref()?;
        Some(dms.decide(values, self.heads.n_kv_heads))
    }

    /// Dense causal attention over the `t` tokens of a fresh sequence, and
    /// their keys/values written to `store`; under a cache policy, the
    /// store's policy prefill of a chunk at positions `position(seq)..`.
    ///
    /// # Shapes
    /// `x`: `[t, hidden]` (normed); `resid`: `[t, hidden]` (before the
    /// norm); `rope` has rows for the chunk's positions; returns `[t,
    /// hidden]`.
    pub fn prefill(
        &self,
        x: Tensor<B, 2>,
        resid: Tensor<B, 2>,
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
        let Qkv {
            q, k, v, decisions, ..
        } = self.project(x, resid, rope, false);
        let k = k.swap_dims(0, 1);
        let v = v.swap_dims(0, 1);
        if !store.policy().is_dense() {
            // [t, kv_heads] -> [kv_heads, t]
            let dec: Vec<bool> = if decisions.is_empty() {
                Vec::new()
            } else {
                (0..n_kv_heads)
                    .flat_map(|h| (0..t).map(move |i| (h, i)))
                    .map(|(h, i)| decisions[i * n_kv_heads + h])
                    .collect()
            };
            let out = B::policy_prefill(store, layer, seq, q, k, v, self.scale(), &dec);
            return self.o.forward_half(out.reshape([t, n_heads * head_dim]));
        }
        B::prefill_write(store, layer, seq, k.clone(), v.clone());
        let out = B::dense_prefill_attention(q, k, v, self.scale());
        self.o.forward_half(out.reshape([t, n_heads * head_dim]))
    }

    /// One new token per sequence: append its key/value to the store and
    /// attend over each sequence's entries with the backend's kernel.
    ///
    /// # Shapes
    /// `x`: `[batch, hidden]` (normed), row `i` for `seqs[i]`; `resid`:
    /// `[batch, hidden]` (before the norm); `rope` has `batch` rows (each
    /// sequence's own position); returns `[batch, hidden]`.
    pub fn decode(
        &self,
        x: Tensor<B, 2>,
        resid: Tensor<B, 2>,
        rope: &RopeTables<B>,
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
    ) -> Tensor<B, 2> {
        self.decode_deferred(x, resid, rope, store, layer, seqs, false)
            .0
    }

    /// [`decode`](Self::decode); with `defer` on a backend that
    /// [defers DMS decisions](AttentionBackend::defers_dms_decisions) under
    /// the DMS policy, the store places the new entries with the flags of
    /// earlier tokens and the step's decision logits (`[batch, n_kv_heads]`)
    /// come back unread, for [`decide`](Self::decide) and
    /// `KvStore::decide_decoded` after the step.
    #[expect(
        clippy::too_many_arguments,
        reason = "decode's arguments plus the deferral"
    )]
    pub fn decode_deferred(
        &self,
        x: Tensor<B, 2>,
        resid: Tensor<B, 2>,
        rope: &RopeTables<B>,
        store: &mut KvStore,
        layer: usize,
        seqs: &[SeqId],
        defer: bool,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let Heads {
            n_heads, head_dim, ..
        } = self.heads;
        let [batch, _] = x.dims();
        let defer = defer
            && self.dms.is_some()
            && B::defers_dms_decisions()
            && matches!(store.policy(), crate::kv::ResolvedPolicy::Dms(_));
        let Qkv {
            q,
            k,
            v,
            decisions,
            pending,
        } = self.project(x, resid, rope, defer);
        // Attention writes what the output projection reads (no cast).
        let o_in = self.o.input_dtype();
        let out = B::policy_decode(store, layer, seqs, q, k, v, self.scale(), &decisions, o_in);
        (
            self.o
                .forward_half(out.reshape([batch, n_heads * head_dim])),
            pending,
        )
    }
}

/// The projections and norms of one attention layer as its checkpoint
/// holds them, loaded from the layer's `self_attn`: what the inference
/// [`Attention`] and the training graph's frozen base are both built from.
#[derive(Debug, Clone)]
pub struct AttentionWeights<B: Backend> {
    /// `q_proj`, `k_proj`, `v_proj` fused: `[hidden, (n_heads + 2 *
    /// n_kv_heads) * head_dim]`, with their biases when `attention_bias`.
    pub qkv: Linear<B>,
    /// `o_proj`: `[n_heads * head_dim, hidden]`.
    pub o: Linear<B>,
    /// `q_norm` and `k_norm` over `head_dim` when `qk_norm` (Qwen3).
    pub qk_norm: Option<(RmsNorm<B>, RmsNorm<B>)>,
}

impl<B: Backend> AttentionWeights<B> {
    /// Loads `q_proj`, `k_proj`, `v_proj`, `o_proj` (and `q_norm`,
    /// `k_norm`) under `vars`.
    pub fn load(vars: &Vars<B>, config: &ModelConfig) -> Result<Self, LoadError> {
        let Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        } = Heads::of(config);
        let hidden = config.hidden_size;
        let (q, kv) = (n_heads * head_dim, n_kv_heads * head_dim);
        let qkv = Linear::load_fused(
            &[
                (vars.pp("q_proj"), q),
                (vars.pp("k_proj"), kv),
                (vars.pp("v_proj"), kv),
            ],
            hidden,
            config.attention_bias,
        )?;
        let o = Linear::load(&vars.pp("o_proj"), hidden, q, false)?;
        let qk_norm = if config.qk_norm {
            let norm = |n: &str| RmsNorm::load(&vars.pp(n), head_dim, config.rms_norm_eps);
            Some((norm("q_norm")?, norm("k_norm")?))
        } else {
            None
        };
        Ok(Self { qkv, o, qk_norm })
    }
}

impl Heads {
    /// The heads of `config`'s attention layers.
    pub fn of(config: &ModelConfig) -> Self {
        Self {
            n_heads: config.num_heads,
            n_kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
        }
    }
}

impl<B: AttentionBackend> Attention<B> {
    /// One layer's attention from its `self_attn` (`vars`), with the DMS
    /// decision head `dms` calls for.
    pub fn load(
        vars: &Vars<B>,
        config: &ModelConfig,
        dms: Option<&DmsConfig>,
    ) -> Result<Self, LoadError> {
        let AttentionWeights { qkv, o, qk_norm } = AttentionWeights::load(vars, config)?;
        let attn = Self::new(qkv, o, qk_norm, Heads::of(config));
        Ok(match dms {
            None => attn,
            Some(cfg) => attn.with_dms(DmsHead::load(vars, cfg, config)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::flex::Flex;

    use super::*;
    use crate::model::layers::dms::{DmsConfig, DmsDecision};
    use crate::model::layers::rope::Rope;
    use crate::model::{Arch, HostTensor, ModelConfig};

    type B = Flex;
    const HEADS: Heads = Heads {
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 8,
    };
    const HIDDEN: usize = 16;

    fn config() -> ModelConfig {
        ModelConfig {
            arch: Arch::Qwen3,
            vocab_size: 8,
            hidden_size: HIDDEN,
            intermediate_size: 8,
            num_layers: 1,
            num_heads: HEADS.n_heads,
            num_kv_heads: HEADS.n_kv_heads,
            head_dim: HEADS.head_dim,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: 64,
            tie_word_embeddings: false,
            attention_bias: false,
            qk_norm: false,
            dms: None,
        }
    }

    fn linear(out: usize, inp: usize, seed: f32) -> Linear<B> {
        let data = (0..out * inp)
            .map(|i| ((i as f32) * 0.61 + seed).sin())
            .collect();
        let w = HostTensor {
            shape: vec![out, inp],
            data,
        };
        Linear::from_hf(w, None, &Default::default())
    }

    fn q_of(a: &Attention<B>, x: &Tensor<B, 2>, positions: &[usize]) -> (Vec<f32>, Vec<bool>) {
        let rope = Rope::new(&config()).tables::<B>(positions, &Default::default());
        let qkv = a.project(x.clone(), x.clone(), &rope, false);
        let q = qkv.q.into_data().into_vec::<f32>().expect("f32");
        (q, qkv.decisions)
    }

    /// The neuron variant (`docs/method.md` §2.1): logits from channel d − 1 of
    /// heads 0 and G before RoPE; that channel is 0 after RoPE; the other
    /// heads are untouched; channel d/2 − 1 of the borrowed heads keeps
    /// only its cos term (the sin term of the zeroed channel is gone).
    #[test]
    fn neuron_variant_zeroes_the_borrowed_channel_around_rope() {
        let dev = Default::default();
        let qkv_out = (HEADS.n_heads + 2 * HEADS.n_kv_heads) * HEADS.head_dim;
        let base = Attention::<B>::new(
            linear(qkv_out, HIDDEN, 0.3),
            linear(HIDDEN, HEADS.n_heads * HEADS.head_dim, 0.9),
            None,
            HEADS,
        );
        // Scale 2, offset 6: decisions fall on both sides for these weights
        // (the borrowed channel ranges over about 1.1–4.4).
        let cfg = DmsConfig {
            alpha_scale: 2.0,
            alpha_offset: 6.0,
            window: 4,
            cr: None,
            decision: DmsDecision::QueryNeuron,
            shifted: true,
            per_layer: false,
        };
        let dms = base.clone().with_dms(DmsHead::neuron(
            &cfg,
            HEADS.n_heads,
            2,
            HEADS.head_dim,
            &dev,
        ));
        let x: Tensor<B, 2> = Tensor::from_data(
            TensorData::new(
                (0..3 * HIDDEN).map(|i| ((i as f32) * 0.37).cos()).collect(),
                [3, HIDDEN],
            ),
            &dev,
        );
        let d = HEADS.head_dim;
        let at = |t: usize, h: usize, c: usize| (t * HEADS.n_heads + h) * d + c;
        // Position 0 everywhere: RoPE is the identity, so this is q before RoPE.
        let (pre, none) = q_of(&base, &x, &[0, 0, 0]);
        assert!(none.is_empty());
        let positions = [0, 5, 9];
        let (plain, _) = q_of(&base, &x, &positions);
        let (q, decisions) = q_of(&dms, &x, &positions);
        let mut evicts = 0;
        for t in 0..3 {
            for kv in 0..2 {
                let h = kv * 2;
                let logit = pre[at(t, h, d - 1)] * 2.0 - 6.0;
                assert_eq!(decisions[t * 2 + kv], logit > 0.0, "token {t} kv head {kv}");
                evicts += usize::from(logit > 0.0);
                assert_eq!(q[at(t, h, d - 1)], 0.0, "zeroed after RoPE");
                let angle = positions[t] as f64 * 10_000f64.powf(-((d - 2) as f64) / d as f64);
                let want = pre[at(t, h, d / 2 - 1)] * angle.cos() as f32;
                assert!((q[at(t, h, d / 2 - 1)] - want).abs() < 1e-5);
                for c in (0..d).filter(|&c| c != d - 1 && c != d / 2 - 1) {
                    assert_eq!(q[at(t, h, c)], plain[at(t, h, c)]);
                }
                for c in 0..d {
                    assert_eq!(q[at(t, h + 1, c)], plain[at(t, h + 1, c)], "other heads");
                }
            }
        }
        let vals: Vec<f32> = (0..3)
            .flat_map(|t| [pre[at(t, 0, d - 1)], pre[at(t, 2, d - 1)]])
            .collect();
        assert!(
            evicts > 0 && evicts < 6,
            "decisions on both sides: {evicts} {vals:?}"
        );
    }
}
