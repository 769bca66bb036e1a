//! The decoder-only transformer shared by Llama, Qwen2 and Qwen3: embedding,
//! `num_layers` pre-norm blocks (attention, SwiGLU MLP), final norm, lm head.
//!
//! Weights are f32 on the backend device, linear weights stored `[in, out]`
//! with q/k/v and gate/up fused so a decode step reads each weight once. The
//! KV cache is not in here: the caller's [`KvStore`] is passed into every
//! forward pass.

use burn::prelude::*;

use super::formats::vars::Vars;
use super::layers::attention::Attention;
use super::layers::dms::{DmsConfig, DmsDecision};
use super::layers::linear::{DecodeWeights, Linear};
use super::layers::mlp::Mlp;
use super::layers::norm::RmsNorm;
use super::layers::rope::{Rope, RopeTables};
use super::{LoadError, ModelConfig, WeightSource};
use crate::kv::{AttentionBackend, DmsParams, KvShape, KvStore, SeqId};

/// One pre-norm block.
#[derive(Debug, Clone)]
struct Block<B: AttentionBackend> {
    input_norm: RmsNorm<B>,
    attn: Attention<B>,
    post_norm: RmsNorm<B>,
    mlp: Mlp<B>,
}

/// A loaded model, ready for prefill and decode over a [`KvStore`].
#[derive(Debug, Clone)]
pub struct Transformer<B: AttentionBackend> {
    config: ModelConfig,
    /// `[vocab, hidden]`
    embed: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    /// `[hidden, vocab]`; a transposed view of `embed` when tied.
    lm_head: Linear<B>,
    rope: Rope,
    device: B::Device,
}

impl<B: AttentionBackend> Block<B> {
    /// One block from its place in the checkpoint (`model.layers.{i}`).
    fn load(
        vars: &Vars<B>,
        config: &ModelConfig,
        dms: Option<&DmsConfig>,
    ) -> Result<Self, LoadError> {
        let (hidden, eps) = (config.hidden_size, config.rms_norm_eps);
        let attn = Attention::load(&vars.pp("self_attn"), config, dms)?;
        let mlp = Mlp::load(&vars.pp("mlp"), config)?;
        Ok(Self {
            input_norm: RmsNorm::load(&vars.pp("input_layernorm"), hidden, eps)?,
            attn,
            post_norm: RmsNorm::load(&vars.pp("post_attention_layernorm"), hidden, eps)?,
            mlp,
        })
    }
}

impl<B: AttentionBackend> Transformer<B> {
    /// Loads every tensor `config` calls for from `weights` onto `device`.
    ///
    /// Tensors are read by their Hugging Face names; a tensor that is
    /// missing or has the wrong shape is an error naming it. Extra tensors
    /// are ignored. With `tie_word_embeddings` the lm head is the embedding.
    pub fn load(
        config: &ModelConfig,
        weights: &dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        Self::load_with(config, weights, device, DecodeWeights::default())
    }

    /// [`Transformer::load`], choosing the form of the projection weights
    /// ([`DecodeWeights::resolve_for`] makes `Auto` concrete). On Flex with
    /// [`DecodeWeights::Quantized`] (or [`DecodeWeights::Q8Act`]), linear
    /// weights stored in a block format the CPU kernel reads also keep those
    /// blocks; with [`DecodeWeights::Bf16`] every projection (the lm head
    /// included) is stored in bf16.
    ///
    /// Each layer loads itself from its prefix ([`Vars`]): the embedding
    /// `model.embed_tokens`, blocks `model.layers.{i}`, the final norm
    /// `model.norm`, and `lm_head` unless tied.
    pub fn load_with(
        config: &ModelConfig,
        weights: &dyn WeightSource,
        device: &B::Device,
        decode: DecodeWeights,
    ) -> Result<Self, LoadError> {
        let (vocab, hidden) = (config.vocab_size, config.hidden_size);
        let vars = Vars::<B>::new(weights, device).with_decode(decode);
        let dms = dms_config(config, &vars);
        let model = vars.pp("model");
        let embed = model.pp("embed_tokens").tensor("weight", [vocab, hidden])?;
        let blocks = (0..config.num_layers)
            .map(|i| Block::load(&model.pp(format!("layers.{i}")), config, dms.as_ref()))
            .collect::<Result<_, _>>()?;
        let norm = RmsNorm::load(&model.pp("norm"), hidden, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings {
            Linear::load_tied(&model.pp("embed_tokens"), &embed)?
        } else {
            Linear::load(&vars.pp("lm_head"), vocab, hidden, false)?
        };
        Ok(Self {
            config: ModelConfig {
                dms,
                ..config.clone()
            },
            embed,
            blocks,
            norm,
            lm_head,
            rope: Rope::new(config),
            device: device.clone(),
        })
    }

    /// Bytes of weights one decode step reads: the f32 count of
    /// [`ModelConfig::f32_weight_bytes`], less what projections kept in
    /// blocks or bf16 save, and less an untied embedding table (a step
    /// gathers one row of it per sequence; a tied one is the lm head).
    pub fn decode_weight_bytes(&self) -> u64 {
        let saved: u64 = self
            .linears()
            .map(|l| l.f32_weight_bytes() - l.decode_weight_bytes())
            .sum();
        let unread_embed = if self.config.tie_word_embeddings {
            0
        } else {
            4 * (self.config.vocab_size as u64 - 1) * self.config.hidden_size as u64
        };
        self.config.f32_weight_bytes() - unread_embed - saved
    }

    /// The form the projections' weights took: `Quantized` when decode
    /// steps stream blocks, else the dtype the weights are stored in.
    pub fn weights_form(&self) -> DecodeWeights {
        if self.linears().any(Linear::int8_activations) {
            DecodeWeights::Q8Act
        } else if self.linears().any(Linear::has_blocks) {
            DecodeWeights::Quantized
        } else if self.lm_head.weight_dtype() == burn::tensor::DType::BF16 {
            DecodeWeights::Bf16
        } else if self.lm_head.weight_dtype() == burn::tensor::DType::F16 {
            DecodeWeights::F16
        } else {
            DecodeWeights::F32
        }
    }

    /// Every projection, the lm head last.
    fn linears(&self) -> impl Iterator<Item = &Linear<B>> {
        self.blocks
            .iter()
            .flat_map(|b| b.attn.linears().into_iter().chain(b.mlp.linears()))
            .chain([&self.lm_head])
    }

    /// The configuration the model was loaded with.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The checkpoint's DMS parameters (`None` for a model without DMS):
    /// what [`crate::kv::CachePolicy::resolve`] fills `dms` fields from.
    pub fn dms_params(&self) -> Option<DmsParams> {
        self.config.dms.as_ref().map(DmsConfig::params)
    }

    /// The device holding the weights.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The shape of the KV store this model writes.
    pub fn kv_shape(&self) -> KvShape {
        KvShape {
            layers: self.config.num_layers,
            kv_heads: self.config.num_kv_heads,
            head_dim: self.config.head_dim,
        }
    }

    /// Logits for every prompt position.
    ///
    /// Runs `tokens` through the model as the continuation of `seq`: RoPE
    /// positions start at `store.position(seq)`, keys/values are appended to
    /// the store, and the position advances by `tokens.len()`. A fresh
    /// sequence (position 0) gets dense causal attention over the chunk; a
    /// sequence that already holds entries is run token by token through
    /// the decode path, so earlier entries are attended.
    ///
    /// # Shapes
    /// Returns `[t, vocab]`, row `i` predicting the token after `tokens[i]`.
    ///
    /// # Panics
    /// If `tokens` is empty or holds an id ≥ `vocab_size`.
    pub fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Tensor<B, 2> {
        let h = self.prefill_hidden(store, seq, tokens);
        self.logits(h)
    }

    /// Like [`prefill`](Self::prefill), but only the last position's logits
    /// (skips the `[t, vocab]` lm-head product on long prompts).
    ///
    /// # Shapes
    /// Returns `[1, vocab]`.
    pub fn prefill_last(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Tensor<B, 2> {
        let h = self.prefill_hidden(store, seq, tokens);
        let [t, _] = h.dims();
        self.logits(h.narrow(0, t - 1, 1))
    }

    /// One decode step: token `tokens[i]` appended to `seqs[i]`, each at its
    /// own position, attention through the backend's decode kernel.
    ///
    /// # Shapes
    /// Returns `[batch, vocab]` with `batch = seqs.len()`.
    ///
    /// # Panics
    /// If `seqs` and `tokens` differ in length, `seqs` is empty or repeats a
    /// sequence, or a token id is ≥ `vocab_size`.
    pub fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Tensor<B, 2> {
        let _step = crate::model::kernels::gemv::decode_step();
        let h = self.decode_hidden(store, seqs, tokens);
        self.logits(h)
    }

    /// [`decode`](Self::decode) with the logits read to the host
    /// (`[batch * vocab]`, row-major). On a backend that
    /// [defers DMS decisions](AttentionBackend::defers_dms_decisions), every
    /// layer's decisions come back in the same read as the logits — one
    /// host synchronisation per step — and are applied to the store then
    /// (the next step's placement is the first to need them).
    pub fn decode_host(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        let _step = crate::model::kernels::gemv::decode_step();
        let (h, pending) = self.decode_hidden_deferred(store, seqs, tokens, true);
        // Half-precision logits are read as they are and widened on the
        // host (exactly, as a cast would): no cast launch, half the bytes.
        let logits = self.logits_as_computed(h);
        if pending.is_empty() {
            return crate::profile::read_back(logits);
        }
        let mut tx = burn::tensor::Transaction::default().register(logits);
        for (_, t) in &pending {
            tx = tx.register(t.clone());
        }
        let mut bytes = 0;
        let mut data = tx.execute().into_iter().map(|d| {
            bytes += d.as_bytes().len();
            d.convert::<f32>()
                .into_vec::<f32>()
                .expect("converted to f32 above")
        });
        let logits = data.next().expect("logits registered first");
        for ((layer, _), values) in pending.into_iter().zip(&mut data) {
            let decisions = self.blocks[layer]
                .attn
                .decide(&values)
                .expect("only DMS layers defer");
            store
                .decide_decoded(layer, seqs, &decisions)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        drop(data);
        // One read-back: the logits and every layer's decisions.
        crate::profile::read_from::<B>(bytes);
        logits
    }

    /// `[t] → [t, hidden]` final hidden states (after the final norm).
    fn prefill_hidden(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Tensor<B, 2> {
        assert!(!tokens.is_empty(), "prefill of an empty token list");
        // A cache policy prefills chunks anywhere (the store attends over
        // what it kept) where the backend can; dense, and DMS on a device,
        // continue token by token.
        let p0 = store.position(seq);
        if p0 > 0 && !B::continues_policy_prefill(store.policy()) {
            let rows = tokens
                .iter()
                .map(|&tok| self.decode_hidden(store, &[seq], &[tok]))
                .collect();
            return Tensor::cat(rows, 0);
        }
        let positions: Vec<usize> = (p0..p0 + tokens.len()).collect();
        let rope = self.rope.tables(&positions, &self.device);
        let h = self.blocks_forward(self.embed(tokens), |b, layer, normed, x| {
            b.attn.prefill(normed, x, &rope, store, layer, seq)
        });
        store.advance(seq, tokens.len());
        h
    }

    /// Every block over `x` (`[n, hidden]`), `attend` running a block's
    /// attention on its normed input and residual stream; returns the final
    /// norm of the last residual stream. Each residual add is fused with
    /// the norm after it ([`RmsNorm::add_forward`]).
    fn blocks_forward(
        &self,
        mut x: Tensor<B, 2>,
        mut attend: impl FnMut(&Block<B>, usize, Tensor<B, 2>, Tensor<B, 2>) -> Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let Some(first) = self.blocks.first() else {
            return self.norm.forward(x);
        };
        // Each norm is written in the dtype its projection reads (a
        // half-precision weight's on a device, else f32), the final norm
        // in the lm head's.
        let mut normed = first
            .input_norm
            .forward_as(x.clone(), first.attn.input_dtype());
        for (layer, b) in self.blocks.iter().enumerate() {
            let a = attend(b, layer, normed, x.clone());
            let (x1, n1) = b.post_norm.add_forward_as(x, a, b.mlp.input_dtype());
            let m = b.mlp.forward(n1);
            let (next, dtype) = match self.blocks.get(layer + 1) {
                Some(n) => (&n.input_norm, n.attn.input_dtype()),
                None => (&self.norm, self.lm_head.input_dtype()),
            };
            (x, normed) = next.add_forward_as(x1, m, dtype);
        }
        normed
    }

    /// `[batch] → [batch, hidden]` final-normed hidden states of one decode
    /// step.
    fn decode_hidden(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Tensor<B, 2> {
        self.decode_hidden_deferred(store, seqs, tokens, false).0
    }

    /// [`decode_hidden`](Self::decode_hidden); with `defer`, the DMS layers'
    /// decision logits (`[batch, kv_heads]` per layer, with the layer) that
    /// the caller must read and apply (`KvStore::decide_decoded`) before
    /// the next step.
    fn decode_hidden_deferred(
        &self,
        store: &mut KvStore,
        seqs: &[SeqId],
        tokens: &[u32],
        defer: bool,
    ) -> (Tensor<B, 2>, Vec<(usize, Tensor<B, 2>)>) {
        assert_eq!(seqs.len(), tokens.len(), "one token per sequence");
        assert!(!seqs.is_empty(), "decode of an empty batch");
        let positions: Vec<usize> = seqs.iter().map(|&s| store.position(s)).collect();
        let rope: RopeTables<B> = self.rope.tables(&positions, &self.device);
        // Every layer's writes planned at once (on cubecl: one upload of
        // the step's slot tables); the DMS layers defer their decisions
        // exactly when `defer` holds and the model has DMS heads.
        B::plan_decode_step(
            store,
            seqs,
            &self.device,
            defer && self.config.dms.is_some(),
        );
        let mut pending = Vec::new();
        let h = self.blocks_forward(self.embed(tokens), |b, layer, normed, x| {
            let (out, p) = b
                .attn
                .decode_deferred(normed, x, &rope, store, layer, seqs, defer);
            pending.extend(p.map(|p| (layer, p)));
            out
        });
        for &s in seqs {
            store.advance(s, 1);
        }
        (h, pending)
    }

    /// `[n] → [n, hidden]` embedding rows.
    fn embed(&self, tokens: &[u32]) -> Tensor<B, 2> {
        embed_rows(&self.embed, tokens)
    }

    /// `[n, hidden] → [n, vocab]`: the lm head over final-normed states,
    /// in f32.
    fn logits(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        let logits = self.logits_as_computed(h);
        if logits.dtype() == burn::tensor::DType::F32 {
            logits
        } else {
            logits.cast(burn::tensor::FloatDType::F32)
        }
    }

    /// [`logits`](Self::logits) in the dtype the lm head computes them in:
    /// a half-precision weight's on a device (the final norm wrote its
    /// input in that dtype, [`Linear::input_dtype`]), else f32.
    fn logits_as_computed(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        self.lm_head.forward_half(h)
    }
}

/// Rows of `embed` (`[vocab, hidden]`) for `tokens`: `[n, hidden]`.
///
/// # Panics
/// If a token id is ≥ `vocab`.
pub(crate) fn embed_rows<B: Backend>(embed: &Tensor<B, 2>, tokens: &[u32]) -> Tensor<B, 2> {
    let vocab = embed.dims()[0];
    let ids: Vec<i64> = tokens
        .iter()
        .map(|&t| {
            assert!(
                (t as usize) < vocab,
                "token id {t} out of vocabulary ({vocab})"
            );
            i64::from(t)
        })
        .collect();
    crate::profile::upload_to::<B>(8 * ids.len());
    let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [tokens.len()]), &embed.device());
    embed.clone().select(0, ids)
}

/// The DMS configuration as run: the config's, switched to the adapter when
/// adapter tensors are present (with MO's defaults when the config has no
/// `dms_*` field at all).
fn dms_config<B: Backend>(config: &ModelConfig, vars: &Vars<B>) -> Option<DmsConfig> {
    let adapter = vars.contains("model.layers.0.self_attn.dms_proj_alpha.weight");
    match (&config.dms, adapter) {
        (Some(c), true) => Some(DmsConfig {
            decision: DmsDecision::Adapter,
            ..c.clone()
        }),
        (Some(c), false) => Some(c.clone()),
        (None, true) => Some(DmsConfig {
            alpha_scale: DmsConfig::DEFAULT_ALPHA_SCALE,
            alpha_offset: DmsConfig::DEFAULT_ALPHA_OFFSET,
            window: DmsConfig::DEFAULT_WINDOW,
            cr: None,
            decision: DmsDecision::Adapter,
            shifted: true,
            per_layer: false,
        }),
        (None, false) => None,
    }
}
