//! The network only: configuration, weights (GGUF and Hugging Face
//! safetensors), tokenizer, and the transformer itself.
//!
//! Everything that loads weights speaks one vocabulary: tensors are named as in
//! Hugging Face checkpoints (`model.layers.{i}.self_attn.q_proj.weight`) and
//! handed over as row-major f32 in the Hugging Face layout (`[out, in]` for
//! linear weights) through [`WeightSource`]. The GGUF reader maps its names and
//! undoes llama.cpp's Q/K row permutation so the transformer never knows which
//! file format it came from.

pub mod adapter;
pub mod attention;
pub mod block_gemv;
pub mod config;
pub mod decoder;
pub mod dms;
pub mod error;
pub mod flex_ops;
pub mod gemv;
pub mod gguf;
pub mod hf;
pub mod isa;
pub mod linear;
pub mod loader;
pub mod mlp;
pub mod norm;
pub mod presets;
pub mod q8act;
pub mod rope;
pub mod safetensors;
pub mod synthetic;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

pub use config::{Arch, ModelConfig, RopeScaling};
pub use dms::{DmsConfig, DmsDecision};
pub use error::LoadError;
pub use gguf::GgufFile;
pub use hf::{GenerationDefaults, HfFiles};
pub use linear::DecodeWeights;
pub use loader::{ModelFormat, ModelSource, detect_format, open_model};
pub use safetensors::SafetensorsWeights;
pub use tokenizer::Tokenizer;
pub use transformer::Transformer;
pub use weights::{HostTensor, WeightSource};
