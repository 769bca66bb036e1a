//! A model loaded on a device, with its tokenizer and chat template: what the
//! CLI, the benchmarks and the sweep generate with.

use std::path::{Path, PathBuf};

use burn::backend::flex::{Flex, FlexDevice};

use crate::device::{DeviceError, DeviceKind};
use crate::generate::{Decoder, TextDecoder};
use crate::kv::{CachePolicy, KvError, KvShape, KvStore, SeqId};
use crate::model::hf::GenerationDefaults;
use crate::model::loader::{ModelFormat, open_model};
use crate::model::tokenizer::TokenizeError;
use crate::model::{LoadError, ModelConfig, Tokenizer, Transformer};
use crate::prompt::{ChatError, ChatTemplate, Message, TemplateVars};

/// Anything that stops a model from being loaded or prompted.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error("`{0}` has no chat template; pass --raw to feed the prompt as is")]
    NoChatTemplate(PathBuf),
    #[error("failed to read chat template `{path}`: {source}")]
    ReadChatTemplate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where Transformers ≥ 4.43 saves the chat template of a checkpoint
/// directory when it is not inside `tokenizer_config.json`.
const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// The transformer on its backend.
pub enum Engine {
    Cpu(Transformer<Flex>),
    #[cfg(feature = "cuda")]
    Cuda(Transformer<crate::kv::CudaBackend>),
    #[cfg(feature = "wgpu")]
    Wgpu(Transformer<crate::kv::WgpuBackend>),
}

/// Run `$body` with `$m` bound to the engine's transformer, whatever its backend.
macro_rules! with_engine {
    ($engine:expr, $m:ident => $body:expr) => {
        match $engine {
            Engine::Cpu($m) => $body,
            #[cfg(feature = "cuda")]
            Engine::Cuda($m) => $body,
            #[cfg(feature = "wgpu")]
            Engine::Wgpu($m) => $body,
        }
    };
}

/// A loaded model, ready to generate.
pub struct LoadedModel {
    pub path: PathBuf,
    pub format: ModelFormat,
    pub device: DeviceKind,
    pub config: ModelConfig,
    pub tokenizer: Tokenizer,
    pub generation: GenerationDefaults,
    pub engine: Engine,
    chat: Option<ChatTemplate>,
}

impl LoadedModel {
    /// Load the model at `path` (GGUF file, Hugging Face directory or wheel)
    /// onto `device`, after checking the device can be used.
    pub fn load(path: &Path, device: DeviceKind) -> Result<Self, RuntimeError> {
        device.probe()?;
        let source = open_model(path)?;
        let (config, weights) = (&source.config, source.weights.as_ref());
        let engine = match device {
            DeviceKind::Cpu => Engine::Cpu(Transformer::load(config, weights, &FlexDevice)?),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda(index) => Engine::Cuda(Transformer::load(
                config,
                weights,
                &cubecl::cuda::CudaDevice { index },
            )?),
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => Engine::Wgpu(Transformer::load(
                config,
                weights,
                &cubecl::wgpu::WgpuDevice::default(),
            )?),
            #[allow(
                unreachable_patterns,
                reason = "reachable in builds without the cuda or wgpu feature; probe() refuses those first"
            )]
            other => {
                return Err(DeviceError::NotCompiled {
                    device: other.to_string(),
                    feature: "cuda or wgpu",
                }
                .into());
            }
        };
        let chat = match source.tokenizer.chat_template() {
            Some(template) => Some(ChatTemplate::new(template)?),
            None => match path.join(CHAT_TEMPLATE_FILE) {
                file if source.format == ModelFormat::HfDir && file.is_file() => {
                    let text = std::fs::read_to_string(&file).map_err(|source| {
                        RuntimeError::ReadChatTemplate {
                            path: file.clone(),
                            source,
                        }
                    })?;
                    Some(ChatTemplate::new(&text)?)
                }
                _ => None,
            },
        };
        Ok(Self {
            path: path.to_path_buf(),
            format: source.format,
            device,
            config: source.config,
            tokenizer: source.tokenizer,
            generation: source.generation,
            engine,
            chat,
        })
    }

    /// Prompt token ids for a user message: rendered through the chat
    /// template (with the generation prompt) unless `raw`.
    pub fn prompt_ids(
        &self,
        user: &str,
        system: Option<&str>,
        raw: bool,
    ) -> Result<Vec<u32>, RuntimeError> {
        if raw {
            let mut ids = Vec::new();
            if self.tokenizer.add_bos()
                && let Some(bos) = self.tokenizer.bos_id()
            {
                ids.push(bos);
            }
            ids.extend(self.tokenizer.encode(user, false)?);
            return Ok(ids);
        }
        let chat = self
            .chat
            .as_ref()
            .ok_or_else(|| RuntimeError::NoChatTemplate(self.path.clone()))?;
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(Message::system(s));
        }
        messages.push(Message::user(user));
        let vars = TemplateVars {
            bos_token: self.tokenizer.bos_token().map(str::to_string),
            eos_token: self.tokenizer.eos_token().map(str::to_string),
            enable_thinking: None,
        };
        let text = chat.render(&messages, true, &vars)?;
        // The template writes any BOS itself; encoding adds nothing more.
        Ok(self.tokenizer.encode(&text, false)?)
    }

    /// Bytes of weights one forward step streams (f32), for roofline figures.
    pub fn weight_bytes_per_step(&self) -> u64 {
        self.config.f32_weight_bytes()
    }

    /// An empty KV store shaped for this model.
    pub fn new_store(&self) -> KvStore {
        KvStore::new(self.kv_shape())
    }

    /// An empty KV store running `policy`, its DMS fields defaulted from
    /// the checkpoint (an error for `dms` on a model without DMS
    /// parameters).
    pub fn policy_store(&self, policy: &CachePolicy) -> Result<KvStore, KvError> {
        let dms = with_engine!(&self.engine, m => m.dms_params());
        KvStore::with_policy(self.kv_shape(), policy, dms)
    }
}

impl Decoder for LoadedModel {
    fn kv_shape(&self) -> KvShape {
        with_engine!(&self.engine, m => Decoder::kv_shape(m))
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
        with_engine!(&self.engine, m => Decoder::prefill(m, store, seq, tokens))
    }

    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        with_engine!(&self.engine, m => Decoder::decode(m, store, seqs, tokens))
    }
}

impl TextDecoder for Tokenizer {
    /// Special tokens are skipped; an id the vocabulary lacks decodes to
    /// nothing rather than failing a whole generation.
    fn decode(&self, ids: &[u32]) -> String {
        Tokenizer::decode(self, ids, true).unwrap_or_default()
    }
}
