//! The decoder-only transformer shared by Llama, Qwen2 and Qwen3: embedding,
//! `num_layers` pre-norm blocks (attention, SwiGLU MLP), final norm, lm head.
//!
//! Weights are f32 on the backend device, linear weights stored `[in, out]`
//! with q/k/v and gate/up fused so a decode step reads each weight once. The
//! KV cache is not in here: the caller's [`KvStore`] is passed into every
//! forward pass.

use burn::backend::flex::Flex;
use burn::prelude::*;

use super::kernels::block_gemv::BlockWeight;
use super::layers::attention::{Attention, Heads};
use super::layers::dms::{DmsConfig, DmsDecision, DmsHead};
use super::layers::linear::{DecodeWeights, Linear};
use super::layers::mlp::Mlp;
use super::layers::norm::RmsNorm;
use super::layers::rope::{Rope, RopeTables};
use super::{HostTensor, LoadError, ModelConfig, WeightSource};
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

/// Loads tensors by Hugging Face name, checking presence and shape.
struct Loader<'a> {
    weights: &'a dyn WeightSource,
    /// Whether linear weights also keep their file's blocks for decode.
    blocks: bool,
    /// Whether those blocks are read with 8-bit activations (`q8act`).
    int8_activations: bool,
}

impl Loader<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor, LoadError> {
        if !self.weights.contains(name) {
            return Err(LoadError::MissingTensor {
                path: self.weights.origin().to_path_buf(),
                name: name.to_string(),
            });
        }
        let t = self.weights.load(name)?;
        if t.shape != shape || t.data.len() != t.numel() {
            return Err(LoadError::ShapeMismatch {
                path: self.weights.origin().to_path_buf(),
                name: name.to_string(),
                expected: shape.to_vec(),
                got: t.shape,
            });
        }
        Ok(t)
    }

    /// Several `[out_i, in]` weights stacked along `out` (fused projection).
    fn stacked(&self, parts: &[(String, usize)], inp: usize) -> Result<HostTensor, LoadError> {
        let total: usize = parts.iter().map(|(_, out)| out).sum();
        let mut data = Vec::with_capacity(total * inp);
        for (name, out) in parts {
            data.extend(self.get(name, &[*out, inp])?.data);
        }
        Ok(HostTensor {
            shape: vec![total, inp],
            data,
        })
    }

    /// The `[rows, cols]` weight `name` in its file's blocks, when they are
    /// wanted and the decode kernel reads their format.
    fn blocks(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Option<BlockWeight>, LoadError> {
        if !self.blocks {
            return Ok(None);
        }
        let reads =
            |b: &BlockWeight| self.int8_activations || BlockWeight::exact_kernel_reads(b.kind);
        Ok(self
            .weights
            .load_blocks(name)?
            .filter(|b| (b.rows, b.cols) == (rows, cols) && reads(b))
            .map(|b| b.with_int8_activations(self.int8_activations)))
    }

    /// [`Loader::blocks`] for a fused projection: `None` unless every part
    /// has blocks of one format.
    fn stacked_blocks(
        &self,
        parts: &[(String, usize)],
        inp: usize,
    ) -> Result<Option<BlockWeight>, LoadError> {
        let mut all = Vec::with_capacity(parts.len());
        for (name, out) in parts {
            match self.blocks(name, *out, inp)? {
                Some(b) => all.push(b),
                None => return Ok(None),
            }
        }
        Ok(BlockWeight::stack(&all))
    }

    fn vector<B: Backend>(
        &self,
        name: &str,
        len: usize,
        device: &B::Device,
    ) -> Result<Tensor<B, 1>, LoadError> {
        let t = self.get(name, &[len])?;
        Ok(Tensor::from_data(TensorData::new(t.data, [len]), device))
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
    /// blocks; with
    /// [`DecodeWeights::Bf16`] every projection (the lm head included) is
    /// stored in bf16.
    pub fn load_with(
        config: &ModelConfig,
        weights: &dyn WeightSource,
        device: &B::Device,
        decode: DecodeWeights,
    ) -> Result<Self, LoadError> {
        let on_flex = std::any::TypeId::of::<B>() == std::any::TypeId::of::<Flex>();
        let form = decode.resolve_for::<B>();
        let wd = form.weight_dtype();
        let ld = Loader {
            weights,
            blocks: on_flex && matches!(form, DecodeWeights::Quantized | DecodeWeights::Q8Act),
            int8_activations: form == DecodeWeights::Q8Act,
        };
        let ModelConfig {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: inter,
            num_heads: n_heads,
            num_kv_heads: n_kv_heads,
            head_dim,
            rms_norm_eps: eps,
            ..
        } = *config;
        let heads = Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        };
        let dms = dms_config(config, weights);
        let embed_host = ld.get("model.embed_tokens.weight", &[vocab, hidden])?;
        let embed: Tensor<B, 2> =
            Tensor::from_data(TensorData::new(embed_host.data, [vocab, hidden]), device);

        let mut blocks = Vec::with_capacity(config.num_layers);
        for i in 0..config.num_layers {
            let p = format!("model.layers.{i}");
            let proj = |n: &str| format!("{p}.self_attn.{n}_proj");
            let qkv_parts = [
                (proj("q"), n_heads * head_dim),
                (proj("k"), n_kv_heads * head_dim),
                (proj("v"), n_kv_heads * head_dim),
            ];
            let qkv_names = qkv_parts
                .clone()
                .map(|(n, out)| (format!("{n}.weight"), out));
            let qkv_w = ld.stacked(&qkv_names, hidden)?;
            let qkv_blocks = ld.stacked_blocks(&qkv_names, hidden)?;
            let qkv_b = if config.attention_bias {
                let mut data = Vec::new();
                for (n, out) in &qkv_parts {
                    data.extend(ld.get(&format!("{n}.bias"), &[*out])?.data);
                }
                Some(HostTensor {
                    shape: vec![data.len()],
                    data,
                })
            } else {
                None
            };
            let o_name = format!("{}.weight", proj("o"));
            let o = ld.get(&o_name, &[hidden, n_heads * head_dim])?;
            let o_blocks = ld.blocks(&o_name, hidden, n_heads * head_dim)?;
            let qk_norm = if config.qk_norm {
                let norm = |n: &str| -> Result<RmsNorm<B>, LoadError> {
                    let w =
                        ld.vector(&format!("{p}.self_attn.{n}_norm.weight"), head_dim, device)?;
                    Ok(RmsNorm::new(w, eps))
                };
                Some((norm("q")?, norm("k")?))
            } else {
                None
            };
            let attn = Attention::new(
                Linear::from_hf(qkv_w, qkv_b, device)
                    .with_blocks(qkv_blocks)
                    .with_dtype(wd),
                Linear::from_hf(o, None, device)
                    .with_blocks(o_blocks)
                    .with_dtype(wd),
                qk_norm,
                heads,
            );
            let attn = match &dms {
                None => attn,
                Some(cfg) => attn.with_dms(dms_head(&ld, cfg, config, i, device)?),
            };
            let mlp_name = |n: &str| format!("{p}.mlp.{n}_proj.weight");
            let gate_up_names = [(mlp_name("gate"), inter), (mlp_name("up"), inter)];
            let gate_up = ld.stacked(&gate_up_names, hidden)?;
            let gate_up_blocks = ld.stacked_blocks(&gate_up_names, hidden)?;
            let down = ld.get(&mlp_name("down"), &[hidden, inter])?;
            let down_blocks = ld.blocks(&mlp_name("down"), hidden, inter)?;
            let mlp = Mlp::new(
                Linear::from_hf(gate_up, None, device)
                    .with_blocks(gate_up_blocks)
                    .with_dtype(wd),
                Linear::from_hf(down, None, device)
                    .with_blocks(down_blocks)
                    .with_dtype(wd),
            );
            let norm = |n: &str| -> Result<RmsNorm<B>, LoadError> {
                let w = ld.vector(&format!("{p}.{n}.weight"), hidden, device)?;
                Ok(RmsNorm::new(w, eps))
            };
            blocks.push(Block {
                input_norm: norm("input_layernorm")?,
                attn,
                post_norm: norm("post_attention_layernorm")?,
                mlp,
            });
        }
        let norm = RmsNorm::new(ld.vector("model.norm.weight", hidden, device)?, eps);
        let lm_head = if config.tie_word_embeddings {
            Linear::from_in_out(embed.clone().transpose()).with_blocks(ld.blocks(
                "model.embed_tokens.weight",
                vocab,
                hidden,
            )?)
        } else {
            Linear::from_hf(ld.get("lm_head.weight", &[vocab, hidden])?, None, device)
                .with_blocks(ld.blocks("lm_head.weight", vocab, hidden)?)
        }
        .with_dtype(wd);
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
        let h = self.decode_hidden(store, seqs, tokens);
        self.logits(h)
    }

    /// `[t] → [t, hidden]` final hidden states (before the last norm).
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
        let mut x = self.embed(tokens);
        for (layer, b) in self.blocks.iter().enumerate() {
            let normed = b.input_norm.forward(x.clone());
            let a = b.attn.prefill(normed, x.clone(), &rope, store, layer, seq);
            x = x + a;
            x = x.clone() + b.mlp.forward(b.post_norm.forward(x));
        }
        store.advance(seq, tokens.len());
        x
    }

    /// `[batch] → [batch, hidden]` final hidden states of one decode step.
    fn decode_hidden(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Tensor<B, 2> {
        assert_eq!(seqs.len(), tokens.len(), "one token per sequence");
        assert!(!seqs.is_empty(), "decode of an empty batch");
        let positions: Vec<usize> = seqs.iter().map(|&s| store.position(s)).collect();
        let rope: RopeTables<B> = self.rope.tables(&positions, &self.device);
        let mut x = self.embed(tokens);
        for (layer, b) in self.blocks.iter().enumerate() {
            let normed = b.input_norm.forward(x.clone());
            let a = b.attn.decode(normed, x.clone(), &rope, store, layer, seqs);
            x = x + a;
            x = x.clone() + b.mlp.forward(b.post_norm.forward(x));
        }
        for &s in seqs {
            store.advance(s, 1);
        }
        x
    }

    /// `[n] → [n, hidden]` embedding rows.
    fn embed(&self, tokens: &[u32]) -> Tensor<B, 2> {
        embed_rows(&self.embed, tokens)
    }

    /// `[n, hidden] → [n, vocab]`: final norm and lm head.
    fn logits(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        self.lm_head.forward(self.norm.forward(h))
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
    let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [tokens.len()]), &embed.device());
    embed.clone().select(0, ids)
}

/// The DMS configuration as run: the config's, switched to the adapter when
/// adapter tensors are present (with MO's defaults when the config has no
/// `dms_*` field at all).
fn dms_config(config: &ModelConfig, weights: &dyn WeightSource) -> Option<DmsConfig> {
    let adapter = weights.contains("model.layers.0.self_attn.dms_proj_alpha.weight");
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

/// Layer `i`'s DMS decision head: the query neuron, or the adapter's
/// `dms_proj_alpha_norm.weight` `[hidden]` and `dms_proj_alpha.weight`
/// `[kv_heads, hidden]` (+ `.bias` with `attention_bias`).
fn dms_head<B: Backend>(
    ld: &Loader<'_>,
    cfg: &DmsConfig,
    config: &ModelConfig,
    i: usize,
    device: &B::Device,
) -> Result<DmsHead<B>, LoadError> {
    let (hidden, kv_heads) = (config.hidden_size, config.num_kv_heads);
    Ok(match cfg.decision {
        DmsDecision::QueryNeuron => DmsHead::neuron(
            cfg,
            config.num_heads,
            config.group_size(),
            config.head_dim,
            device,
        ),
        DmsDecision::Adapter => {
            let p = format!("model.layers.{i}.self_attn.dms_proj_alpha");
            let norm = RmsNorm::new(
                ld.vector(&format!("{p}_norm.weight"), hidden, device)?,
                config.rms_norm_eps,
            );
            let w = ld.get(&format!("{p}.weight"), &[kv_heads, hidden])?;
            let b = if config.attention_bias {
                Some(ld.get(&format!("{p}.bias"), &[kv_heads])?)
            } else {
                None
            };
            DmsHead::Adapter {
                norm,
                proj: Linear::from_hf(w, b, device),
                scale: cfg.alpha_scale as f32,
                offset: cfg.alpha_offset as f32,
                per_layer: cfg.per_layer,
            }
        }
    })
}
