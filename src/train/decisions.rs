//! The trainable part of the student: the DMS decision parameters of every
//! layer, as a burn [`Module`] the optimiser updates. Nothing else in the
//! training graph requires a gradient.

use burn::module::{Module, Param};
use burn::prelude::*;

use super::config::Variant;
use crate::model::{HostTensor, LoadError, ModelConfig, WeightSource};

/// Per-layer decision parameters, in the layout of the official checkpoints.
///
/// - [`Variant::Adapter`]: `norm[i]` = `dms_proj_alpha_norm.weight`
///   `[hidden]` (init 1), `proj[i]` = `dms_proj_alpha.weight` `[kv_heads,
///   hidden]` (init 0), `bias[i]` = `dms_proj_alpha.bias` `[kv_heads]` when
///   the base has attention biases (init 0).
/// - [`Variant::Neuron`]: `proj[i]` = a delta `[kv_heads, hidden]` added to
///   the borrowed q_proj rows (init 0); `norm` and `bias` are empty.
#[derive(Module, Debug)]
pub struct DecisionParams<B: Backend> {
    pub norm: Vec<Param<Tensor<B, 1>>>,
    pub proj: Vec<Param<Tensor<B, 2>>>,
    pub bias: Vec<Param<Tensor<B, 1>>>,
}

/// Official name of layer `i`'s adapter tensor `suffix`
/// (`dms_proj_alpha.weight`, `dms_proj_alpha_norm.weight`, …).
pub fn adapter_name(i: usize, suffix: &str) -> String {
    format!("model.layers.{i}.self_attn.{suffix}")
}

impl<B: Backend> DecisionParams<B> {
    /// Fresh parameters (the adapter's projection zero-initialised so every
    /// first logit is −offset), or the adapter tensors of `weights` when it
    /// holds them (continuing from a checkpoint).
    pub fn load_or_init(
        variant: Variant,
        config: &ModelConfig,
        weights: &dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let (hidden, kv) = (config.hidden_size, config.num_kv_heads);
        let layers = config.num_layers;
        let param1 = |data: Vec<f32>, n: usize| {
            Param::from_tensor(Tensor::<B, 1>::from_data(
                TensorData::new(data, [n]),
                device,
            ))
        };
        let param2 = |data: Vec<f32>| {
            Param::from_tensor(Tensor::<B, 2>::from_data(
                TensorData::new(data, [kv, hidden]),
                device,
            ))
        };
        let load = |name: String, shape: &[usize], init: f32| -> Result<Vec<f32>, LoadError> {
            if !weights.contains(&name) {
                return Ok(vec![init; shape.iter().product()]);
            }
            let t = weights.load(&name)?;
            if t.shape != shape {
                return Err(LoadError::ShapeMismatch {
                    path: weights.origin().to_path_buf(),
                    name,
                    expected: shape.to_vec(),
                    got: t.shape,
                });
            }
            Ok(t.data)
        };
        let mut out = Self {
            norm: Vec::new(),
            proj: Vec::new(),
            bias: Vec::new(),
        };
        for i in 0..layers {
            match variant {
                Variant::Adapter => {
                    let n = load(
                        adapter_name(i, "dms_proj_alpha_norm.weight"),
                        &[hidden],
                        1.0,
                    )?;
                    let w = load(adapter_name(i, "dms_proj_alpha.weight"), &[kv, hidden], 0.0)?;
                    out.norm.push(param1(n, hidden));
                    out.proj.push(param2(w));
                    if config.attention_bias {
                        let b = load(adapter_name(i, "dms_proj_alpha.bias"), &[kv], 0.0)?;
                        out.bias.push(param1(b, kv));
                    }
                }
                Variant::Neuron => out.proj.push(param2(vec![0.0; kv * hidden])),
            }
        }
        Ok(out)
    }

    /// The tensors to save, by official name: the adapter's, or for the
    /// neuron variant each layer's full `q_proj.weight` with the borrowed
    /// rows replaced (base rows + delta).
    ///
    /// # Errors
    /// When the base's `q_proj.weight` cannot be read (neuron variant).
    pub fn export(
        &self,
        variant: Variant,
        cfg: &ModelConfig,
        base: &dyn WeightSource,
    ) -> Result<Vec<(String, HostTensor)>, LoadError> {
        let host = |t: Tensor<B, 2>| {
            let shape = t.dims().to_vec();
            HostTensor {
                shape,
                data: t
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .unwrap_or_default(),
            }
        };
        let host1 = |t: Tensor<B, 1>| HostTensor {
            shape: t.dims().to_vec(),
            data: t
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .unwrap_or_default(),
        };
        let mut out = Vec::new();
        match variant {
            Variant::Adapter => {
                for (i, (n, w)) in self.norm.iter().zip(&self.proj).enumerate() {
                    out.push((
                        adapter_name(i, "dms_proj_alpha_norm.weight"),
                        host1(n.val()),
                    ));
                    out.push((adapter_name(i, "dms_proj_alpha.weight"), host(w.val())));
                    if let Some(b) = self.bias.get(i) {
                        out.push((adapter_name(i, "dms_proj_alpha.bias"), host1(b.val())));
                    }
                }
            }
            Variant::Neuron => {
                let (d, g, hidden) = (cfg.head_dim, cfg.group_size(), cfg.hidden_size);
                for (i, delta) in self.proj.iter().enumerate() {
                    let delta = host(delta.val());
                    let mut data = base.load(&adapter_name(i, "q_proj.weight"))?.data;
                    for h in 0..cfg.num_kv_heads {
                        let row = (h * g) * d + d - 1;
                        for c in 0..hidden {
                            data[row * hidden + c] += delta.data[h * hidden + c];
                        }
                    }
                    out.push((
                        adapter_name(i, "q_proj.weight"),
                        HostTensor {
                            shape: vec![cfg.num_heads * d, hidden],
                            data,
                        },
                    ));
                }
            }
        }
        Ok(out)
    }
}
