//! The GGUF container (versions 2 and 3): header, metadata key-values,
//! tensor infos and the aligned data section, parsed once at open; tensor
//! data stays in the memory map until a tensor is dequantized.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::cursor::Cursor;
use super::quant::{self, DequantError, GgmlType};
use super::storage::{self, Bytes};
use super::value::GgufValue;
use crate::model::{HostTensor, LoadError};

const MAGIC: [u8; 4] = *b"GGUF";
/// ggml's GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;
/// The data-section alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One tensor's entry in the GGUF tensor-info table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The llama.cpp name (`blk.0.attn_q.weight`).
    pub name: String,
    /// ggml dims, innermost first: `[ne0 = in_features, ne1 = out_features]`.
    pub dims: Vec<u64>,
    pub kind: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
    /// Bytes of tensor data.
    pub n_bytes: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    /// Row-major shape, outermost first (the reverse of `dims`): a linear
    /// weight is `[out_features, in_features]`, as in Hugging Face.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// An opened GGUF file: metadata and tensor table in memory, tensor bytes
/// memory-mapped (or held in memory when read out of a zip/wheel).
pub struct GgufFile {
    path: PathBuf,
    version: u32,
    metadata: Vec<(String, GgufValue)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_start: usize,
    bytes: Bytes,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens a `.gguf` file (memory-mapped) or a zip/wheel holding exactly
    /// one `*.gguf` member (read into memory).
    ///
    /// Errors: `Io` if unreadable; `Truncated` if the header, metadata,
    /// tensor table or any tensor's data runs past the end; `Format` for a
    /// bad magic, an unsupported version or an inconsistent tensor table;
    /// `UnsupportedType` for a tensor whose ggml type id is unknown.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let (bytes, label) = storage::load(path.as_ref())?;
        Self::parse(label, bytes)
    }

    /// Parses a GGUF held in memory; `label` names it in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, LoadError> {
        Self::parse(label.into(), Bytes::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Bytes) -> Result<Self, LoadError> {
        let mut cur = Cursor {
            buf: &bytes,
            pos: 0,
            path: &path,
        };
        let magic = cur.take(4, || "the magic number".into())?;
        if magic != MAGIC {
            return Err(LoadError::Format {
                path: path.clone(),
                detail: format!("not a GGUF file (magic {magic:02x?}, expected \"GGUF\")"),
            });
        }
        let version = cur.u32(|| "the version".into())?;
        if !(2..=3).contains(&version) {
            return Err(LoadError::Format {
                path: path.clone(),
                detail: format!("GGUF version {version} is not supported (only 2 and 3)"),
            });
        }
        let n_tensors = cur.u64(|| "the tensor count".into())?;
        let n_kv = cur.u64(|| "the metadata count".into())?;

        let mut metadata = Vec::new();
        let mut metadata_index = HashMap::new();
        for i in 0..n_kv {
            let key = cur.string(|| format!("the key of metadata entry #{i}"))?;
            let ty = cur.u32(|| format!("the type of metadata `{key}`"))?;
            let value = cur.value(ty, &key)?;
            metadata_index.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }

        let alignment = match metadata_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => match metadata[i].1.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(LoadError::BadField {
                        path: path.clone(),
                        field: "general.alignment".into(),
                        reason: format!("expected a power of two, got {:?}", metadata[i].1),
                    });
                }
            },
        };

        let mut raw = Vec::new();
        for i in 0..n_tensors {
            let name = cur.string(|| format!("the name of tensor info #{i}"))?;
            let n_dims = cur.u32(|| format!("the rank of tensor `{name}`"))?;
            if n_dims > MAX_DIMS {
                return Err(LoadError::Format {
                    path: path.clone(),
                    detail: format!("tensor `{name}` has {n_dims} dims (ggml allows {MAX_DIMS})"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(cur.u64(|| format!("the dims of tensor `{name}`"))?);
            }
            let type_id = cur.u32(|| format!("the type of tensor `{name}`"))?;
            let offset = cur.u64(|| format!("the offset of tensor `{name}`"))?;
            raw.push((name, dims, type_id, offset));
        }

        let header_end = cur.pos as u64;
        let data_start = header_end.div_ceil(alignment) * alignment;
        let file_len = bytes.len() as u64;
        let mut tensors = Vec::with_capacity(raw.len());
        let mut tensor_index = HashMap::new();
        for (name, dims, type_id, offset) in raw {
            let info = check_tensor(&path, name, dims, type_id, offset, alignment)?;
            let end = data_start + info.offset + info.n_bytes as u64;
            if end > file_len {
                return Err(LoadError::Truncated {
                    path: path.clone(),
                    detail: format!(
                        "data of tensor `{}` ends at byte {end}, but the file has only {file_len} bytes",
                        info.name
                    ),
                });
            }
            if tensor_index
                .insert(info.name.clone(), tensors.len())
                .is_some()
            {
                return Err(LoadError::Format {
                    path: path.clone(),
                    detail: format!("tensor `{}` is listed twice", info.name),
                });
            }
            tensors.push(info);
        }
        let data_start = usize::try_from(data_start).map_err(|_| LoadError::Format {
            path: path.clone(),
            detail: "data section offset does not fit in memory".into(),
        })?;

        Ok(GgufFile {
            path,
            version,
            metadata,
            metadata_index,
            tensors,
            tensor_index,
            data_start,
            bytes,
        })
    }

    /// The file (or `wheel/member.gguf`) this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// All metadata entries in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &GgufValue)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The metadata value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// All tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor info under a llama.cpp tensor name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw (still quantized) bytes of a tensor.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        let start = self.data_start + info.offset as usize;
        &self.bytes[start..start + info.n_bytes]
    }

    /// Dequantizes a tensor by its llama.cpp name, without renaming or
    /// un-permuting (see the `WeightSource` impl for that).
    ///
    /// # Shapes
    /// `shape` is [`TensorInfo::shape`] (`[out, in]` for a matrix).
    pub fn dequantize(&self, name: &str) -> Result<HostTensor, LoadError> {
        let info = self.tensor(name).ok_or_else(|| LoadError::MissingTensor {
            path: self.path.clone(),
            name: name.to_owned(),
        })?;
        let row_len = info.dims.first().map_or(1, |&d| d as usize);
        let mut data = vec![0.0f32; info.numel()];
        quant::dequantize_rows(info.kind, self.tensor_bytes(info), row_len, &mut data).map_err(
            |e| match e {
                DequantError::Unsupported(kind) => LoadError::UnsupportedType {
                    path: self.path.clone(),
                    name: name.to_owned(),
                    kind: kind.name().to_owned(),
                },
                other => LoadError::Format {
                    path: self.path.clone(),
                    detail: format!("tensor `{name}`: {other}"),
                },
            },
        )?;
        Ok(HostTensor {
            shape: info.shape(),
            data,
        })
    }

    fn bad_field(&self, key: &str, reason: impl Into<String>) -> LoadError {
        LoadError::BadField {
            path: self.path.clone(),
            field: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn required(&self, key: &str) -> Result<&GgufValue, LoadError> {
        self.get(key)
            .ok_or_else(|| self.bad_field(key, "missing from the GGUF metadata"))
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        want: &str,
        f: impl FnOnce(&'a GgufValue) -> Option<T>,
    ) -> Result<Option<T>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| {
                self.bad_field(key, format!("expected {want}, found {}", v.type_name()))
            }),
        }
    }

    /// An optional non-negative integer; present but ill-typed is `BadField`.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, LoadError> {
        self.typed(key, "a non-negative integer", GgufValue::as_u64)
    }

    /// An optional number (float or integer).
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, LoadError> {
        self.typed(key, "a number", GgufValue::as_f64)
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, LoadError> {
        self.typed(key, "a bool", GgufValue::as_bool)
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, LoadError> {
        self.typed(key, "a string", GgufValue::as_str)
    }

    /// A required non-negative integer (`BadField` naming `key` otherwise).
    pub fn get_u64(&self, key: &str) -> Result<u64, LoadError> {
        self.required(key)?;
        self.opt_u64(key)?
            .ok_or_else(|| self.bad_field(key, "missing"))
    }

    /// A required number.
    pub fn get_f64(&self, key: &str) -> Result<f64, LoadError> {
        self.required(key)?;
        self.opt_f64(key)?
            .ok_or_else(|| self.bad_field(key, "missing"))
    }

    /// A required string.
    pub fn get_str(&self, key: &str) -> Result<&str, LoadError> {
        self.required(key)?;
        self.opt_str(key)?
            .ok_or_else(|| self.bad_field(key, "missing"))
    }

    /// A required array whose elements all satisfy `f` (`want` names the
    /// element type in the error).
    pub fn get_array<'a, T>(
        &'a self,
        key: &str,
        want: &str,
        f: impl Fn(&'a GgufValue) -> Option<T>,
    ) -> Result<Vec<T>, LoadError> {
        let items = self
            .required(key)?
            .as_array()
            .ok_or_else(|| self.bad_field(key, format!("expected an array of {want}")))?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                f(v).ok_or_else(|| {
                    self.bad_field(
                        key,
                        format!("element {i}: expected {want}, found {}", v.type_name()),
                    )
                })
            })
            .collect()
    }

    /// `general.architecture` (`llama`, `qwen2`, `qwen3`, ...).
    pub fn architecture(&self) -> Result<&str, LoadError> {
        self.get_str("general.architecture")
    }
}

/// Validates one raw tensor-info entry and computes its byte size.
fn check_tensor(
    path: &Path,
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    offset: u64,
    alignment: u64,
) -> Result<TensorInfo, LoadError> {
    let format = |detail: String| LoadError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let kind = GgmlType::from_id(type_id).ok_or_else(|| LoadError::UnsupportedType {
        path: path.to_path_buf(),
        name: name.clone(),
        kind: format!("ggml type id {type_id}"),
    })?;
    let numel = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
        .ok_or_else(|| format(format!("tensor `{name}` dims {dims:?} overflow")))?;
    let row_len = dims.first().map_or(1, |&d| d as usize);
    if !row_len.is_multiple_of(kind.block_size()) {
        return Err(format(format!(
            "tensor `{name}`: row length {row_len} is not a multiple of the {kind} block size {}",
            kind.block_size()
        )));
    }
    let n_bytes = kind
        .bytes_for(numel)
        .ok_or_else(|| format(format!("tensor `{name}` size overflows")))?;
    if !offset.is_multiple_of(alignment) {
        return Err(format(format!(
            "tensor `{name}` offset {offset} is not aligned to {alignment}"
        )));
    }
    Ok(TensorInfo {
        name,
        dims,
        kind,
        offset,
        n_bytes,
    })
}
