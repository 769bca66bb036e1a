//! A prefixed view of a [`WeightSource`] (candle's `VarBuilder`): the loader
//! every layer loads itself from.
//!
//! A layer's `load` takes the [`Vars`] of its own place in the checkpoint
//! (`model.layers.3.self_attn`) and asks for its tensors by relative name
//! (`q_proj.weight`); [`Vars::pp`] pushes one more prefix for a sub-layer.
//! Names are Hugging Face names over every format ([`WeightSource`] maps
//! GGUF's), so a layer never knows which file it came from. Besides the
//! names, a `Vars` carries the device and the form the projection weights
//! take ([`DecodeWeights`]), which only [`Linear`](crate::model::layers::linear::Linear)'s
//! loaders read.
//!
//! A tensor that is missing, or whose shape is not the one asked for, is one
//! [`LoadError`] naming its full name and the file it came from.

use burn::backend::flex::Flex;
use burn::prelude::*;
use burn::tensor::FloatDType;

use crate::model::kernels::block_gemv::BlockWeight;
use crate::model::layers::linear::DecodeWeights;
use crate::model::{HostTensor, LoadError, WeightSource};

/// Tensors of `source` under `prefix`, for backend `B` on `device`.
pub struct Vars<'a, B: Backend> {
    source: &'a dyn WeightSource,
    /// Empty at the root, else `a.b.c` (no trailing dot).
    prefix: String,
    device: &'a B::Device,
    /// Whether linear weights also keep their file's blocks for decode.
    blocks: bool,
    /// Whether those blocks are read with 8-bit activations (`q8act`).
    int8_activations: bool,
    /// The dtype projection weights are stored in.
    dtype: FloatDType,
}

impl<B: Backend> Clone for Vars<'_, B> {
    fn clone(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            ..*self
        }
    }
}

impl<'a, B: Backend> Vars<'a, B> {
    /// The root of `source` (no prefix), projections in plain f32.
    pub fn new(source: &'a dyn WeightSource, device: &'a B::Device) -> Self {
        Self {
            source,
            prefix: String::new(),
            device,
            blocks: false,
            int8_activations: false,
            dtype: FloatDType::F32,
        }
    }

    /// The same view with projections in `decode`'s form
    /// ([`DecodeWeights::resolve_for`] makes `Auto` concrete): on Flex with
    /// `Quantized` or `Q8Act`, linear weights in a block format the CPU
    /// kernel reads also keep those blocks; with `Bf16` they are stored in
    /// bf16.
    pub fn with_decode(self, decode: DecodeWeights) -> Self {
        let on_flex = std::any::TypeId::of::<B>() == std::any::TypeId::of::<Flex>();
        let form = decode.resolve_for::<B>();
        Self {
            blocks: on_flex && matches!(form, DecodeWeights::Quantized | DecodeWeights::Q8Act),
            int8_activations: form == DecodeWeights::Q8Act,
            dtype: form.weight_dtype(),
            ..self
        }
    }

    /// The same view with projections in plain f32 (no blocks): for the
    /// small weights that stay f32 in every form (the DMS adapter).
    pub fn plain(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            blocks: false,
            int8_activations: false,
            dtype: FloatDType::F32,
            ..*self
        }
    }

    /// The view one level down: `pp("self_attn")` of `model.layers.3` is
    /// `model.layers.3.self_attn`.
    pub fn pp(&self, name: impl AsRef<str>) -> Self {
        Self {
            prefix: self.name(name.as_ref()),
            ..self.clone()
        }
    }

    /// The full name of `rel` under this prefix.
    pub fn name(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}.{rel}", self.prefix)
        }
    }

    /// The device tensors are loaded onto.
    pub fn device(&self) -> &'a B::Device {
        self.device
    }

    /// The dtype projection weights are stored in.
    pub fn weight_dtype(&self) -> FloatDType {
        self.dtype
    }

    /// Whether the source holds `rel`.
    pub fn contains(&self, rel: &str) -> bool {
        self.source.contains(&self.name(rel))
    }

    /// Tensor `rel` on the host, checked to be `shape`.
    pub fn host(&self, rel: &str, shape: &[usize]) -> Result<HostTensor, LoadError> {
        let name = self.name(rel);
        if !self.source.contains(&name) {
            return Err(LoadError::MissingTensor {
                path: self.source.origin().to_path_buf(),
                name,
            });
        }
        let t = self.source.load(&name)?;
        if t.shape != shape || t.data.len() != t.numel() {
            return Err(LoadError::ShapeMismatch {
                path: self.source.origin().to_path_buf(),
                name,
                expected: shape.to_vec(),
                got: t.shape,
            });
        }
        Ok(t)
    }

    /// Tensor `rel` on the device, checked to be `shape`.
    pub fn tensor<const D: usize>(
        &self,
        rel: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, LoadError> {
        let t = self.host(rel, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(t.data, shape),
            self.device,
        ))
    }

    /// The `[rows, cols]` tensor `rel` in its file's blocks, when this view
    /// keeps blocks and the decode kernel reads their format.
    pub fn blocks(
        &self,
        rel: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Option<BlockWeight>, LoadError> {
        if !self.blocks {
            return Ok(None);
        }
        let reads =
            |b: &BlockWeight| self.int8_activations || BlockWeight::exact_kernel_reads(b.kind);
        Ok(self
            .source
            .load_blocks(&self.name(rel))?
            .filter(|b| (b.rows, b.cols) == (rows, cols) && reads(b))
            .map(|b| b.with_int8_activations(self.int8_activations)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use crate::model::synthetic::{RandomWeights, SyntheticSpec};

    type B = Flex;

    fn spec() -> SyntheticSpec {
        SyntheticSpec::parse("synthetic:smollm2-135m")
            .expect("a synthetic name")
            .expect("a preset")
    }

    fn weights() -> RandomWeights {
        RandomWeights::new(&spec(), 7)
    }

    #[test]
    fn prefixes_compose_into_hugging_face_names() {
        let w = weights();
        let device = Default::default();
        let vars = Vars::<B>::new(&w, &device);
        let attn = vars.pp("model").pp(format!("layers.{}", 1)).pp("self_attn");
        assert_eq!(
            attn.name("q_proj.weight"),
            "model.layers.1.self_attn.q_proj.weight"
        );
        assert!(attn.contains("q_proj.weight"));
        assert!(!attn.contains("nothing.weight"));
        assert_eq!(vars.name("lm_head.weight"), "lm_head.weight");
    }

    #[test]
    fn missing_and_misshaped_tensors_name_the_full_name_and_the_file() {
        let w = weights();
        let config: &ModelConfig = &spec().config;
        let device = Default::default();
        let norm = Vars::<B>::new(&w, &device).pp("model.layers.0.input_layernorm");
        let err = norm.host("bias", &[config.hidden_size]).unwrap_err();
        assert!(matches!(err, LoadError::MissingTensor { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("`model.layers.0.input_layernorm.bias`")
                && msg.contains("synthetic:smollm2-135m"),
            "{msg}"
        );
        let err = norm.tensor("weight", [config.hidden_size + 1]).unwrap_err();
        assert!(matches!(err, LoadError::ShapeMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("`model.layers.0.input_layernorm.weight`")
                && msg.contains("synthetic:smollm2-135m"),
            "{msg}"
        );
    }
}
