//! Weight files and the directory around them: GGUF (llama.cpp), Hugging Face
//! safetensors and `config.json`/`generation_config.json`, the
//! [`WeightSource`](weights::WeightSource) interface every format implements,
//! [`loader::open_model`], the one entry point that tells them apart, and
//! [`vars::Vars`], the prefixed view of a source every layer loads itself
//! from.

pub mod gguf;
pub mod hf;
pub mod loader;
pub mod safetensors;
pub mod vars;
pub mod weights;
