//! The SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`, with gate and
//! up fused into one projection so decode reads their weights in one pass.

use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::model::formats::vars::Vars;
use crate::model::layers::linear::Linear;
use crate::model::{LoadError, ModelConfig};

/// SwiGLU MLP with fused gate/up weights.
#[derive(Debug, Clone)]
pub struct Mlp<B: Backend> {
    /// `[hidden, 2 * intermediate]`: gate columns first, then up.
    gate_up: Linear<B>,
    /// `[intermediate, hidden]`
    down: Linear<B>,
    intermediate: usize,
}

impl<B: Backend> Mlp<B> {
    /// `gate_up` must produce the gate's `intermediate` outputs followed by
    /// the up projection's.
    pub fn new(gate_up: Linear<B>, down: Linear<B>) -> Self {
        let intermediate = gate_up.out_features() / 2;
        Self {
            gate_up,
            down,
            intermediate,
        }
    }

    /// `gate_proj`, `up_proj` (fused) and `down_proj` under `vars` (a
    /// layer's `mlp`).
    pub fn load(vars: &Vars<B>, config: &ModelConfig) -> Result<Self, LoadError> {
        let (hidden, inter) = (config.hidden_size, config.intermediate_size);
        let gate_up = Linear::load_fused(
            &[(vars.pp("gate_proj"), inter), (vars.pp("up_proj"), inter)],
            hidden,
            false,
        )?;
        let down = Linear::load(&vars.pp("down_proj"), hidden, inter, false)?;
        Ok(Self::new(gate_up, down))
    }

    /// The fused gate/up and the down projection.
    pub fn linears(&self) -> [&Linear<B>; 2] {
        [&self.gate_up, &self.down]
    }

    /// The dtype the MLP's normed input is read in (the gate/up
    /// projection's, [`Linear::input_dtype`]).
    pub fn input_dtype(&self) -> burn::tensor::DType {
        self.gate_up.input_dtype()
    }

    /// # Shapes
    /// `x`: `[n, hidden]`; returns `[n, hidden]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        // With half-precision weights on a device, `gu`, `h` and the result
        // stay in the weights' dtype (the fused kernels read and write it).
        let gu = self.gate_up.forward_half(x);
        if let Some(h) = crate::model::kernels::flex_ops::swiglu(&gu, self.intermediate) {
            return self.down.forward(h);
        }
        if let Some(h) = crate::model::kernels::cube_ops::swiglu(&gu, self.intermediate) {
            return self.down.forward_half(h);
        }
        let gu = if gu.dtype() == burn::tensor::DType::F32 {
            gu
        } else {
            gu.cast(burn::tensor::FloatDType::F32)
        };
        let gate = gu.clone().narrow(1, 0, self.intermediate);
        let up = gu.narrow(1, self.intermediate, self.intermediate);
        self.down.forward(silu(gate) * up)
    }
}
