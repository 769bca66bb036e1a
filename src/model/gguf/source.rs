//! `GgufFile` as a [`WeightSource`]: Hugging Face names in, f32 tensors in
//! the Hugging Face layout out, with llama's Q/K rows un-permuted.

use std::path::Path;

use super::names::{self, PermutedProjection};
use super::reader::GgufFile;
use crate::model::{HostTensor, LoadError, WeightSource};

impl GgufFile {
    /// Whether llama.cpp's converter permuted this file's Q/K rows (it does
    /// for `llama`, not for `qwen2`/`qwen3`).
    pub fn qk_rows_permuted(&self) -> Result<bool, LoadError> {
        Ok(self.architecture()? == "llama")
    }

    fn unpermute(
        &self,
        name: &str,
        kind: PermutedProjection,
        tensor: HostTensor,
    ) -> Result<HostTensor, LoadError> {
        let arch = self.architecture()?;
        let key = match kind {
            PermutedProjection::Query => format!("{arch}.attention.head_count"),
            PermutedProjection::Key => format!("{arch}.attention.head_count_kv"),
        };
        let n_head = match (kind, self.opt_u64(&key)?) {
            (_, Some(n)) => n,
            // llama.cpp defaults head_count_kv to head_count.
            (PermutedProjection::Key, None) => {
                self.get_u64(&format!("{arch}.attention.head_count"))?
            }
            (PermutedProjection::Query, None) => self.get_u64(&key)?,
        } as usize;
        let cols = if tensor.shape.len() == 2 {
            tensor.shape[1]
        } else {
            1
        };
        let data = names::unpermute_rows(&tensor.data, cols, n_head).map_err(|reason| {
            LoadError::Format {
                path: self.path().to_path_buf(),
                detail: format!("cannot un-permute `{name}`: {reason}"),
            }
        })?;
        Ok(HostTensor {
            shape: tensor.shape,
            data,
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
        match names::permuted_projection(name) {
            Some(kind) if self.qk_rows_permuted()? => self.unpermute(name, kind, tensor),
            _ => Ok(tensor),
        }
    }
}
