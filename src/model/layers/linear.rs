//! A dense projection `y = x·Wᵀ + b` over a Hugging Face `[out, in]` weight.

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::model::formats::vars::Vars;
use crate::model::kernels::block_gemv::BlockWeight;
use crate::model::{HostTensor, LoadError};

/// The form of the projection weights the matmuls read.
///
/// [`DecodeWeights::Auto`] resolves per backend
/// ([`DecodeWeights::resolve_for`]): the file's blocks on the CPU (f32
/// numerics, fewest bytes), bf16 on CUDA (half the bytes of f32, tensor
/// cores), f32 elsewhere. Norms, RoPE, attention, the residual stream, the
/// embedding and the KV cache stay f32 in every form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DecodeWeights {
    /// The fastest form where the model runs.
    #[default]
    Auto,
    /// The file's own Q4_0/Q4_1/Q8_0 blocks where it has them
    /// ([`crate::model::kernels::block_gemv`]), streamed by CPU decode steps: the same
    /// logits as f32 bit for bit, 4–7× fewer bytes per step. Prefill, other
    /// formats and GPUs use f32.
    Quantized,
    /// The file's Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K blocks as stored, with each
    /// activation row quantized per 32 values to int8 (llama.cpp's Q8
    /// scheme) and integer dot products ([`crate::model::kernels::q8act`]):
    /// fewer operations per weight, logits close to but not bit-identical
    /// with f32; deterministic across instruction sets and batch
    /// compositions. Elsewhere as `Quantized`.
    #[value(name = "q8act")]
    Q8Act,
    /// The dequantized f32 weights.
    F32,
    /// Weights rounded to bf16 once at load; each projection casts its input
    /// to bf16 and its output back to f32. Half the bytes of f32 on GPUs; on
    /// the CPU burn's bf16 matmul converts to f32 per call (slow: for
    /// previewing the numerics only).
    Bf16,
    /// As `Bf16`, in f16: half-precision projections where a device has no
    /// bf16 (wgpu: WGSL has none; the adapter needs `shader-f16`).
    F16,
}

impl DecodeWeights {
    /// [`DecodeWeights::Auto`] made concrete for backend `B`: `Quantized` on
    /// Flex, `Bf16` on the CUDA backend, `F32` elsewhere (wgpu; autodiff
    /// backends, so training stays in f32). Other forms are kept.
    pub fn resolve_for<B: Backend>(self) -> Self {
        use std::any::TypeId;
        if self != Self::Auto {
            return self;
        }
        if TypeId::of::<B>() == TypeId::of::<burn::backend::flex::Flex>() {
            return Self::Quantized;
        }
        #[cfg(feature = "cuda")]
        if TypeId::of::<B>() == TypeId::of::<crate::kv::CudaBackend>() {
            return Self::Bf16;
        }
        Self::F32
    }

    /// The float dtype the projection weights are stored in.
    pub fn weight_dtype(self) -> FloatDType {
        match self {
            Self::Bf16 => FloatDType::BF16,
            Self::F16 => FloatDType::F16,
            _ => FloatDType::F32,
        }
    }
}

impl std::fmt::Display for DecodeWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Quantized => "quantized",
            Self::Q8Act => "q8act",
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        })
    }
}

impl std::str::FromStr for DecodeWeights {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "quantized" => Ok(Self::Quantized),
            "q8act" => Ok(Self::Q8Act),
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(format!(
                "unknown weights form `{other}` (expected auto, quantized, q8act, f32, bf16 or f16)"
            )),
        }
    }
}

/// A linear layer, optionally with bias.
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    /// `[in, out]`: a transposed view of `[out, in]` storage, f32 or (see
    /// [`Linear::with_dtype`]) bf16.
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

    /// Decode steps with at most [`crate::model::kernels::gemv::MAX_ROWS`] rows on Flex
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

    /// The weight stored as `dtype` (rounded once, here); [`Linear::forward`]
    /// then casts its input to `dtype` and its output back to f32. A copy
    /// when the weight was shared (a tied lm head).
    pub fn with_dtype(mut self, dtype: FloatDType) -> Self {
        if self.weight.dtype() != DType::from(dtype) {
            // Cast the `[out, in]` storage so the view keeps its layout.
            self.weight = self.weight.transpose().cast(dtype).transpose();
        }
        self
    }

    /// The dtype the weight is stored in.
    pub fn weight_dtype(&self) -> DType {
        self.weight.dtype()
    }

    /// Whether decode steps stream ggml blocks instead of the weight tensor.
    pub fn has_blocks(&self) -> bool {
        self.blocks.is_some()
    }

    /// Whether decode steps read the blocks with 8-bit activations.
    pub fn int8_activations(&self) -> bool {
        self.blocks.as_ref().is_some_and(|b| b.int8_activations)
    }

    /// Bytes of the weight in f32.
    pub fn f32_weight_bytes(&self) -> u64 {
        4 * self.weight.shape().num_elements() as u64
    }

    /// Bytes a decode step reads for this layer's weight (its blocks, or the
    /// tensor in its dtype).
    pub fn decode_weight_bytes(&self) -> u64 {
        match &self.blocks {
            Some(b) => b.bytes.len() as u64,
            None => (self.weight.dtype().size() * self.weight.shape().num_elements()) as u64,
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

    /// The weight as the checkpoint holds it, `[out, in]` (a view of the
    /// storage, no copy), when the layer keeps no blocks.
    pub fn weight_out_in(&self) -> Option<Tensor<B, 2>> {
        self.blocks
            .is_none()
            .then(|| self.weight.clone().transpose())
    }

    /// `[out]`
    pub fn bias(&self) -> Option<&Tensor<B, 1>> {
        self.bias.as_ref()
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// # Shapes
    /// `x`: `[n, in]`; returns `[n, out]`.
    ///
    /// On Flex, up to [`crate::model::kernels::gemv::MAX_ROWS`] rows (decode steps) go
    /// through the project's weight-streaming kernels (over the blocks when
    /// the layer keeps them, else over the f32 weight); more rows (prefill)
    /// and other backends through burn's matmul.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        use crate::model::kernels::gemv::{self, MAX_ROWS};
        let [n, inp] = x.dims();
        if n > MAX_ROWS && gemv::in_decode_step() && gemv::is_flex::<B>() {
            // A decode step's rows in the kernels' groups (`gemv::decode_step`).
            let parts = (0..n)
                .step_by(MAX_ROWS)
                .map(|at| self.forward(x.clone().slice([at..(at + MAX_ROWS).min(n), 0..inp])))
                .collect();
            return Tensor::cat(parts, 0);
        }
        let _timed = crate::profile::scope(crate::profile::Phase::Projection);
        if let Some(blocks) = &self.blocks {
            let y = if blocks.int8_activations {
                crate::model::kernels::q8act::flex_linear_q8act(&x, blocks, self.bias.as_ref())
            } else {
                crate::model::kernels::block_gemv::flex_linear_blocks(
                    &x,
                    blocks,
                    self.bias.as_ref(),
                )
            };
            if let Some(y) = y {
                return y;
            }
        }
        if self.weight.dtype() == x.dtype()
            && let Some(y) =
                crate::model::kernels::gemv::flex_linear(&x, &self.weight, self.bias.as_ref())
        {
            return y;
        }
        let y = self.matmul(x);
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }

    /// `x·Wᵀ` without the bias, and the bias for the caller to add (a fused
    /// kernel adds it with what follows). Off the cubecl backends (Flex,
    /// blocks) this is [`Linear::forward`] and no bias.
    ///
    /// # Shapes
    /// As [`Linear::forward`]; the bias is `[out]`.
    ///
    /// With a half-precision weight on a device the product stays in the
    /// weight's dtype, as [`Linear::forward_half`]'s.
    pub fn forward_deferred_bias(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Option<&Tensor<B, 1>>) {
        if self.keeps_half() {
            let _timed = crate::profile::scope(crate::profile::Phase::Projection);
            return (self.matmul_half(x), self.bias.as_ref());
        }
        if self.bias.is_none() || self.blocks.is_some() || on_flex::<B>() {
            return (self.forward(x), None);
        }
        let _timed = crate::profile::scope(crate::profile::Phase::Projection);
        (self.matmul(x), self.bias.as_ref())
    }

    /// Whether the layer keeps its products in a half-precision weight's
    /// dtype: a device backend (not Flex), no blocks, an f16 or bf16
    /// weight. The fused kernels around it then read and write that dtype,
    /// so no cast runs in a launch of its own.
    fn keeps_half(&self) -> bool {
        self.blocks.is_none()
            && !on_flex::<B>()
            && matches!(self.weight.dtype(), DType::F16 | DType::BF16)
    }

    /// The dtype [`Linear::forward_half`] takes without a cast: the weight's
    /// when the layer keeps half products, else f32.
    pub fn input_dtype(&self) -> DType {
        if self.keeps_half() {
            self.weight.dtype()
        } else {
            DType::F32
        }
    }

    /// [`Linear::forward`], but with a half-precision weight on a device the
    /// product is returned in the weight's dtype (the input cast to it only
    /// when it is not already): what [`Linear::forward`] computes, before
    /// its cast back to f32. Only for layers without a bias (the caller
    /// reads the half output in a fused kernel); with a bias, or elsewhere,
    /// [`Linear::forward`].
    ///
    /// # Shapes
    /// As [`Linear::forward`].
    pub fn forward_half(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        if !self.keeps_half() || self.bias.is_some() {
            return self.forward(x);
        }
        let _timed = crate::profile::scope(crate::profile::Phase::Projection);
        self.matmul_half(x)
    }

    /// `x·Wᵀ` in the weight's dtype.
    fn matmul_half(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let wdtype = self.weight.dtype();
        let x = if x.dtype() == wdtype {
            x
        } else {
            x.cast(FloatDType::from(wdtype))
        };
        x.matmul(self.weight.clone())
    }

    /// burn's matmul, in the weight's dtype.
    fn matmul(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let wdtype = self.weight.dtype();
        if wdtype == x.dtype() {
            x.matmul(self.weight.clone())
        } else {
            // Mixed precision: matmuls take one dtype (accumulating in f32
            // on cubecl), so the input meets the weight's and the output
            // returns to the residual stream's.
            let xdtype = x.dtype();
            x.cast(FloatDType::from(wdtype))
                .matmul(self.weight.clone())
                .cast(FloatDType::from(xdtype))
        }
    }
}

/// Whether `B` is the CPU backend.
fn on_flex<B: Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<burn::backend::flex::Flex>()
}

/// Loading from a checkpoint: the weight in the form the [`Vars`] asks for
/// (its file's blocks kept for CPU decode, or bf16), built with the same
/// calls as [`Linear::from_hf`], [`Linear::with_blocks`] and
/// [`Linear::with_dtype`].
impl<B: Backend> Linear<B> {
    /// `weight` `[out, in]` under `vars` (and `bias` `[out]` when `bias`).
    pub fn load(vars: &Vars<B>, out: usize, inp: usize, bias: bool) -> Result<Self, LoadError> {
        Self::load_fused(&[(vars.clone(), out)], inp, bias)
    }

    /// Several projections of one input fused into one, outputs stacked in
    /// order (`[(q_proj, q), (k_proj, kv), (v_proj, kv)]` gives
    /// `[q + 2·kv, in]`). Decode blocks are kept only when every part has
    /// blocks of one format.
    pub fn load_fused(
        parts: &[(Vars<B>, usize)],
        inp: usize,
        bias: bool,
    ) -> Result<Self, LoadError> {
        let total: usize = parts.iter().map(|(_, out)| out).sum();
        let mut data = Vec::with_capacity(total * inp);
        for (vars, out) in parts {
            data.extend(vars.host("weight", &[*out, inp])?.data);
        }
        let weight = HostTensor {
            shape: vec![total, inp],
            data,
        };
        let blocks = match parts {
            [(vars, out)] => vars.blocks("weight", *out, inp)?,
            _ => {
                let mut all = Vec::with_capacity(parts.len());
                for (vars, out) in parts {
                    match vars.blocks("weight", *out, inp)? {
                        Some(b) => all.push(b),
                        None => break,
                    }
                }
                if all.len() == parts.len() {
                    BlockWeight::stack(&all)
                } else {
                    None
                }
            }
        };
        let bias = if bias {
            let mut data = Vec::with_capacity(total);
            for (vars, out) in parts {
                data.extend(vars.host("bias", &[*out])?.data);
            }
            Some(HostTensor {
                shape: vec![total],
                data,
            })
        } else {
            None
        };
        let Some((first, _)) = parts.first() else {
            unreachable!("a projection of no parts")
        };
        Ok(Self::from_hf(weight, bias, first.device())
            .with_blocks(blocks)
            .with_dtype(first.weight_dtype()))
    }

    /// The lm head tied to the embedding `embed` (`[vocab, hidden]`,
    /// shared storage), with the blocks of its `weight` under `vars`.
    pub fn load_tied(vars: &Vars<B>, embed: &Tensor<B, 2>) -> Result<Self, LoadError> {
        let [vocab, hidden] = embed.dims();
        Ok(Self::from_in_out(embed.clone().transpose())
            .with_blocks(vars.blocks("weight", vocab, hidden)?)
            .with_dtype(vars.weight_dtype()))
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

    #[test]
    fn bf16_weights_are_rounded_once_and_the_matmul_runs_in_bf16() {
        type B = burn::backend::flex::Flex;
        let device = Default::default();
        // 1 + 2⁻⁸ is a tie between bf16's 1 and 1 + 2⁻⁷: it rounds to 1.
        let w = HostTensor {
            shape: vec![2, 2],
            data: vec![1.0 + 1.0 / 256.0, 2.0, -3.0, 0.5],
        };
        let b = HostTensor {
            shape: vec![2],
            data: vec![0.25, 0.0],
        };
        let f32s = Linear::<B>::from_hf(w.clone(), Some(b.clone()), &device);
        let bf16s = Linear::<B>::from_hf(w, Some(b), &device).with_dtype(FloatDType::BF16);
        assert_eq!(bf16s.weight_dtype(), DType::BF16);
        assert_eq!(bf16s.decode_weight_bytes(), f32s.decode_weight_bytes() / 2);
        // x = [3 + 2⁻⁶, 1]: bf16 keeps 3 + 2⁻⁶ exactly (8 significant bits).
        let x =
            || Tensor::<B, 2>::from_data(TensorData::new(vec![3.015625f32, 1.0], [1, 2]), &device);
        let y = bf16s.forward(x());
        assert_eq!(y.dtype(), DType::F32, "the output returns to f32");
        let y = y.into_data().into_vec::<f32>().unwrap();
        // Row 0: 1·3.015625 + 2·1 = 5.015625 → bf16 5.0 (2⁻⁵ spacing), + 0.25.
        // Row 1: −3·3.015625 + 0.5 = −8.546875 → bf16 −8.5625 (2⁻⁴ spacing).
        assert_eq!(y, vec![5.25, -8.5625]);
        let exact = f32s.forward(x()).into_data().into_vec::<f32>().unwrap();
        assert_ne!(exact, y, "f32 weights keep what bf16 rounds away");
    }

    #[test]
    fn auto_resolves_per_backend_and_forms_round_trip() {
        use burn::backend::{Autodiff, flex::Flex};
        assert_eq!(
            DecodeWeights::Auto.resolve_for::<Flex>(),
            DecodeWeights::Quantized
        );
        // Training stays f32.
        assert_eq!(
            DecodeWeights::Auto.resolve_for::<Autodiff<Flex>>(),
            DecodeWeights::F32
        );
        assert_eq!(
            DecodeWeights::Bf16.resolve_for::<Flex>(),
            DecodeWeights::Bf16
        );
        for form in ["auto", "quantized", "q8act", "f32", "bf16"] {
            assert_eq!(form.parse::<DecodeWeights>().unwrap().to_string(), form);
        }
        assert!("fp8".parse::<DecodeWeights>().unwrap_err().contains("fp8"));
    }
}
