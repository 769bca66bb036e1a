//! The base model's weights as constants of the training graph: the same
//! tensors the inference [`Transformer`](crate::model::Transformer) loads,
//! read by their Hugging Face names from any [`WeightSource`] (GGUF or
//! safetensors), never marked for gradients. Student and teacher share
//! this one copy.

use burn::prelude::*;

use crate::model::layers::linear::Linear;
use crate::model::layers::mlp::Mlp;
use crate::model::layers::norm::RmsNorm;
use crate::model::layers::rope::Rope;
use crate::model::{HostTensor, LoadError, ModelConfig, WeightSource};

/// One pre-norm block's frozen weights.
#[derive(Debug, Clone)]
pub struct FrozenBlock<B: Backend> {
    pub input_norm: RmsNorm<B>,
    /// `[hidden, (n_heads + 2·kv_heads)·head_dim]` fused q/k/v.
    pub qkv: Linear<B>,
    /// `[n_heads·head_dim, hidden]`
    pub o: Linear<B>,
    /// Per-head q and k norms (Qwen3).
    pub qk_norm: Option<(RmsNorm<B>, RmsNorm<B>)>,
    pub post_norm: RmsNorm<B>,
    pub mlp: Mlp<B>,
}

/// The whole frozen base.
#[derive(Debug, Clone)]
pub struct FrozenModel<B: Backend> {
    pub config: ModelConfig,
    /// `[vocab, hidden]`
    pub embed: Tensor<B, 2>,
    pub blocks: Vec<FrozenBlock<B>>,
    pub norm: RmsNorm<B>,
    /// `[hidden, vocab]`
    pub lm_head: Linear<B>,
    pub rope: Rope,
    pub device: B::Device,
}

fn get(w: &dyn WeightSource, name: &str, shape: &[usize]) -> Result<HostTensor, LoadError> {
    if !w.contains(name) {
        return Err(LoadError::MissingTensor {
            path: w.origin().to_path_buf(),
            name: name.to_string(),
        });
    }
    let t = w.load(name)?;
    if t.shape != shape {
        return Err(LoadError::ShapeMismatch {
            path: w.origin().to_path_buf(),
            name: name.to_string(),
            expected: shape.to_vec(),
            got: t.shape,
        });
    }
    Ok(t)
}

fn vector<B: Backend>(
    w: &dyn WeightSource,
    name: &str,
    len: usize,
    device: &B::Device,
) -> Result<Tensor<B, 1>, LoadError> {
    let t = get(w, name, &[len])?;
    Ok(Tensor::from_data(TensorData::new(t.data, [len]), device))
}

impl<B: Backend> FrozenModel<B> {
    /// Loads every base tensor `config` calls for. DMS tensors (adapter) are
    /// not read here; see [`super::DecisionParams::load_or_init`].
    pub fn load(
        config: &ModelConfig,
        w: &dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let ModelConfig {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: inter,
            num_heads: n_heads,
            num_kv_heads: kv_heads,
            head_dim: d,
            rms_norm_eps: eps,
            ..
        } = *config;
        let embed_host = get(w, "model.embed_tokens.weight", &[vocab, hidden])?;
        let embed = Tensor::from_data(TensorData::new(embed_host.data, [vocab, hidden]), device);
        let mut blocks = Vec::with_capacity(config.num_layers);
        for i in 0..config.num_layers {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            let q = get(w, &format!("{a}.q_proj.weight"), &[n_heads * d, hidden])?;
            let k = get(w, &format!("{a}.k_proj.weight"), &[kv_heads * d, hidden])?;
            let v = get(w, &format!("{a}.v_proj.weight"), &[kv_heads * d, hidden])?;
            let mut data = q.data;
            data.extend(k.data);
            data.extend(v.data);
            let qkv_w = HostTensor {
                shape: vec![(n_heads + 2 * kv_heads) * d, hidden],
                data,
            };
            let qkv_b = if config.attention_bias {
                let mut data = Vec::new();
                for (n, out) in [("q", n_heads * d), ("k", kv_heads * d), ("v", kv_heads * d)] {
                    data.extend(get(w, &format!("{a}.{n}_proj.bias"), &[out])?.data);
                }
                Some(HostTensor {
                    shape: vec![data.len()],
                    data,
                })
            } else {
                None
            };
            let o = get(w, &format!("{a}.o_proj.weight"), &[hidden, n_heads * d])?;
            let qk_norm = if config.qk_norm {
                let qn = vector(w, &format!("{a}.q_norm.weight"), d, device)?;
                let kn = vector(w, &format!("{a}.k_norm.weight"), d, device)?;
                Some((RmsNorm::new(qn, eps), RmsNorm::new(kn, eps)))
            } else {
                None
            };
            let mlp = |n: &str| format!("{p}.mlp.{n}_proj.weight");
            let mut gu = get(w, &mlp("gate"), &[inter, hidden])?.data;
            gu.extend(get(w, &mlp("up"), &[inter, hidden])?.data);
            let gate_up = HostTensor {
                shape: vec![2 * inter, hidden],
                data: gu,
            };
            let down = get(w, &mlp("down"), &[hidden, inter])?;
            let norm = |n: &str| -> Result<RmsNorm<B>, LoadError> {
                Ok(RmsNorm::new(
                    vector(w, &format!("{p}.{n}.weight"), hidden, device)?,
                    eps,
                ))
            };
            blocks.push(FrozenBlock {
                input_norm: norm("input_layernorm")?,
                qkv: Linear::from_hf(qkv_w, qkv_b, device),
                o: Linear::from_hf(o, None, device),
                qk_norm,
                post_norm: norm("post_attention_layernorm")?,
                mlp: Mlp::new(
                    Linear::from_hf(gate_up, None, device),
                    Linear::from_hf(down, None, device),
                ),
            });
        }
        let norm = RmsNorm::new(vector(w, "model.norm.weight", hidden, device)?, eps);
        let lm_head = if config.tie_word_embeddings {
            Linear::from_in_out(embed.clone().transpose())
        } else {
            Linear::from_hf(get(w, "lm_head.weight", &[vocab, hidden])?, None, device)
        };
        Ok(Self {
            config: config.clone(),
            embed,
            blocks,
            norm,
            lm_head,
            rope: Rope::new(config),
            device: device.clone(),
        })
    }

    /// `[t] → [t, hidden]` embedding rows.
    ///
    /// # Panics
    /// If a token id is ≥ `vocab_size`.
    pub fn embed(&self, tokens: &[u32]) -> Tensor<B, 2> {
        crate::model::transformer::embed_rows(&self.embed, tokens)
    }
}
