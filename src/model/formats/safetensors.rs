//! Hugging Face safetensors weights: one `model.safetensors` or the shards
//! listed by `model.safetensors.index.json`, memory-mapped; each tensor is
//! converted (bf16/f16/f32 → f32) only when it is loaded, so the file is
//! never copied whole into memory.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorInfo};

use crate::model::{HostTensor, LoadError, WeightSource};

/// Name of the single-file checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Name of the shard index of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// One memory-mapped `.safetensors` file.
struct Shard {
    path: PathBuf,
    map: memmap2::Mmap,
    /// Byte offset of the data section (8 + header length).
    data_start: usize,
}

/// The tensors of a Hugging Face checkpoint directory (or of one file).
pub struct SafetensorsWeights {
    origin: PathBuf,
    shards: Vec<Shard>,
    /// Tensor name → (shard index, info).
    tensors: HashMap<String, (usize, TensorInfo)>,
}

impl SafetensorsWeights {
    /// Opens a model directory: `model.safetensors.index.json` when present,
    /// else `model.safetensors`.
    pub fn open_dir(dir: &Path) -> Result<Self, LoadError> {
        let index = dir.join(INDEX_FILE);
        if index.is_file() {
            return Self::open_index(&index);
        }
        let file = dir.join(SINGLE_FILE);
        Self::open_files(&file, std::slice::from_ref(&file), None)
    }

    /// Opens the shards named by an index file (`weight_map`: tensor name →
    /// shard file name, relative to the index's directory).
    fn open_index(index: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(index).map_err(|source| LoadError::Io {
            path: index.to_path_buf(),
            source,
        })?;
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        let parsed: Index = serde_json::from_str(&text).map_err(|e| LoadError::BadField {
            path: index.to_path_buf(),
            field: "weight_map".into(),
            reason: e.to_string(),
        })?;
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut files: Vec<&String> = parsed.weight_map.values().collect();
        files.sort();
        files.dedup();
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        Self::open_files(index, &paths, Some((&parsed.weight_map, dir)))
    }

    fn open_files(
        origin: &Path,
        paths: &[PathBuf],
        weight_map: Option<(&BTreeMap<String, String>, &Path)>,
    ) -> Result<Self, LoadError> {
        let mut shards = Vec::with_capacity(paths.len());
        let mut tensors = HashMap::new();
        for (i, path) in paths.iter().enumerate() {
            let (shard, infos) = open_shard(path)?;
            for (name, info) in infos {
                tensors.insert(name, (i, info));
            }
            shards.push(shard);
        }
        if let Some((map, dir)) = weight_map {
            for (name, file) in map {
                let listed = dir.join(file);
                match tensors.get(name) {
                    Some((i, _)) if shards[*i].path == listed => {}
                    _ => {
                        return Err(LoadError::MissingTensor {
                            path: listed,
                            name: name.clone(),
                        });
                    }
                }
            }
        }
        Ok(Self {
            origin: origin.to_path_buf(),
            shards,
            tensors,
        })
    }
}

/// Maps one file and validates its header against its length.
fn open_shard(path: &Path) -> Result<(Shard, Vec<(String, TensorInfo)>), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let truncated = |detail: String| LoadError::Truncated {
        path: path.to_path_buf(),
        detail,
    };
    let format = |detail: String| LoadError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    if file_len < 8 {
        return Err(truncated(format!(
            "{file_len} bytes, shorter than the 8-byte header length"
        )));
    }
    // SAFETY: read-only private map. A file truncated by another process
    // while mapped would fault on access, the accepted risk of every
    // memory-mapped model loader.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    let len = map.len();
    let mut n = [0u8; 8];
    n.copy_from_slice(&map[..8]);
    let header_len = usize::try_from(u64::from_le_bytes(n))
        .map_err(|_| format("header length does not fit in memory".into()))?;
    let data_start = header_len
        .checked_add(8)
        .ok_or_else(|| format("header length overflows".into()))?;
    let Some(header) = map.get(8..data_start) else {
        return Err(truncated(format!(
            "header needs {data_start} bytes, file has {len}"
        )));
    };
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format(format!("invalid header: {e}")))?;
    let data_len = len - data_start;
    let mut infos = Vec::with_capacity(header.len());
    for (name, value) in header {
        if name == "__metadata__" {
            continue;
        }
        let info: TensorInfo = serde_json::from_value(value)
            .map_err(|e| format(format!("tensor `{name}`: invalid entry: {e}")))?;
        let (start, end) = info.data_offsets;
        if end > data_len {
            return Err(truncated(format!(
                "tensor `{name}` ends at data byte {end}, file holds {data_len} data bytes"
            )));
        }
        let numel: usize = info.shape.iter().product();
        let want = numel.checked_mul(info.dtype.bitsize() / 8);
        if start > end || want != Some(end - start) {
            return Err(format(format!(
                "tensor `{name}`: {} bytes for shape {:?} of {:?}",
                end.saturating_sub(start),
                info.shape,
                info.dtype
            )));
        }
        infos.push((name, info));
    }
    let shard = Shard {
        path: path.to_path_buf(),
        map,
        data_start,
    };
    Ok((shard, infos))
}

impl WeightSource for SafetensorsWeights {
    fn origin(&self) -> &Path {
        &self.origin
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        names.sort();
        names
    }

    fn load(&self, name: &str) -> Result<HostTensor, LoadError> {
        let Some((shard, info)) = self.tensors.get(name) else {
            return Err(LoadError::MissingTensor {
                path: self.origin.clone(),
                name: name.to_string(),
            });
        };
        let shard = &self.shards[*shard];
        let (start, end) = info.data_offsets;
        let bytes = &shard.map[shard.data_start + start..shard.data_start + end];
        let data = match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(LoadError::UnsupportedType {
                    path: shard.path.clone(),
                    name: name.to_string(),
                    kind: format!("{other:?}"),
                });
            }
        };
        Ok(HostTensor {
            shape: info.shape.clone(),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a safetensors file by hand (so the reader is checked against
    /// the format, not against the crate's own writer).
    fn write_file(path: &Path, entries: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in entries {
            let start = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&data);
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn converts_bf16_f16_f32() {
        let dir = tempfile::tempdir().unwrap();
        let vals = [1.5f32, -2.0, 0.25];
        let f32b: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bf: Vec<u8> = vals
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect();
        let hf: Vec<u8> = vals
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        write_file(
            &dir.path().join(SINGLE_FILE),
            &[
                ("a", "F32", vec![3], f32b),
                ("b", "BF16", vec![1, 3], bf),
                ("c", "F16", vec![3, 1], hf),
                ("d", "I64", vec![1], 7i64.to_le_bytes().to_vec()),
            ],
        );
        let w = SafetensorsWeights::open_dir(dir.path()).unwrap();
        assert_eq!(w.names(), ["a", "b", "c", "d"]);
        for name in ["a", "b", "c"] {
            assert_eq!(w.load(name).unwrap().data, vals, "{name}");
        }
        assert_eq!(w.load("b").unwrap().shape, [1, 3]);
        let err = w.load("d").unwrap_err().to_string();
        assert!(err.contains("`d`") && err.contains("I64"), "{err}");
        let err = w.load("zz").unwrap_err().to_string();
        assert!(err.contains("missing tensor `zz`"), "{err}");
    }

    #[test]
    fn reads_sharded_index() {
        let dir = tempfile::tempdir().unwrap();
        let one = 1.0f32.to_le_bytes().to_vec();
        let two = 2.0f32.to_le_bytes().to_vec();
        write_file(
            &dir.path().join("s-1.safetensors"),
            &[("x", "F32", vec![1], one)],
        );
        write_file(
            &dir.path().join("s-2.safetensors"),
            &[("y", "F32", vec![1], two)],
        );
        std::fs::write(
            dir.path().join(INDEX_FILE),
            r#"{"metadata": {}, "weight_map": {"x": "s-1.safetensors", "y": "s-2.safetensors"}}"#,
        )
        .unwrap();
        let w = SafetensorsWeights::open_dir(dir.path()).unwrap();
        assert_eq!(w.load("y").unwrap().data, [2.0]);
        assert_eq!(w.origin(), dir.path().join(INDEX_FILE));
    }

    #[test]
    fn truncated_file_names_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SINGLE_FILE);
        let bytes: Vec<u8> = [1.0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
        write_file(&p, &[("w", "F32", vec![4], bytes)]);
        let full = std::fs::read(&p).unwrap();
        std::fs::write(&p, &full[..full.len() - 3]).unwrap();
        let err = SafetensorsWeights::open_dir(dir.path()).err().unwrap();
        assert!(matches!(err, LoadError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("`w`"), "{err}");
        std::fs::write(&p, &full[..5]).unwrap();
        let err = SafetensorsWeights::open_dir(dir.path()).err().unwrap();
        assert!(matches!(err, LoadError::Truncated { .. }), "{err}");
    }
}
