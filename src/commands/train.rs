//! `hyperscale train-dms` and `hyperscale eval-dms`: flags into a training
//! schedule and a data source; the trained checkpoints, the held-out
//! evaluation.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::{EvalDmsArgs, TrainDataArgs, TrainDmsArgs};
use crate::train::command::{self, DataSource};
use crate::train::distill::DistillPlan;
use crate::train::eval::EvalReport;
use crate::train::{DmsTrainConfig, TrainConfig};

use super::CommandError;

fn data_source(args: &TrainDataArgs, seed: u64) -> Result<DataSource, CommandError> {
    match (&args.data, &args.self_distill) {
        (Some(path), _) => Ok(DataSource::File(path.clone())),
        (None, Some(tasks)) => Ok(DataSource::SelfDistill(DistillPlan {
            tasks: tasks.clone(),
            prompts: args.distill_prompts,
            max_tokens: args.distill_max_tokens,
            temperature: args.distill_temperature,
            seed,
        })),
        (None, None) => Err(CommandError::usage(
            "give --data FILE or --self-distill TASKS",
        )),
    }
}

/// The checkpoint directories `train-dms` wrote, one a line.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct TrainedCheckpoints(pub Vec<PathBuf>);

impl fmt::Display for TrainedCheckpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for dir in &self.0 {
            writeln!(f, "{}", dir.display())?;
        }
        Ok(())
    }
}

/// Runs `train-dms`; `note` receives a line per step and the trainer's
/// notes (for stderr).
pub fn train_dms(
    args: &TrainDmsArgs,
    note: &mut dyn FnMut(&str),
) -> Result<TrainedCheckpoints, CommandError> {
    let config = TrainConfig {
        dms: DmsTrainConfig {
            variant: args.variant,
            window: args.window,
            ..DmsTrainConfig::default()
        },
        target_cr: args.target_cr,
        steps_per_cr: args.steps_per_cr,
        hold_steps: args.hold_steps,
        seq_len: args.seq_len,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        save_every: args.save_every,
        ..TrainConfig::default()
    };
    let total = config.total_steps();
    let data = data_source(&args.data, args.seed)?;
    // Both callbacks write to `note`; they run one at a time.
    let note = std::cell::RefCell::new(note);
    let saved = command::train_dms(
        &args.model.model,
        &args.out,
        config,
        &data,
        args.model.device,
        |s| {
            (note.borrow_mut())(&format!(
                "step {}/{total}  target CR {:.2}  achieved {:.2}  KL {:.4}  compression {:.4}  {:.0} tok/s",
                s.step, s.target_cr, s.achieved_cr, s.kl, s.compression_loss, s.tokens_per_second
            ))
        },
        |text| (note.borrow_mut())(&text),
    )?;
    Ok(TrainedCheckpoints(saved))
}

/// `eval-dms`'s report; its JSON is the report alone, its `Display` one
/// line naming the model.
#[derive(Debug, Clone, Serialize)]
pub struct EvalDmsOutcome {
    #[serde(skip)]
    pub model: PathBuf,
    #[serde(flatten)]
    pub report: EvalReport,
}

impl fmt::Display for EvalDmsOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.report;
        write!(
            f,
            "{}: {} sequences, {} tokens; KL to dense {:.4} nats/token; decision CR {:.2}; cache CR {:.2}",
            self.model.display(),
            r.sequences,
            r.tokens,
            r.kl,
            r.decision_cr,
            r.cache_cr
        )
    }
}

/// Runs `eval-dms`; `note` receives progress notes (for stderr).
pub fn eval_dms(
    args: &EvalDmsArgs,
    note: &mut dyn FnMut(&str),
) -> Result<EvalDmsOutcome, CommandError> {
    let data = data_source(&args.data, args.seed)?;
    let report = command::eval_dms(&args.model, &data, args.seq_len, args.limit, |text| {
        note(&text)
    })?;
    Ok(EvalDmsOutcome {
        model: args.model.clone(),
        report,
    })
}
