//! DMS adapter directories: a small `model.safetensors` (the decision
//! tensors, or replaced `q_proj` weights for the neuron variant) and a
//! `config.json` with the `dms_*` fields and a `dms_base` object naming the
//! base weights file and its sha256. Opened like any model; the base is
//! found next to the adapter, in `models/` beside one of its ancestors or in
//! the working directory, and must match the recorded hash.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::formats::loader::{ModelSource, open_model};
use super::{LoadError, ModelConfig, SafetensorsWeights, WeightSource};

/// The `config.json` key that marks an adapter directory.
pub const BASE_KEY: &str = "dms_base";

/// `dms_base` of an adapter's `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BaseRef {
    /// File name (or a path relative to the adapter directory) of the base.
    pub file: String,
    /// Lowercase hex sha256 of the base file.
    pub sha256: String,
}

/// The base reference of `dir/config.json`, or `None` when the directory is
/// a full checkpoint.
pub fn base_ref(dir: &Path) -> Result<Option<BaseRef>, LoadError> {
    let path = dir.join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| LoadError::Format {
        path: path.clone(),
        detail: format!("not JSON: {e}"),
    })?;
    match value.get(BASE_KEY) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| LoadError::BadField {
                path,
                field: BASE_KEY.into(),
                reason: e.to_string(),
            }),
    }
}

/// Lowercase hex sha256 of a file's bytes, read in 1 MiB chunks.
pub fn sha256_hex(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// [`sha256_hex`] with the error naming the file.
pub fn sha256_file(path: &Path) -> Result<String, LoadError> {
    sha256_hex(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Where the base may be: `dir/file`, then `models/<name>` beside `dir` and
/// each of its ancestors, then `models/<name>` in the working directory.
pub fn base_candidates(dir: &Path, base: &BaseRef) -> Vec<PathBuf> {
    let given = Path::new(&base.file);
    let name = given.file_name().map(PathBuf::from).unwrap_or_default();
    let mut out = vec![dir.join(given)];
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    out.extend(abs.ancestors().map(|a| a.join("models").join(&name)));
    out.push(Path::new("models").join(&name));
    out
}

/// Opens an adapter directory over its base.
pub fn open_adapter_dir(dir: &Path, base: &BaseRef) -> Result<ModelSource, LoadError> {
    let candidates = base_candidates(dir, base);
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(LoadError::Format {
            path: dir.to_path_buf(),
            detail: format!(
                "adapter base `{}` not found (looked in {}); run scripts/setup.sh or copy the base next to the adapter",
                base.file,
                candidates
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    };
    let got = sha256_file(path)?;
    if !got.eq_ignore_ascii_case(&base.sha256) {
        return Err(LoadError::Format {
            path: path.clone(),
            detail: format!(
                "sha256 {got} differs from {} recorded by adapter `{}`",
                base.sha256,
                dir.display()
            ),
        });
    }
    let source = open_model(path)?;
    let adapter_cfg = ModelConfig::from_hf_json(&dir.join("config.json"))?;
    let adapter = SafetensorsWeights::open_dir(dir)?;
    Ok(ModelSource {
        config: ModelConfig {
            dms: adapter_cfg.dms,
            ..source.config
        },
        weights: Box::new(Overlay {
            adapter: Box::new(adapter),
            base: source.weights,
        }),
        ..source
    })
}

/// Tensors of `adapter` in front of those of `base`.
pub struct Overlay {
    pub adapter: Box<dyn WeightSource>,
    pub base: Box<dyn WeightSource>,
}

impl WeightSource for Overlay {
    fn origin(&self) -> &Path {
        self.adapter.origin()
    }
    fn contains(&self, name: &str) -> bool {
        self.adapter.contains(name) || self.base.contains(name)
    }
    fn names(&self) -> Vec<String> {
        let mut names = self.base.names();
        names.extend(
            self.adapter
                .names()
                .into_iter()
                .filter(|n| !self.base.contains(n)),
        );
        names
    }
    fn load(&self, name: &str) -> Result<super::HostTensor, LoadError> {
        if self.adapter.contains(name) {
            self.adapter.load(name)
        } else {
            self.base.load(name)
        }
    }

    fn load_blocks(
        &self,
        name: &str,
    ) -> Result<Option<super::kernels::block_gemv::BlockWeight>, LoadError> {
        if self.adapter.contains(name) {
            self.adapter.load_blocks(name)
        } else {
            self.base.load_blocks(name)
        }
    }
}
