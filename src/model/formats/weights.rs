//! The one interface between weight files and the transformer.

use std::path::Path;

use crate::model::LoadError;
use crate::model::kernels::block_gemv::BlockWeight;

/// A tensor on the host: row-major f32.
///
/// # Shapes
/// `shape` lists dims outermost first, exactly as in the Hugging Face
/// checkpoint (`[out_features, in_features]` for a linear weight,
/// `[vocab, hidden]` for the embedding, `[hidden]` for a norm).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Number of elements implied by `shape`.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Something that yields a model's tensors by their Hugging Face names.
///
/// Implemented by the GGUF reader (which renames `blk.N.attn_q.weight` to
/// `model.layers.N.self_attn.q_proj.weight`, dequantizes, and un-permutes
/// llama Q/K rows) and by the safetensors reader (bf16/f16/f32, sharded or
/// not, memory-mapped).
pub trait WeightSource {
    /// The file or directory the weights come from, for error messages.
    fn origin(&self) -> &Path;
    /// Whether a tensor of that Hugging Face name exists.
    fn contains(&self, name: &str) -> bool;
    /// All tensor names, in Hugging Face naming.
    fn names(&self) -> Vec<String>;
    /// Load one tensor as f32. Errors name the file and the tensor.
    fn load(&self, name: &str) -> Result<HostTensor, LoadError>;
    /// A 2-D tensor in the file's own ggml block format, rows in the
    /// Hugging Face order, when that format is one the CPU decode kernel
    /// reads ([`BlockWeight::supports`]); `Ok(None)` otherwise. Its values
    /// dequantize to exactly what [`WeightSource::load`] returns.
    fn load_blocks(&self, name: &str) -> Result<Option<BlockWeight>, LoadError> {
        let _ = name;
        Ok(None)
    }
}
