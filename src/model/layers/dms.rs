//! DMS eviction decisions of a retrofitted checkpoint (`docs/method.md` §2): the
//! configuration read from `config.json`, and the per-layer decision head.
//!
//! Two variants. The released NVIDIA checkpoints repurpose a query neuron:
//! the last channel of the first query head of each GQA group, taken after
//! the q norm and before RoPE, gives `logit = q · alpha_scale −
//! alpha_offset`, and that channel is zeroed before and after RoPE (RoPE
//! would leak channel `d/2 − 1` into it). MO-trained checkpoints carry an
//! adapter instead: `dms_proj_alpha(dms_proj_alpha_norm(h))` on the residual
//! stream before the layer's input norm, with the same scale and offset.
//! A token asks for eviction when its logit is above 0.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kv::DmsParams;
use crate::model::formats::vars::Vars;
use crate::model::layers::linear::Linear;
use crate::model::layers::norm::RmsNorm;
use crate::model::{LoadError, ModelConfig};

/// Where a checkpoint's decisions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DmsDecision {
    /// `dms_separate_alpha = false`: the repurposed query neuron.
    QueryNeuron,
    /// `dms_separate_alpha = true`: `dms_proj_alpha_norm` + `dms_proj_alpha`.
    Adapter,
}

/// DMS hyperparameters of a checkpoint, from its `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmsConfig {
    /// `dms_alpha_scale`; default 100.
    pub alpha_scale: f64,
    /// `dms_initial_alpha_offset`; default 5.
    pub alpha_offset: f64,
    /// `dms_window_size`; default 512 (the released Qwen3-8B-DMS-8x).
    pub window: usize,
    /// `dms_cr`, the ratio the checkpoint was trained for (documentation).
    pub cr: Option<f64>,
    /// `dms_separate_alpha`, or the presence of adapter tensors.
    pub decision: DmsDecision,
    /// `dms_shifted` (a hyperscale field): the decision of token t + 1
    /// marks token t (NVIDIA, default true) rather than token t (FastDMS).
    pub shifted: bool,
    /// `dms_alpha_per = "layer"`: head 0 decides for every KV head.
    pub per_layer: bool,
}

impl DmsConfig {
    pub const DEFAULT_ALPHA_SCALE: f64 = 100.0;
    pub const DEFAULT_ALPHA_OFFSET: f64 = 5.0;
    pub const DEFAULT_WINDOW: usize = 512;

    /// The checkpoint's defaults for the DMS cache policy.
    pub fn params(&self) -> DmsParams {
        DmsParams {
            window: self.window,
            shifted: self.shifted,
        }
    }
}

/// One layer's decision head.
#[derive(Debug, Clone)]
pub enum DmsHead<B: Backend> {
    Neuron {
        scale: f32,
        offset: f32,
        /// `[1, n_heads, head_dim]`: 1 everywhere but 0 at the borrowed
        /// channel of each group's first head.
        keep: Tensor<B, 3>,
        group: usize,
        per_layer: bool,
    },
    Adapter {
        norm: RmsNorm<B>,
        /// `[hidden] → [kv_heads]`
        proj: Linear<B>,
        scale: f32,
        offset: f32,
        per_layer: bool,
    },
}

impl<B: Backend> DmsHead<B> {
    /// The neuron head for `n_heads` query heads in groups of `group`.
    pub fn neuron(
        cfg: &DmsConfig,
        n_heads: usize,
        group: usize,
        head_dim: usize,
        device: &B::Device,
    ) -> Self {
        let mut keep = vec![1.0f32; n_heads * head_dim];
        for h in (0..n_heads).step_by(group) {
            keep[h * head_dim + head_dim - 1] = 0.0;
        }
        Self::Neuron {
            scale: cfg.alpha_scale as f32,
            offset: cfg.alpha_offset as f32,
            keep: Tensor::from_data(TensorData::new(keep, [1, n_heads, head_dim]), device),
            group,
            per_layer: cfg.per_layer,
        }
    }

    /// The head `cfg.decision` calls for, a layer's `self_attn` being `vars`:
    /// the query neuron, or the adapter's `dms_proj_alpha_norm.weight`
    /// `[hidden]` and `dms_proj_alpha.weight` `[kv_heads, hidden]` (+
    /// `.bias` with `attention_bias`), kept in f32 in every weight form.
    pub fn load(vars: &Vars<B>, cfg: &DmsConfig, config: &ModelConfig) -> Result<Self, LoadError> {
        Ok(match cfg.decision {
            DmsDecision::QueryNeuron => Self::neuron(
                cfg,
                config.num_heads,
                config.group_size(),
                config.head_dim,
                vars.device(),
            ),
            DmsDecision::Adapter => {
                let vars = vars.plain();
                let (hidden, kv_heads) = (config.hidden_size, config.num_kv_heads);
                Self::Adapter {
                    norm: RmsNorm::load(
                        &vars.pp("dms_proj_alpha_norm"),
                        hidden,
                        config.rms_norm_eps,
                    )?,
                    proj: Linear::load(
                        &vars.pp("dms_proj_alpha"),
                        kv_heads,
                        hidden,
                        config.attention_bias,
                    )?,
                    scale: cfg.alpha_scale as f32,
                    offset: cfg.alpha_offset as f32,
                    per_layer: cfg.per_layer,
                }
            }
        })
    }

    /// The neuron head's parameters for the fused q/k/v kernel
    /// ([`crate::model::kernels::cube_ops::qkv_rope_neuron`]); `None` for
    /// the adapter.
    pub fn query_neuron(&self) -> Option<crate::model::kernels::cube_ops::QueryNeuron> {
        match self {
            Self::Neuron {
                scale,
                offset,
                group,
                ..
            } => Some(crate::model::kernels::cube_ops::QueryNeuron {
                group: *group,
                scale: *scale,
                offset: *offset,
            }),
            Self::Adapter { .. } => None,
        }
    }

    /// Decision logits from the pre-RoPE queries, and the queries with the
    /// borrowed channel zeroed (the adapter leaves q alone).
    ///
    /// # Shapes
    /// `q`: `[n, n_heads, head_dim]`; `resid`: `[n, hidden]`, the residual
    /// stream before the input norm; logits `[n, kv_heads]`.
    pub fn logits(&self, q: Tensor<B, 3>, resid: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 3>) {
        match self {
            Self::Neuron {
                scale,
                offset,
                keep,
                group,
                ..
            } => {
                let [n, n_heads, d] = q.dims();
                let kv_heads = n_heads / group;
                let neuron = q
                    .clone()
                    .narrow(2, d - 1, 1)
                    .reshape([n, kv_heads, *group])
                    .narrow(2, 0, 1)
                    .reshape([n, kv_heads]);
                let logits = neuron.mul_scalar(*scale).sub_scalar(*offset);
                (logits, q.mul(keep.clone()))
            }
            Self::Adapter {
                norm,
                proj,
                scale,
                offset,
                ..
            } => {
                // On the cubecl backends: one launch for the norm, the
                // projection, the scale and the offset.
                let w = proj.weight_out_in();
                let fused = w.as_ref().and_then(|w| {
                    let adapter = crate::model::kernels::cube_ops::DmsAdapter {
                        norm: norm.weight(),
                        eps: norm.eps(),
                        proj: w,
                        bias: proj.bias(),
                        scale: *scale,
                        offset: *offset,
                    };
                    crate::model::kernels::cube_ops::dms_adapter(&resid, adapter)
                });
                if let Some(logits) = fused {
                    return (logits, q);
                }
                let logits = proj.forward(norm.forward(resid));
                (logits.mul_scalar(*scale).sub_scalar(*offset), q)
            }
        }
    }

    /// Zero the borrowed channel again after RoPE (neuron only).
    ///
    /// # Shapes
    /// `q`: `[n, n_heads, head_dim]`.
    pub fn after_rope(&self, q: Tensor<B, 3>) -> Tensor<B, 3> {
        match self {
            Self::Neuron { keep, .. } => q.mul(keep.clone()),
            Self::Adapter { .. } => q,
        }
    }

    /// Evict (`logit > 0`) per token and KV head.
    ///
    /// # Shapes
    /// `logits`: `[n, kv_heads]`; returns `[n, kv_heads]`, row-major.
    pub fn decisions(&self, logits: Tensor<B, 2>) -> Vec<bool> {
        let [_, kv_heads] = logits.dims();
        self.decide(&crate::profile::read_back(logits), kv_heads)
    }

    /// [`decisions`](Self::decisions) from logits already on the host.
    ///
    /// # Shapes
    /// `values`: `[n, kv_heads]`, row-major; returns the same shape.
    pub fn decide(&self, values: &[f32], kv_heads: usize) -> Vec<bool> {
        let per_layer = match self {
            Self::Neuron { per_layer, .. } | Self::Adapter { per_layer, .. } => *per_layer,
        };
        values
            .chunks(kv_heads)
            .flat_map(|row| {
                let head0 = row[0] > 0.0;
                row.iter()
                    .map(move |&x| if per_layer { head0 } else { x > 0.0 })
            })
            .collect()
    }
}
