//! The base model's weights as constants of the training graph: the same
//! tensors the inference [`Transformer`](crate::model::Transformer) loads,
//! read by their Hugging Face names from any [`WeightSource`] (GGUF or
//! safetensors), never marked for gradients. Student and teacher share
//! this one copy.

use burn::prelude::*;

use crate::model::formats::vars::Vars;
use crate::model::layers::attention::AttentionWeights;
use crate::model::layers::linear::Linear;
use crate::model::layers::mlp::Mlp;
use crate::model::layers::norm::RmsNorm;
use crate::model::layers::rope::Rope;
use crate::model::{LoadError, ModelConfig, WeightSource};

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

impl<B: Backend> FrozenModel<B> {
    /// Loads every base tensor `config` calls for. DMS tensors (adapter) are
    /// not read here; see [`super::DecisionParams::load_or_init`].
    pub fn load(
        config: &ModelConfig,
        w: &dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let (vocab, hidden, eps) = (config.vocab_size, config.hidden_size, config.rms_norm_eps);
        let vars = Vars::<B>::new(w, device);
        let model = vars.pp("model");
        let embed = model.pp("embed_tokens").tensor("weight", [vocab, hidden])?;
        let mut blocks = Vec::with_capacity(config.num_layers);
        for i in 0..config.num_layers {
            let layer = model.pp(format!("layers.{i}"));
            let AttentionWeights { qkv, o, qk_norm } =
                AttentionWeights::load(&layer.pp("self_attn"), config)?;
            let mlp = Mlp::load(&layer.pp("mlp"), config)?;
            blocks.push(FrozenBlock {
                input_norm: RmsNorm::load(&layer.pp("input_layernorm"), hidden, eps)?,
                qkv,
                o,
                qk_norm,
                post_norm: RmsNorm::load(&layer.pp("post_attention_layernorm"), hidden, eps)?,
                mlp,
            });
        }
        let norm = RmsNorm::load(&model.pp("norm"), hidden, eps)?;
        let lm_head = if config.tie_word_embeddings {
            Linear::from_in_out(embed.clone().transpose())
        } else {
            Linear::load(&vars.pp("lm_head"), vocab, hidden, false)?
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
