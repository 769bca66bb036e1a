//! The network only: configuration, weights (GGUF and Hugging Face
//! safetensors), tokenizer, and the transformer itself.
//!
//! Everything that loads weights speaks one vocabulary: tensors are named as in
//! Hugging Face checkpoints (`model.layers.{i}.self_attn.q_proj.weight`) and
//! handed over as row-major f32 in the Hugging Face layout (`[out, in]` for
//! linear weights) through [`WeightSource`]. The GGUF reader maps its names and
//! undoes llama.cpp's Q/K row permutation so the transformer never knows which
//! file format it came from.
//!
//! Rooms: [`formats`] (GGUF, safetensors, the Hugging Face directory, the
//! [`WeightSource`] interface and the one loading entry point), [`layers`]
//! (the building blocks of one decoder layer), [`kernels`] (the CPU decode
//! projections, their instruction-set choice and the fused Flex steps). The
//! root keeps what spans them: the configuration and named shapes, the
//! [`Transformer`] and its [`Decoder`](crate::generate::Decoder) face, the
//! tokenizer, DMS adapters, synthetic weights and the load error.

pub mod adapter;
pub mod config;
pub mod decoder;
pub mod error;
pub mod formats;
pub mod kernels;
pub mod layers;
pub mod presets;
pub mod synthetic;
pub mod tokenizer;
pub mod transformer;

pub use config::{Arch, ModelConfig, RopeScaling};
pub use error::LoadError;
pub use formats::gguf::GgufFile;
pub use formats::hf::{GenerationDefaults, HfFiles};
pub use formats::loader::{ModelFormat, ModelSource, detect_format, open_model};
pub use formats::safetensors::SafetensorsWeights;
pub use formats::weights::{HostTensor, WeightSource};
pub use layers::dms::{DmsConfig, DmsDecision};
pub use layers::linear::DecodeWeights;
pub use tokenizer::Tokenizer;
pub use transformer::Transformer;
