//! One optimisation step of DMS retrofitting: teacher pass (no graph),
//! relaxed student pass, loss, backward, gradients clipped by their global
//! norm (HF Trainer's `max_grad_norm`), AdamW on the decision parameters
//! only.

use std::time::Instant;

use burn::module::ParamId;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::forward::{Mode, forward};
use super::loss::{compression_loss, evicted_fraction, kl_student_teacher};
use super::noise::{logistic_noise, sample_seed};
use super::{DecisionParams, FrozenModel, TrainConfig};
use crate::model::{LoadError, ModelConfig, WeightSource};

/// One line of the JSONL training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Updates done, this one included.
    pub step: usize,
    /// CR the compression loss aimed at in this step.
    pub target_cr: f64,
    /// `1 / (1 − fraction evicted)` of the step's hard (noisy) decisions.
    pub achieved_cr: f64,
    pub kl: f64,
    pub compression_loss: f64,
    pub loss: f64,
    pub tokens: usize,
    pub tokens_per_second: f64,
}

/// The state of a run: frozen base, trainable decisions, optimiser.
pub struct Trainer<B: AutodiffBackend> {
    pub base: FrozenModel<B>,
    pub params: DecisionParams<B>,
    pub config: TrainConfig,
    optim: OptimizerAdaptor<AdamW, DecisionParams<B>, B>,
    step: usize,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Loads the base as constants and the decision parameters (fresh, or
    /// from adapter tensors present in `weights`).
    pub fn new(
        config: TrainConfig,
        model: &ModelConfig,
        weights: &dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let base = FrozenModel::load(model, weights, device)?;
        let params = DecisionParams::load_or_init(config.dms.variant, model, weights, device)?;
        let optim = AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(config.beta2)
            .with_weight_decay(0.0)
            .init::<B, DecisionParams<B>>();
        Ok(Self {
            base,
            params,
            config,
            optim,
            step: 0,
        })
    }

    /// Updates done so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// One update on `tokens`; `mask[i]` says whether position i's
    /// next-token distribution counts in the KL (false on pad/EOS).
    ///
    /// # Panics
    /// If `tokens` is empty or `mask` has another length.
    pub fn step(&mut self, tokens: &[u32], mask: &[bool]) -> StepLog {
        self.step_batch(&[(tokens, mask)])
    }

    /// One update on a batch of sequences: each sequence's loss (with its
    /// own noise, [`sample_seed`]) is backpropagated divided by the batch
    /// size and the gradients are summed, so the update follows the batch
    /// mean of the loss; the log reports the batch means. A batch of one is
    /// [`Trainer::step`].
    ///
    /// # Panics
    /// If `batch` is empty, or a sequence is empty or its mask has another
    /// length.
    pub fn step_batch(&mut self, batch: &[(&[u32], &[bool])]) -> StepLog {
        assert!(!batch.is_empty(), "empty batch");
        let start = Instant::now();
        let cfg = &self.base.config;
        let target = self.config.target_fraction(self.step);
        let dms = &self.config.dms;
        let n = batch.len() as f64;
        let mut accumulator = GradientsAccumulator::<DecisionParams<B>>::new();
        let (mut kl_sum, mut comp_sum, mut frac_sum, mut loss_sum, mut tokens_sum) =
            (0.0, 0.0, 0.0, 0.0, 0);
        for (i, (tokens, mask)) in batch.iter().enumerate() {
            let noise = logistic_noise::<B>(
                sample_seed(self.config.seed, self.step, i),
                cfg.num_layers,
                tokens.len(),
                cfg.num_kv_heads,
                &self.base.device,
            );
            let teacher = forward(&self.base, &self.params, dms, tokens, &Mode::Teacher);
            let relaxed = Mode::Relaxed {
                noise,
                tau: dms.tau,
            };
            let student = forward(&self.base, &self.params, dms, tokens, &relaxed);
            let kl = kl_student_teacher(student.logits, teacher.logits.detach(), mask);
            let fraction = evicted_fraction(&student.z);
            let comp = compression_loss(fraction.clone(), target);
            let loss = kl.clone() + comp.clone();
            let scalar = |t: Tensor<B, 1>| f64::from(t.into_scalar().elem::<f32>());
            kl_sum += scalar(kl);
            comp_sum += scalar(comp);
            frac_sum += scalar(fraction.detach());
            loss_sum += scalar(loss.clone());
            tokens_sum += tokens.len();
            let grads = GradientsParams::from_grads(loss.div_scalar(n).backward(), &self.params);
            accumulator.accumulate(&self.params, grads);
        }
        let mut grads = accumulator.grads();
        clip_global_norm(&mut grads, &self.params, self.config.grad_clip);
        let params = std::mem::replace(&mut self.params, empty_params());
        self.params = self.optim.step(self.config.lr, params, grads);
        self.step += 1;
        let seconds = start.elapsed().as_secs_f64();
        let frac = frac_sum / n;
        StepLog {
            step: self.step,
            target_cr: 1.0 / (1.0 - target),
            achieved_cr: 1.0 / (1.0 - frac).max(1e-9),
            kl: kl_sum / n,
            compression_loss: comp_sum / n,
            loss: loss_sum / n,
            tokens: tokens_sum,
            tokens_per_second: tokens_sum as f64 / seconds.max(1e-9),
        }
    }
}

/// Scale `grads` so that their global L2 norm, over every decision
/// tensor together, is at most `max_norm`: `torch.nn.utils.clip_grad_norm_`
/// as HF Trainer applies it with `max_grad_norm` (coefficient `max_norm /
/// (norm + 1e-6)`, applied when below 1). One tensor with a large gradient
/// therefore shrinks every other's too, unlike per-tensor clipping. Returns
/// the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend>(
    grads: &mut GradientsParams,
    params: &DecisionParams<B>,
    max_norm: f32,
) -> f64 {
    let vectors: Vec<ParamId> = params
        .norm
        .iter()
        .chain(&params.bias)
        .map(|p| p.id)
        .collect();
    let matrices: Vec<ParamId> = params.proj.iter().map(|p| p.id).collect();
    let squares =
        |t: Tensor<B::InnerBackend, 1>| f64::from(t.square().sum().into_scalar().elem::<f32>());
    let mut total = 0.0;
    for &id in &vectors {
        if let Some(g) = grads.get::<B::InnerBackend, 1>(id) {
            total += squares(g);
        }
    }
    for &id in &matrices {
        if let Some(g) = grads.get::<B::InnerBackend, 2>(id) {
            total += squares(g.flatten(0, 1));
        }
    }
    let norm = total.sqrt();
    let coef = f64::from(max_norm) / (norm + 1e-6);
    if coef < 1.0 {
        let coef = coef as f32;
        for &id in &vectors {
            if let Some(g) = grads.remove::<B::InnerBackend, 1>(id) {
                grads.register(id, g.mul_scalar(coef));
            }
        }
        for &id in &matrices {
            if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
                grads.register(id, g.mul_scalar(coef));
            }
        }
    }
    norm
}

fn empty_params<B: Backend>() -> DecisionParams<B> {
    DecisionParams {
        norm: Vec::new(),
        proj: Vec::new(),
        bias: Vec::new(),
    }
}
