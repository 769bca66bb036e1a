//! RMSNorm: `x / sqrt(mean(x²) + eps) * weight` over the last dimension.

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::model::LoadError;
use crate::model::formats::vars::Vars;

/// A root-mean-square norm with a learned per-channel scale.
#[derive(Debug, Clone)]
pub struct RmsNorm<B: Backend> {
    /// `[dim]`
    weight: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// # Shapes
    /// `weight`: `[dim]`.
    pub fn new(weight: Tensor<B, 1>, eps: f64) -> Self {
        Self { weight, eps }
    }

    /// `weight` `[dim]` under `vars`.
    pub fn load(vars: &Vars<B>, dim: usize, eps: f64) -> Result<Self, LoadError> {
        Ok(Self::new(vars.tensor("weight", [dim])?, eps))
    }

    /// # Shapes
    /// `x`: `[..., dim]`; returns the same shape.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        if let Some(y) = crate::model::kernels::cube_ops::rms_norm(&x, &self.weight, self.eps) {
            return y;
        }
        self.forward_ops(x)
    }

    /// `x + a` and its norm (one fused launch on the cubecl backends).
    ///
    /// # Shapes
    /// `x`, `a`: `[n, dim]`; returns (`x + a`, its norm).
    pub fn add_forward(&self, x: Tensor<B, 2>, a: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        self.add_forward_as(x, a, DType::F32)
    }

    /// [`RmsNorm::add_forward`] with `a` in any float dtype (a projection's
    /// output in its weight's dtype) and the norm in `out` (the dtype the
    /// next projection reads, [`Linear::input_dtype`]); `x + a` is f32.
    /// One launch on the cubecl backends; on Flex in f32, one fused pass
    /// around burn's mean ([`crate::model::kernels::flex_ops::add_rms_norm`]).
    ///
    /// [`Linear::input_dtype`]: crate::model::layers::linear::Linear::input_dtype
    pub fn add_forward_as(
        &self,
        x: Tensor<B, 2>,
        a: Tensor<B, 2>,
        out: DType,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        if let Some(r) =
            crate::model::kernels::cube_ops::add_rms_norm_as(&x, &a, &self.weight, self.eps, out)
        {
            return r;
        }
        if out == DType::F32
            && a.dtype() == DType::F32
            && let Some(r) =
                crate::model::kernels::flex_ops::add_rms_norm(&x, &a, &self.weight, self.eps)
        {
            return r;
        }
        let a = if a.dtype() == x.dtype() {
            a
        } else {
            a.cast(FloatDType::from(x.dtype()))
        };
        let s = x + a;
        (s.clone(), self.forward_as(s, out))
    }

    /// [`RmsNorm::forward`] in `out` (one launch on the cubecl backends).
    pub fn forward_as<const D: usize>(&self, x: Tensor<B, D>, out: DType) -> Tensor<B, D> {
        if out == DType::F32 {
            return self.forward(x);
        }
        if let Some(y) =
            crate::model::kernels::cube_ops::rms_norm_as(&x, &self.weight, self.eps, out)
        {
            return y;
        }
        self.forward(x).cast(FloatDType::from(out))
    }

    /// `[dim]`
    pub fn weight(&self) -> &Tensor<B, 1> {
        &self.weight
    }

    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// [`RmsNorm::forward`] in burn ops on every backend (the composition
    /// the fused cubecl kernel replaces).
    pub fn forward_ops<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let inv_rms = x
            .clone()
            .square()
            .mean_dim(D - 1)
            .add_scalar(self.eps)
            .sqrt()
            .recip();
        x * inv_rms * self.weight.clone().unsqueeze::<D>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_each_row() {
        type B = burn::backend::flex::Flex;
        let device = Default::default();
        let w = Tensor::<B, 1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
        let x = Tensor::<B, 2>::from_data(
            TensorData::new(vec![3.0f32, 4.0, 0.0, 2.0], [2, 2]),
            &device,
        );
        let y = RmsNorm::new(w, 0.0)
            .forward(x)
            .into_data()
            .into_vec::<f32>()
            .unwrap();
        let r0 = (12.5f32).sqrt();
        let r1 = (2.0f32).sqrt();
        let want = [3.0 / r0, 8.0 / r0, 0.0, 4.0 / r1];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{y:?}");
        }
    }
}
