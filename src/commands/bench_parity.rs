//! `hyperscale bench parity`: the model on `--device` against the same
//! model on `--reference-device`, logits compared step by step against a
//! tolerance.

use std::fmt;

use serde::Serialize;

use crate::bench::parity::{self, ParityReport};
use crate::cli::BenchParityArgs;
use crate::device::DeviceKind;
use crate::model::DecodeWeights;
use crate::model::synthetic::SyntheticSpec;
use crate::runtime::{BenchModel, SyntheticModel};

use super::{CommandError, as_display, inputs::load_model_on};

/// Default tolerance when both sides compute in f32.
pub const F32_PARITY_TOLERANCE: f64 = 1e-3;
/// Default tolerance for bf16 weights: both sides round the same weights and
/// activations, but a different f32 accumulation order can round a
/// projection's output to the neighbouring bf16 value (2⁻⁸ relative), and
/// that compounds over the layers.
pub const BF16_PARITY_TOLERANCE: f64 = 3e-2;

/// `bench parity`'s result; its JSON is `--json`'s file, its `Display` the
/// table and, when within tolerance, the `parity ok` line.
#[derive(Debug, Clone, Serialize)]
pub struct ParityOutcome {
    /// The `--model` argument as given.
    pub model: String,
    #[serde(serialize_with = "as_display")]
    pub device: DeviceKind,
    #[serde(serialize_with = "as_display")]
    pub reference_device: DeviceKind,
    /// The candidate's resolved weight form.
    #[serde(serialize_with = "as_display")]
    pub weights: DecodeWeights,
    #[serde(serialize_with = "as_display")]
    pub reference_weights: DecodeWeights,
    pub tolerance: f64,
    /// Largest `max |Δlogit| / max(1, max |logit|)` over the steps.
    pub worst_relative: f64,
    pub report: ParityReport,
}

impl ParityOutcome {
    /// Within tolerance.
    pub fn passed(&self) -> bool {
        self.worst_relative <= self.tolerance
    }

    /// The line saying why it failed (for stderr), none when it passed.
    pub fn failure(&self) -> Option<String> {
        (!self.passed()).then(|| {
            format!(
                "parity FAILED: worst relative logit difference {:.2e} > tolerance {:.1e}",
                self.worst_relative, self.tolerance
            )
        })
    }
}

fn relative(s: &parity::ParityStep) -> f64 {
    s.max_abs_diff / s.max_abs_logit.max(1.0)
}

impl fmt::Display for ParityOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps = &self.report.steps;
        writeln!(
            f,
            "{}: {} ({} weights) against {} ({} weights), {} positions",
            self.model,
            self.device,
            self.weights,
            self.reference_device,
            self.reference_weights,
            steps.len()
        )?;
        writeln!(
            f,
            "| step | max abs Δlogit | max abs logit | relative | argmax ref | argmax {} |",
            self.device
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|---:|")?;
        for s in steps {
            writeln!(
                f,
                "| {} | {:.3e} | {:.2} | {:.2e} | {} | {} |",
                s.step,
                s.max_abs_diff,
                s.max_abs_logit,
                relative(s),
                s.reference_argmax,
                s.candidate_argmax
            )?;
        }
        if self.passed() {
            writeln!(
                f,
                "parity ok: worst relative difference {:.2e} ≤ {:.1e}; argmax agrees at {}/{} positions",
                self.worst_relative,
                self.tolerance,
                self.report.argmax_agree,
                steps.len()
            )?;
        }
        Ok(())
    }
}

/// Runs `bench parity`.
pub fn bench_parity(args: &BenchParityArgs) -> Result<ParityOutcome, CommandError> {
    // A NaN tolerance made every comparison pass.
    if let Some(t) = args.tolerance.filter(|t| !(t.is_finite() && *t >= 0.0)) {
        return Err(CommandError::usage(format!(
            "--tolerance {t}: must be a finite number >= 0"
        )));
    }
    let device = args.model.device;
    let reference_device = args.reference_device;
    // Refuse an unusable device before loading anything on the other.
    device.probe()?;
    reference_device.probe()?;
    let spec_text = args.model.model.to_string_lossy().into_owned();
    // The reference runs the candidate's resolved weight form, so the
    // comparison isolates the device (`auto` is bf16 on CUDA, blocks on CPU).
    let form;
    let report = match SyntheticSpec::parse(&spec_text) {
        Some(spec) => {
            let spec = spec.map_err(CommandError::Usage)?;
            let prompt: Vec<u32> = (0..args.prompt.len().max(1) as u32)
                .map(|i| 1 + (i * 7919) % (spec.config.vocab_size as u32 - 1))
                .collect();
            let candidate =
                SyntheticModel::load(spec.clone(), 0, device, args.model.decode_weights)?;
            form = candidate.weights_form();
            let reference = SyntheticModel::load(
                spec,
                0,
                reference_device,
                args.reference_weights.unwrap_or(form),
            )?;
            parity::compare_logits(&reference, &candidate, &prompt, args.steps)
        }
        None => {
            let candidate = load_model_on(&args.model, device, args.model.decode_weights)?;
            form = candidate.weights_form();
            let reference = load_model_on(
                &args.model,
                reference_device,
                args.reference_weights.unwrap_or(form),
            )?;
            let prompt = reference.prompt_ids(&args.prompt, None, true)?;
            if prompt.is_empty() {
                return Err(CommandError::usage("--prompt: the prompt has no tokens"));
            }
            parity::compare_logits(&reference, &candidate, &prompt, args.steps)
        }
    };
    // Half-precision projections (bf16, or f16 where a device has no bf16).
    let half = |w: DecodeWeights| matches!(w, DecodeWeights::Bf16 | DecodeWeights::F16);
    let bf16 = half(form) || args.reference_weights.is_some_and(half);
    let tolerance = args.tolerance.unwrap_or(if bf16 {
        BF16_PARITY_TOLERANCE
    } else {
        F32_PARITY_TOLERANCE
    });
    let worst_relative = report.steps.iter().map(relative).fold(0.0, f64::max);
    Ok(ParityOutcome {
        model: spec_text,
        device,
        reference_device,
        weights: form,
        reference_weights: args.reference_weights.unwrap_or(form),
        tolerance,
        worst_relative,
        report,
    })
}
