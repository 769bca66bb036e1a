//! A dense projection `y = x·Wᵀ + b` over a Hugging Face `[out, in]` weight.

use burn::prelude::*;

use super::HostTensor;
use super::block_gemv::BlockWeight;

/// Which copy of the weights a CPU decode step streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecodeWeights {
    /// The file's own Q4_0/Q4_1/Q8_0 blocks where it has them
    /// ([`super::block_gemv`]): the same logits bit for bit, 4–7× fewer
    /// bytes per step. Other formats fall back to f32.
    #[default]
    Quantized,
    /// Always the dequantized f32 weights.
    F32,
}

impl std::str::FromStr for DecodeWeights {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quantized" => Ok(Self::Quantized),
            "f32" => Ok(Self::F32),
            other => Err(format!(
                "unknown decode weights `{other}` (expected quantized or f32)"
            )),
        }
    }
}

/// A linear layer, optionally with bias.
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    /// `[in, out]`: a transposed view of `[out, in]` storage.
    weight: Tensor<B, 2>,
    /// `[out]`
    bias: Option<Tensor<B, 1>>,
    /// The same weight in ggml blocks (`[out, in]`), streamed by decode
    /// steps on the CPU instead of `weight`.
    blocks: Option<BlockWeight>,
}

impl<B: Backend> Linear<B> {
    /// From a Hugging Face weight (`[out, in]`, row-major) and bias (`[out]`).
    ///
    /// The weight keeps its `[out, in]` storage and is used through a
    /// transposed view (gemm takes the strides, no copy): measured on Flex,
    /// that layout is as fast for one-row products and faster for batched
    /// ones than a contiguous `[in, out]` copy.
    pub fn from_hf(weight: HostTensor, bias: Option<HostTensor>, device: &B::Device) -> Self {
        let [out, inp] = [weight.shape[0], weight.shape[1]];
        let w = Tensor::<B, 2>::from_data(TensorData::new(weight.data, [out, inp]), device);
        Self {
            weight: w.transpose(),
            bias: bias.map(|b| Tensor::from_data(TensorData::new(b.data, [out]), device)),
            blocks: None,
        }
    }

    /// Decode steps with at most [`super::gemv::MAX_ROWS`] rows on Flex
    /// read `blocks` (the same values as the f32 weight, in its file's
    /// block format) instead of the f32 weight.
    ///
    /// # Panics
    /// If `blocks` is not `[out, in]`.
    pub fn with_blocks(mut self, blocks: Option<BlockWeight>) -> Self {
        if let Some(b) = &blocks {
            let [inp, out] = self.weight.dims();
            assert_eq!([b.rows, b.cols], [out, inp], "blocks of another shape");
        }
        self.blocks = blocks;
        self
    }

    /// Bytes of the weight in f32.
    pub fn f32_weight_bytes(&self) -> u64 {
        4 * self.weight.shape().num_elements() as u64
    }

    /// Bytes a decode step reads for this layer's weight.
    pub fn decode_weight_bytes(&self) -> u64 {
        match &self.blocks {
            Some(b) => b.bytes.len() as u64,
            None => self.f32_weight_bytes(),
        }
    }

    /// A bias-free layer over an existing `[in, out]` tensor (shared storage,
    /// e.g. the transposed embedding of a tied lm head).
    pub fn from_in_out(weight: Tensor<B, 2>) -> Self {
        Self {
            weight,
            bias: None,
            blocks: None,
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// # Shapes
    /// `x`: `[n, in]`; returns `[n, out]`.
    ///
    /// On Flex, up to [`super::gemv::MAX_ROWS`] rows (decode steps) go
    /// through the project's weight-streaming kernels (over the blocks when
    /// the layer keeps them, else over the f32 weight); more rows (prefill)
    /// and other backends through burn's matmul.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let _timed = crate::bench::profile::scope(crate::bench::profile::Phase::Projection);
        if let Some(blocks) = &self.blocks
            && let Some(y) = super::block_gemv::flex_linear_blocks(&x, blocks, self.bias.as_ref())
        {
            return y;
        }
        if let Some(y) = super::gemv::flex_linear(&x, &self.weight, self.bias.as_ref()) {
            return y;
        }
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
        let lin = Linear::<B>::from_hf(w, Some(b), &device);
        let x =
            Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 0.0, -1.0], [1, 3]), &device);
        let y = lin.forward(x).into_data().into_vec::<f32>().unwrap();
        assert_eq!(y, vec![1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0]);
    }
}
