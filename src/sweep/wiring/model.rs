//! The model side of a sweep: one loaded model shared by the prompt renderer
//! (tokenizer, chat template) and the generator (the network), loaded lazily
//! on first use and replaced when a trial needs another checkpoint (trials
//! run model by model, so each loads once).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::store::{kv_store_for, policy_supported_on};
use super::{TaskRegistry, WiringError};
use crate::device::DeviceKind;
use crate::generate::{self, Decoder, Request};
use crate::model::DecodeWeights;
use crate::runtime::LoadedModel;
use crate::sweep::{
    BoxError, Dtype, Generated, PromptContext, PromptRenderer, RenderedPrompt, SampleGenerator,
    Trial,
};
use crate::task::Problem;

/// The model in memory: at most one at a time. Lives on the generation
/// thread (burn models are not shared across threads here).
#[derive(Default)]
pub struct ModelCache {
    current: RefCell<Option<Loaded>>,
}

/// The model in memory and what it was loaded as.
struct Loaded {
    path: String,
    device: DeviceKind,
    form: DecodeWeights,
    model: Rc<LoadedModel>,
}

/// The projections' weight form for a trial's `dtype`, as
/// `--decode-weights` names it: `f32` weights, a GGUF's `quantized` blocks
/// (CPU decode steps stream them, bit-identical to f32; elsewhere f32),
/// `q8act`, or half-precision `bf16` / `f16` weights. A form the device
/// cannot run is refused when the config is read (bf16 on wgpu) or when
/// the model loads (f16 on a wgpu adapter without `shader-f16`, bf16 below
/// compute capability 8.0), in one line.
pub fn weights_for(dtype: Dtype) -> DecodeWeights {
    match dtype {
        Dtype::F32 => DecodeWeights::F32,
        Dtype::Quantized => DecodeWeights::Quantized,
        Dtype::Q8Act => DecodeWeights::Q8Act,
        Dtype::Bf16 => DecodeWeights::Bf16,
        Dtype::F16 => DecodeWeights::F16,
    }
}

impl ModelCache {
    /// The model at `path` on `device` with its projections in `dtype`,
    /// loading it (and dropping any other first) when it is not the current
    /// one.
    pub fn get(
        &self,
        path: &str,
        device: DeviceKind,
        dtype: Dtype,
    ) -> Result<Rc<LoadedModel>, WiringError> {
        let form = weights_for(dtype);
        if let Some(l) = &*self.current.borrow()
            && l.path == path
            && l.device == device
            && l.form == form
        {
            return Ok(l.model.clone());
        }
        // Free the old weights before reading the new ones.
        self.current.replace(None);
        let start = Instant::now();
        let local = super::catalog::resolve_model(path)?;
        let model = LoadedModel::load_with(&local, device, form).map_err(|source| {
            WiringError::LoadModel {
                path: path.to_string(),
                source,
            }
        })?;
        tracing::info!(
            "loaded `{path}` on {device} ({} weights) in {:.1} s",
            model.weights_form(),
            start.elapsed().as_secs_f64()
        );
        let model = Rc::new(model);
        self.current.replace(Some(Loaded {
            path: path.to_string(),
            device,
            form,
            model: model.clone(),
        }));
        Ok(model)
    }
}

/// Problem → the task's user message → the model's chat template → token ids;
/// stops at the model's EOS ids.
pub struct ChatRenderer {
    models: Rc<ModelCache>,
    tasks: Arc<TaskRegistry>,
}

impl ChatRenderer {
    pub fn new(models: Rc<ModelCache>, tasks: Arc<TaskRegistry>) -> Self {
        ChatRenderer { models, tasks }
    }
}

impl PromptRenderer for ChatRenderer {
    fn render(
        &mut self,
        trial: &Trial,
        problem: &Problem,
        ctx: &PromptContext<'_>,
    ) -> Result<RenderedPrompt, BoxError> {
        self.tasks.chat_prompt(problem, ctx, |user| {
            let model = self
                .models
                .get(&trial.model_path, trial.device, trial.spec.dtype)?;
            let tokens =
                model
                    .prompt_ids(user, None, false)
                    .map_err(|source| WiringError::Prompt {
                        problem: problem.id.clone(),
                        source,
                    })?;
            Ok((tokens, model.tokenizer.eos_ids().to_vec()))
        })
    }
}

/// Decodes each request into a fresh KV store built for the trial's policy.
pub struct ModelGenerator {
    models: Rc<ModelCache>,
    device: DeviceKind,
}

impl ModelGenerator {
    /// `device` is where the sweep's trials run (`model.device`), reported in
    /// records and the manifest.
    pub fn new(models: Rc<ModelCache>, device: DeviceKind) -> Self {
        ModelGenerator { models, device }
    }
}

impl SampleGenerator for ModelGenerator {
    fn device(&self) -> String {
        self.device.to_string()
    }

    fn supports(&self, trial: &Trial) -> Result<(), String> {
        policy_supported_on(&trial.spec.policy, trial.device).map_err(|e| e.to_string())
    }

    /// On a device, loads the trial's model first: the default is what
    /// the device has free with the weights in place.
    fn kv_memory_default(
        &mut self,
        trial: &Trial,
    ) -> Result<Option<crate::runtime::KvMemoryDefault>, BoxError> {
        let layers = match trial.device {
            DeviceKind::Cpu => 0,
            _ => {
                self.models
                    .get(&trial.model_path, trial.device, trial.spec.dtype)?
                    .kv_shape()
                    .layers
            }
        };
        Ok(crate::runtime::default_kv_memory(trial.device, layers))
    }

    fn generate(
        &mut self,
        trial: &Trial,
        request: &Request,
        tokens: &AtomicU64,
    ) -> Result<Generated, BoxError> {
        let model = self
            .models
            .get(&trial.model_path, trial.device, trial.spec.dtype)?;
        let shape = model.kv_shape();
        let mut store = kv_store_for(&model, &trial.spec.policy, None)?;
        let completions = generate::generate(
            &*model,
            &model.tokenizer,
            &mut store,
            std::slice::from_ref(request),
            |_| {
                tokens.fetch_add(1, Ordering::Relaxed);
            },
        );
        Ok(Generated {
            completions,
            kv_rows: (shape.layers * shape.kv_heads) as u64,
            kv_dtype: Some(store.kv_dtype()),
        })
    }

    /// The stream through [`generate::generate_continuous`] in one KV store
    /// built for `trial`'s policy.
    fn generate_stream(
        &mut self,
        trial: &Trial,
        requests: &mut dyn Iterator<Item = Request>,
        options: generate::SchedulerOptions,
        tokens: &AtomicU64,
        on_done: &mut dyn FnMut(usize, Generated),
    ) -> Result<(), BoxError> {
        let model = self
            .models
            .get(&trial.model_path, trial.device, trial.spec.dtype)?;
        let shape = model.kv_shape();
        let kv_rows = (shape.layers * shape.kv_heads) as u64;
        let mut store = kv_store_for(&model, &trial.spec.policy, options.kv_memory)?;
        let kv_dtype = Some(store.kv_dtype());
        // DMS is admitted at its measured keep rate; until one is measured,
        // at the checkpoint's target (1 / CR).
        let options = generate::SchedulerOptions {
            keep_prior: trial.spec.cr.map(|cr| 1.0 / cr),
            ..options
        };
        let stats = generate::generate_continuous(
            &*model,
            &model.tokenizer,
            &mut store,
            requests,
            options,
            |_| {
                tokens.fetch_add(1, Ordering::Relaxed);
            },
            |completions| {
                let r = completions.first().map_or(0, |c| c.request);
                on_done(
                    r,
                    Generated {
                        completions,
                        kv_rows,
                        kv_dtype,
                    },
                );
            },
        );
        if stats.over_budget > 0 {
            let budget = options.kv_memory.unwrap_or_default();
            let grown = store
                .device_pool_stats()
                .map_or(String::new(), |p| match p.grow_copies {
                    0 => String::new(),
                    n => format!("; the device pools grew past the budget by copying {n} time(s)"),
                });
            tracing::warn!(
                "{}: {} request(s) each needed more than the KV memory {budget} B \
                 (--kv-memory, [engine] kv_memory) and ran alone{grown}",
                trial.method,
                stats.over_budget
            );
        }
        if stats.preemptions > 0 {
            tracing::info!(
                "{}: {} preemption(s) over the KV memory budget, {} generated and {} prompt \
                 token(s) computed again (no sample changes)",
                trial.method,
                stats.preemptions,
                stats.recomputed_tokens,
                stats.recomputed_prompt_tokens
            );
        }
        if stats.shared_prefills > 0 {
            tracing::info!(
                "{}: {} request(s) copied a prompt prefilled by a request in flight \
                 instead of prefilling it (no sample changes)",
                trial.method,
                stats.shared_prefills
            );
        }
        Ok(())
    }
}
