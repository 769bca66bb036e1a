//! `hyperscale generate`: W samples of one prompt under a cache policy,
//! the first streamed as it decodes.

use std::fmt;

use serde::Serialize;

use crate::cli::GenerateArgs;
use crate::device::DeviceKind;
use crate::generate::check_sampling;
use crate::generate::{self as engine, Completion, Request, SamplingParams, StopCriteria};
use crate::limits::{
    BatchAsk, LimitError, ModelLimits, available_memory, kept_at_least, policy_fits,
};
use crate::runtime::LoadedModel;

use super::{CommandError, inputs::load_model};

/// The completions of one `generate`.
///
/// Displayed as what follows the streamed first sample: with `--json` one
/// JSON object per sample and line (nothing was streamed), else the other
/// samples, each under a `--- sample i ---` line.
#[derive(Debug, Serialize)]
pub struct GenerateReport {
    pub completions: Vec<Completion>,
    #[serde(skip)]
    json: bool,
}

impl GenerateReport {
    /// The first sample's counts and speed, for stderr (none with `--json`).
    pub fn summary(&self) -> Option<String> {
        let c = self.completions.first().filter(|_| !self.json)?;
        Some(format!(
            "[{} prompt + {} generated tokens, {:?}; {:.1} tok/s decode; KV reads {}, peak resident {}]",
            c.prompt_tokens,
            c.generated_tokens,
            c.finish_reason,
            c.timing.decode_tokens_per_second,
            c.kv.decode_reads,
            c.batch_peak_resident
        ))
    }
}

impl fmt::Display for GenerateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.json {
            for c in &self.completions {
                let line = serde_json::to_string(c).map_err(|_| fmt::Error)?;
                writeln!(f, "{line}")?;
            }
            return Ok(());
        }
        for c in self.completions.iter().skip(1) {
            writeln!(f, "--- sample {} ---\n{}", c.sample, c.text)?;
        }
        Ok(())
    }
}

/// Runs `generate`; `stream` receives sample 0's text as it decodes (then
/// a final newline), unless `--json`.
pub fn generate(
    args: &GenerateArgs,
    mut stream: impl FnMut(&str),
) -> Result<GenerateReport, CommandError> {
    if args.samples == 0 {
        return Err(CommandError::usage("--samples must be at least 1"));
    }
    if args.max_tokens == 0 {
        return Err(CommandError::usage("--max-tokens must be at least 1"));
    }
    // The flags the user gave, before the model loads; defaults from the
    // model's generation_config.json are checked once merged.
    if args.temperature.is_some() || args.top_p.is_some() {
        check_sampling(
            args.temperature.map_or(0.0, f64::from),
            args.top_p.map_or(1.0, f64::from),
        )
        .map_err(|e| CommandError::usage(format!("--{}: {e}", e.param().replace('_', "-"))))?;
    }
    let user = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).map_err(|source| CommandError::ReadPrompt {
                path: f.clone(),
                source,
            })?
        }
        (None, None) => return Err(CommandError::usage("give --prompt or --prompt-file")),
    };
    let model = load_model(&args.model)?;
    let prompt = model.prompt_ids(&user, args.system.as_deref(), args.raw)?;
    if prompt.is_empty() {
        return Err(CommandError::usage(
            "--prompt: the prompt has no tokens (with --raw, give some text)",
        ));
    }
    let defaults = &model.generation;
    let sampled = defaults.do_sample.unwrap_or(false);
    let sampling = SamplingParams {
        temperature: args.temperature.unwrap_or(if sampled {
            defaults.temperature.unwrap_or(1.0) as f32
        } else {
            0.0
        }),
        top_p: args.top_p.unwrap_or(defaults.top_p.unwrap_or(1.0) as f32),
        top_k: args.top_k.unwrap_or(defaults.top_k.unwrap_or(0)),
        seed: args.seed,
    };
    check_sampling(f64::from(sampling.temperature), f64::from(sampling.top_p)).map_err(|e| {
        CommandError::usage(format!(
            "`{}` of the model's generation_config.json: {e}",
            e.param()
        ))
    })?;
    check_batch(&model, args, prompt.len())?;
    let request = Request {
        prompt,
        samples: args.samples,
        first_sample: 0,
        max_tokens: args.max_tokens,
        sampling,
        stop: StopCriteria {
            eos_ids: model.tokenizer.eos_ids().to_vec(),
            stop_strings: args.stop.clone(),
        },
    };
    let policy = args.policy.to_policy().map_err(CommandError::Usage)?;
    let mut store = model.policy_store(&policy)?;
    let mut decoder = model.tokenizer.incremental_decoder(true);
    let on_token = |ev: engine::TokenEvent| {
        if !args.json
            && ev.sample == 0
            && !model.tokenizer.eos_ids().contains(&ev.token)
            && let Ok(Some(text)) = decoder.step(ev.token)
        {
            stream(&text);
        }
    };
    let completions = match args.prefill_chunk {
        None => engine::generate(&model, &model.tokenizer, &mut store, &[request], on_token),
        // Through the scheduler, which prefills in pieces; one request, so
        // the same completions as `generate`.
        Some(chunk) => {
            let mut done = Vec::new();
            engine::generate_continuous(
                &model,
                &model.tokenizer,
                &mut store,
                [request],
                engine::SchedulerOptions {
                    max_sequences: args.samples.max(1),
                    kv_memory: None,
                    keep_prior: None,
                    prefill_chunk: Some(chunk),
                },
                on_token,
                |c| done.extend(c),
            );
            done
        }
    };
    if !args.json {
        if let Ok(rest) = decoder.finish() {
            stream(&rest);
        }
        stream("\n");
    }
    Ok(GenerateReport {
        completions,
        json: args.json,
    })
}

/// W × L against the model's context and this machine's memory, before
/// decoding starts.
fn check_batch(
    model: &LoadedModel,
    args: &GenerateArgs,
    prompt: usize,
) -> Result<(), CommandError> {
    let limits = ModelLimits::of(&model.config);
    let policy = args.policy.to_policy().map_err(CommandError::Usage)?;
    policy_fits(&policy, limits.context).map_err(|(p, e)| {
        CommandError::usage(format!("--{}: {e}", p.replace("page_size", "page-size")))
    })?;
    let positions = (prompt as u64).saturating_add(args.max_tokens as u64);
    let ask = BatchAsk {
        sequences: args.samples as u64,
        positions,
        kv_tokens_per_sequence: kept_at_least(&policy, None, positions)
            .saturating_sub(prompt as u64),
        shared_kv_tokens: prompt as u64,
        kv_on_host: model.device == DeviceKind::Cpu,
    };
    let what = format!(
        "{} sample(s) of a {prompt}-token prompt + {} new tokens",
        args.samples, args.max_tokens
    );
    limits
        .check(&ask, available_memory(), &what)
        .map_err(|e| match e {
            LimitError::Memory { .. } if args.samples > 1 => {
                CommandError::usage(format!("--samples: {e}"))
            }
            _ => CommandError::usage(format!("--max-tokens: {e}")),
        })
}
