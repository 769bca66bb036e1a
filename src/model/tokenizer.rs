//! The tokenizer: a thin wrapper over the `tokenizers` crate that also
//! knows the model's BOS/EOS tokens and chat template.
//!
//! Built from a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`)
//! or rebuilt from the `tokenizer.ggml.*` metadata of a GGUF file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::model::LoadError;
use crate::model::formats::gguf::{self, GgufFile};

/// Encoding or decoding failed inside the `tokenizers` crate.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("failed to encode text: {0}")]
    Encode(String),
    #[error("failed to decode token ids: {0}")]
    Decode(String),
}

/// A tokenizer plus the model's special tokens and chat template.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    origin: PathBuf,
    bos: Option<(u32, String)>,
    eos: Vec<u32>,
    eos_token: Option<String>,
    add_bos: bool,
    chat_template: Option<String>,
}

impl Tokenizer {
    /// Loads a Hugging Face `tokenizer.json`, and from the optional
    /// `tokenizer_config.json` the `bos_token`, `eos_token`,
    /// `add_bos_token` and `chat_template` (a string, or the `default`
    /// entry of a list of named templates).
    ///
    /// EOS ids listed only in `generation_config.json` can be added with
    /// [`Tokenizer::add_eos_id`].
    pub fn from_files(
        tokenizer_json: &Path,
        tokenizer_config: Option<&Path>,
    ) -> Result<Self, LoadError> {
        let inner =
            tokenizers::Tokenizer::from_file(tokenizer_json).map_err(|e| LoadError::Format {
                path: tokenizer_json.to_path_buf(),
                detail: format!("not a loadable tokenizer.json: {e}"),
            })?;
        let mut tok = Tokenizer {
            inner,
            origin: tokenizer_json.to_path_buf(),
            bos: None,
            eos: Vec::new(),
            eos_token: None,
            add_bos: false,
            chat_template: None,
        };
        if let Some(config_path) = tokenizer_config {
            tok.apply_config(config_path)?;
        }
        Ok(tok)
    }

    fn apply_config(&mut self, path: &Path) -> Result<(), LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| LoadError::Format {
                path: path.to_path_buf(),
                detail: format!("invalid JSON: {e}"),
            })?;
        let bad = |field: &str, reason: String| LoadError::BadField {
            path: path.to_path_buf(),
            field: field.to_owned(),
            reason,
        };
        // `bos_token` / `eos_token` are a string, an AddedToken object with
        // `content`, or null.
        let token_field = |field: &str| -> Result<Option<(u32, String)>, LoadError> {
            let content = match config.get(field) {
                None | Some(serde_json::Value::Null) => return Ok(None),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v
                    .get("content")
                    .and_then(|c| c.as_str())
                    .ok_or_else(|| {
                        bad(
                            field,
                            "expected a string or an object with `content`".into(),
                        )
                    })?
                    .to_owned(),
            };
            let id = self
                .inner
                .token_to_id(&content)
                .ok_or_else(|| bad(field, format!("token `{content}` is not in the vocabulary")))?;
            Ok(Some((id, content)))
        };
        self.bos = token_field("bos_token")?;
        if let Some((id, content)) = token_field("eos_token")? {
            self.eos = vec![id];
            self.eos_token = Some(content);
        }
        self.add_bos = match config.get("add_bos_token") {
            None | Some(serde_json::Value::Null) => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| bad("add_bos_token", "expected a bool".into()))?,
        };
        self.chat_template = match config.get("chat_template") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(|t| t.as_str())
                .map(str::to_owned),
            Some(_) => return Err(bad("chat_template", "expected a string or a list".into())),
        };
        Ok(())
    }

    /// Rebuilds the tokenizer from a GGUF's `tokenizer.ggml.*` metadata
    /// (byte-level BPE; see [`gguf::vocab`]).
    pub fn from_gguf(file: &GgufFile) -> Result<Self, LoadError> {
        let vocab = gguf::vocab::from_gguf(file)?;
        let inner =
            tokenizers::Tokenizer::from_str(&vocab.tokenizer_json.to_string()).map_err(|e| {
                LoadError::Format {
                    path: file.path().to_path_buf(),
                    detail: format!("tokenizer rebuilt from GGUF metadata does not load: {e}"),
                }
            })?;
        let token = |id: u32| inner.id_to_token(id).unwrap_or_default();
        Ok(Tokenizer {
            bos: vocab.bos_id.map(|id| (id, token(id))),
            eos: vocab.eos_id.into_iter().collect(),
            eos_token: vocab.eos_id.map(token),
            add_bos: vocab.add_bos,
            chat_template: vocab.chat_template,
            origin: file.path().to_path_buf(),
            inner,
        })
    }

    /// The file this tokenizer came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Token ids of `text`. With `add_special`, the post-processor runs
    /// (it prepends BOS when the model's config says `add_bos_token`).
    /// Special-token strings in `text` (`<|im_start|>`) always map to their
    /// ids. Encode rendered chat prompts with `add_special = false`: the
    /// templates already write BOS where the model wants it.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizeError> {
        self.inner
            .encode_fast(text, add_special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// The text of `ids`; `skip_special` drops special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, TokenizeError> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| TokenizeError::Decode(e.to_string()))
    }

    /// A streaming decoder that yields text only once it is complete UTF-8.
    pub fn incremental_decoder(&self, skip_special: bool) -> IncrementalDecoder<'_> {
        IncrementalDecoder {
            tokenizer: self,
            skip_special,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
        }
    }

    /// The id of a token string (special or not).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The BOS token id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos.as_ref().map(|(id, _)| *id)
    }

    /// The BOS token string (the chat template's `bos_token`).
    pub fn bos_token(&self) -> Option<&str> {
        self.bos.as_ref().map(|(_, s)| s.as_str())
    }

    /// Whether `encode(.., add_special = true)` is meant to prepend BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Ids that end generation (the EOS token first).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// The EOS token string (the chat template's `eos_token`).
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Adds an id that also ends generation (e.g. from `generation_config.json`).
    pub fn add_eos_id(&mut self, id: u32) {
        if !self.eos.contains(&id) {
            self.eos.push(id);
        }
    }

    /// The model's Jinja chat template, if it ships one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// Turns a stream of token ids into text pieces, holding back a piece
/// until it decodes to complete UTF-8 (a multi-byte character split over
/// several byte-level tokens comes out once, whole).
///
/// Concatenating every [`IncrementalDecoder::step`] output and
/// [`IncrementalDecoder::finish`] gives `decode(all_ids)`.
#[derive(Debug)]
pub struct IncrementalDecoder<'t> {
    tokenizer: &'t Tokenizer,
    skip_special: bool,
    /// Ids from `prefix_offset` on; earlier ids are dropped.
    ids: Vec<u32>,
    /// `ids[..prefix_offset]` gives context only: its text was emitted.
    prefix_offset: usize,
    /// `ids[..read_offset]` has been emitted.
    read_offset: usize,
}

impl IncrementalDecoder<'_> {
    /// Feeds one id; returns the newly completed text, if any.
    pub fn step(&mut self, id: u32) -> Result<Option<String>, TokenizeError> {
        self.ids.push(id);
        let (done, all) = self.texts()?;
        if all.len() <= done.len() || all.ends_with('\u{FFFD}') || !all.starts_with(&done) {
            return Ok(None);
        }
        let piece = all[done.len()..].to_owned();
        // Keep only the last emitted span as context for the next step.
        self.ids.drain(..self.prefix_offset);
        self.prefix_offset = self.read_offset - self.prefix_offset;
        self.read_offset = self.ids.len();
        Ok(Some(piece))
    }

    /// The text still held back (possibly ending in U+FFFD when the stream
    /// stopped inside a character).
    pub fn finish(self) -> Result<String, TokenizeError> {
        let (done, all) = self.texts()?;
        Ok(all.strip_prefix(done.as_str()).unwrap_or(&all).to_owned())
    }

    /// The text of the emitted context (`prefix_offset..read_offset`) and
    /// of the context with everything after it (`prefix_offset..`).
    fn texts(&self) -> Result<(String, String), TokenizeError> {
        let done = self.tokenizer.decode(
            &self.ids[self.prefix_offset..self.read_offset],
            self.skip_special,
        )?;
        let all = self
            .tokenizer
            .decode(&self.ids[self.prefix_offset..], self.skip_special)?;
        Ok((done, all))
    }
}
