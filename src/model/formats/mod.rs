//! Weight files and the directory around them: GGUF (llama.cpp), Hugging Face
//! safetensors and `config.json`/`generation_config.json`, the
//! [`WeightSource`](weights::WeightSource) interface every format implements,
//! and [`loader::open_model`], the one entry point that tells them apart.

pub mod gguf;
pub mod hf;
pub mod loader;
pub mod safetensors;
pub mod weights;
