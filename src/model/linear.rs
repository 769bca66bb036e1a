//! A dense projection `y = x·Wᵀ + b` with the weight kept as `[in, out]`, the
//! layout gemm streams fastest for the one-row products of decode.

use burn::prelude::*;

use super::HostTensor;

/// A linear layer, optionally with bias.
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    /// `[in, out]`
    weight: Tensor<B, 2>,
    /// `[out]`
    bias: Option<Tensor<B, 1>>,
}

impl<B: Backend> Linear<B> {
    /// From a Hugging Face weight (`[out, in]`, row-major) and bias (`[out]`).
    pub fn from_hf(weight: &HostTensor, bias: Option<&HostTensor>, device: &B::Device) -> Self {
        let [out, inp] = [weight.shape[0], weight.shape[1]];
        let mut t = vec![0.0f32; out * inp];
        // Blocked transpose: keeps both sides cache-friendly for large matrices.
        const BLOCK: usize = 64;
        for o0 in (0..out).step_by(BLOCK) {
            for i0 in (0..inp).step_by(BLOCK) {
                for o in o0..(o0 + BLOCK).min(out) {
                    for i in i0..(i0 + BLOCK).min(inp) {
                        t[i * out + o] = weight.data[o * inp + i];
                    }
                }
            }
        }
        Self {
            weight: Tensor::from_data(TensorData::new(t, [inp, out]), device),
            bias: bias.map(|b| Tensor::from_data(TensorData::new(b.data.clone(), [out]), device)),
        }
    }

    /// A bias-free layer over an existing `[in, out]` tensor (shared storage,
    /// e.g. the transposed embedding of a tied lm head).
    pub fn from_in_out(weight: Tensor<B, 2>) -> Self {
        Self { weight, bias: None }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// # Shapes
    /// `x`: `[n, in]`; returns `[n, out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = x.matmul(self.weight.clone());
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_hf_layout_weight_and_bias() {
        type B = burn::backend::flex::Flex;
        let device = Default::default();
        // W = [[1, 2, 3], [4, 5, 6]] (out 2, in 3), b = [0.5, -1].
        let w = HostTensor {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let b = HostTensor {
            shape: vec![2],
            data: vec![0.5, -1.0],
        };
        let lin = Linear::<B>::from_hf(&w, Some(&b), &device);
        let x =
            Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 0.0, -1.0], [1, 3]), &device);
        let y = lin.forward(x).into_data().into_vec::<f32>().unwrap();
        assert_eq!(y, vec![1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0]);
    }
}
