//! What an expanded plan asks of the machine, checked by [`super::expand`]
//! before anything runs (so a run, a `--dry-run` and a shard all refuse the
//! same config, and no run directory is created first):
//!
//! - every sample record of the plan has an entry in the schedule, so the
//!   records planned are at most [`MAX_PLANNED_RECORDS`];
//! - every L fits the model's context after at least one prompt token, and
//!   the largest batch of every width group fits the memory this machine has
//!   available: a lower bound of W × (KV entries the method keeps after L
//!   new tokens) × KV bytes per token on the CPU, plus W logits rows
//!   ([`ModelLimits::check`]). The prompt is not rendered yet, so its
//!   positions are left out: the bound only refuses what cannot fit.
//!
//! The model's limits are the base model's (`model.path`): DMS checkpoints
//! are retrofits of the same architecture.

use super::expand::Group;
use super::plan::Plan;
use crate::device::DeviceKind;
use crate::limits::{
    BatchAsk, LimitError, MAX_PLANNED_RECORDS, ModelLimits, available_memory, kept_at_least,
    policy_fits,
};

/// `(key, message)` of the first bound `groups` break.
pub(crate) fn check_plan(
    plan: &Plan,
    groups: &[Group],
    problems: impl Fn(&Group) -> usize,
    limits: Option<&ModelLimits>,
) -> Result<(), (String, String)> {
    if let Some(limits) = limits {
        let available = available_memory();
        for g in groups {
            check_group(plan, g, limits, available)?;
        }
    }
    let mut records: u64 = 0;
    let mut one_each: u64 = 0;
    for g in groups {
        let per_repeat = (problems(g) as u64).saturating_mul(u64::from(plan.repeats));
        let widths: u64 = g.trials.iter().map(|t| t.spec.width as u64).sum();
        records = records.saturating_add(per_repeat.saturating_mul(widths));
        one_each = one_each.saturating_add(per_repeat.saturating_mul(g.trials.len() as u64));
    }
    if records > MAX_PLANNED_RECORDS {
        // Name the knob that breaks the bound on its own.
        let key = if one_each > MAX_PLANNED_RECORDS {
            "grid.repeats"
        } else {
            "grid.widths"
        };
        return Err((
            key.into(),
            LimitError::Count {
                value: records,
                max: MAX_PLANNED_RECORDS,
                why: "sample records of one run: problems × repeats × W, over the trials",
            }
            .to_string(),
        ));
    }
    Ok(())
}

fn check_group(
    plan: &Plan,
    g: &Group,
    limits: &ModelLimits,
    available: Option<u64>,
) -> Result<(), (String, String)> {
    let trial = &g.trials[0];
    policy_fits(&trial.spec.policy, limits.context).map_err(|(param, e)| {
        (
            format!("grid.methods (`{}`).{param}", trial.method),
            e.to_string(),
        )
    })?;
    let new_tokens = trial.spec.max_tokens as u64;
    for batch in &g.batches {
        let ask = BatchAsk {
            sequences: u64::from(batch.samples),
            // At least one prompt token precedes the new ones.
            positions: new_tokens.saturating_add(1),
            kv_tokens_per_sequence: kept_at_least(&trial.spec.policy, trial.spec.cr, new_tokens),
            shared_kv_tokens: 0,
            kv_on_host: plan.model.device == DeviceKind::Cpu,
        };
        let what = format!(
            "{} ({} sequence(s) decoded together, L = {new_tokens})",
            g.label, batch.samples
        );
        if let Err(e) = limits.check(&ask, available, &what) {
            let key = match e {
                LimitError::Memory { .. } if batch.samples > 1 => "grid.widths",
                _ => "grid.lengths",
            };
            return Err((key.into(), e.to_string()));
        }
    }
    Ok(())
}
