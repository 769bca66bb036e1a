//! Self-distillation data: the base model answers task prompts (dense
//! cache, seeded sampling), and prompt + completion become training text,
//! so retrofitting needs no download. For `arith` the problems are drawn
//! with another seed than the task's, so evaluation problems are not
//! trained on.

use crate::generate::{Request, SamplingParams, StopCriteria, generate};
use crate::runtime::LoadedModel;
use crate::task::{LoadOptions, Problem, SampleCtx, Source, Task};

use super::TrainError;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillPlan {
    /// Task names or task files.
    pub tasks: Vec<String>,
    /// Prompts per task.
    pub prompts: usize,
    /// Completion length limit.
    pub max_tokens: usize,
    /// Sampling temperature (top-p 0.95).
    pub temperature: f32,
    /// Seed of the sampling and of `arith`'s problems.
    pub seed: u64,
}

/// The problems of one task for distillation: `arith` generated from
/// `seed + 1_000_000` (disjoint from the task's own seed), others loaded.
fn problems(task: &Task, n: usize, seed: u64) -> Result<Vec<Problem>, TrainError> {
    let mut all = match &task.source {
        Source::Arith(cfg) => {
            let per = n.div_ceil(cfg.difficulties.len().max(1));
            crate::task::arith::generate(&crate::task::ArithConfig {
                seed: seed + 1_000_000,
                per_difficulty: per,
                difficulties: cfg.difficulties.clone(),
            })
        }
        _ => {
            task.load_problems(&LoadOptions::from_env())
                .map_err(|e| TrainError::Setting {
                    field: "self-distill",
                    reason: e.to_string(),
                })?
                .problems
        }
    };
    all.truncate(n);
    Ok(all)
}

/// Token sequences `prompt ++ completion` from the base.
pub fn self_distill(
    model: &LoadedModel,
    plan: &DistillPlan,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Vec<u32>>, TrainError> {
    let setting = |reason: String| TrainError::Setting {
        field: "self-distill",
        reason,
    };
    let mut requests = Vec::new();
    for name in &plan.tasks {
        let task = crate::task::cli::resolve(name).map_err(|e| setting(crate::error_chain(&e)))?;
        for p in problems(&task, plan.prompts, plan.seed)? {
            let r = task
                .render(&p, SampleCtx::default())
                .map_err(|e| setting(crate::error_chain(&e)))?;
            let prompt = model
                .prompt_ids(&r.user_message, None, false)
                .map_err(|e| setting(crate::error_chain(&e)))?;
            requests.push(Request {
                prompt,
                samples: 1,
                first_sample: 0,
                max_tokens: plan.max_tokens,
                sampling: SamplingParams {
                    temperature: plan.temperature,
                    top_p: 0.95,
                    top_k: 0,
                    seed: plan.seed.wrapping_add(requests.len() as u64),
                },
                stop: StopCriteria {
                    eos_ids: model.tokenizer.eos_ids().to_vec(),
                    stop_strings: Vec::new(),
                },
            });
        }
    }
    let mut docs = Vec::with_capacity(requests.len());
    // In batches, so progress shows and memory stays small.
    for (i, chunk) in requests.chunks(16).enumerate() {
        let mut store = model.new_store();
        for c in generate(model, &model.tokenizer, &mut store, chunk, |_| {}) {
            let mut doc = chunk[c.request].prompt.clone();
            doc.extend(c.token_ids);
            docs.push(doc);
        }
        progress((i * 16 + chunk.len()).min(requests.len()), requests.len());
    }
    Ok(docs)
}
