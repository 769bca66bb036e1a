//! `GgufFile` as a [`WeightSource`]: Hugging Face names in, f32 tensors in
//! the Hugging Face layout out, with llama's Q/K rows un-permuted.

use std::path::Path;

use super::names::{self, PermutedProjection};
use super::reader::GgufFile;
use crate::model::kernels::block_gemv::BlockWeight;
use crate::model::{HostTensor, LoadError, WeightSource};

impl GgufFile {
    /// Whether llama.cpp's converter permuted this file's Q/K rows (it does
    /// for `llama`, not for `qwen2`/`qwen3`).
    pub fn qk_rows_permuted(&self) -> Result<bool, LoadError> {
        Ok(self.architecture()? == "llama")
    }

    /// The head count llama.cpp's `permute` used for a Q or K projection.
    fn permuted_heads(&self, kind: PermutedProjection) -> Result<usize, LoadError> {
        let arch = self.architecture()?;
        let key = match kind {
            PermutedProjection::Query => format!("{arch}.attention.head_count"),
            PermutedProjection::Key => format!("{arch}.attention.head_count_kv"),
        };
        Ok(match (kind, self.opt_u64(&key)?) {
            (_, Some(n)) => n,
            // llama.cpp defaults head_count_kv to head_count.
            (PermutedProjection::Key, None) => {
                self.get_u64(&format!("{arch}.attention.head_count"))?
            }
            (PermutedProjection::Query, None) => self.get_u64(&key)?,
        } as usize)
    }

    /// Rows of `data` (each `cols` elements: f32 values or block bytes) put
    /// back in the Hugging Face order, if `name` is a permuted projection of
    /// this file.
    fn unpermute<T: Copy + Default>(
        &self,
        name: &str,
        data: Vec<T>,
        cols: usize,
    ) -> Result<Vec<T>, LoadError> {
        let kind = match names::permuted_projection(name) {
            Some(kind) if self.qk_rows_permuted()? => kind,
            _ => return Ok(data),
        };
        let n_head = self.permuted_heads(kind)?;
        names::unpermute_rows(&data, cols, n_head).map_err(|reason| LoadError::Format {
            path: self.path().to_path_buf(),
            detail: format!("cannot un-permute `{name}`: {reason}"),
        })
    }
}

impl WeightSource for GgufFile {
    fn origin(&self) -> &Path {
        self.path()
    }

    fn contains(&self, name: &str) -> bool {
        names::gguf_name(name).is_some_and(|g| self.tensor(&g).is_some())
    }

    /// Hugging Face names of every tensor the transformer uses (tensors
    /// with no Hugging Face counterpart, e.g. `rope_freqs.weight`, are left out).
    fn names(&self) -> Vec<String> {
        self.tensors()
            .iter()
            .filter_map(|t| names::hf_name(&t.name))
            .collect()
    }

    fn load(&self, name: &str) -> Result<HostTensor, LoadError> {
        let missing = || LoadError::MissingTensor {
            path: self.path().to_path_buf(),
            name: name.to_owned(),
        };
        let gguf = names::gguf_name(name).ok_or_else(missing)?;
        if self.tensor(&gguf).is_none() {
            return Err(missing());
        }
        let tensor = self.dequantize(&gguf)?;
        let cols = if tensor.shape.len() == 2 {
            tensor.shape[1]
        } else {
            1
        };
        Ok(HostTensor {
            data: self.unpermute(name, tensor.data, cols)?,
            shape: tensor.shape,
        })
    }

    fn load_blocks(&self, name: &str) -> Result<Option<BlockWeight>, LoadError> {
        let Some(info) = names::gguf_name(name).and_then(|g| self.tensor(&g)) else {
            return Ok(None);
        };
        if info.dims.len() != 2 || !BlockWeight::supports(info.kind) {
            return Ok(None);
        }
        let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
        let bytes = self.tensor_bytes(info).to_vec();
        let row_bytes = bytes.len() / rows.max(1);
        let bytes = self.unpermute(name, bytes, row_bytes)?;
        BlockWeight::new(info.kind, rows, cols, bytes)
            .map(Some)
            .map_err(|reason| LoadError::Format {
                path: self.path().to_path_buf(),
                detail: format!("tensor `{}`: {reason}", info.name),
            })
    }
}
