//! A whole retrofitting run: steps over the packed data, a JSONL log line
//! per step (flushed), checkpoints at each integer CR of the schedule,
//! every `save_every` steps and at the end.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::{BaseModel, CheckpointInfo, save_checkpoint};
use super::data::{Order, kl_mask};
use super::{StepLog, TrainError, Trainer};
use crate::model::{ModelConfig, WeightSource};

/// Runs `trainer` to its configured number of steps, writing
/// `out/train_log.jsonl` and checkpoints `out/cr{k}`, `out/step{n}`,
/// `out/final`. Returns the checkpoint directories written.
#[expect(
    clippy::too_many_arguments,
    reason = "the run's inputs, passed through once"
)]
pub fn run<B: AutodiffBackend>(
    trainer: &mut Trainer<B>,
    seqs: &[Vec<u32>],
    excluded: &[u32],
    base: &BaseModel,
    model: &ModelConfig,
    weights: &dyn WeightSource,
    out: &Path,
    mut on_step: impl FnMut(&StepLog),
) -> Result<Vec<PathBuf>, TrainError> {
    if seqs.is_empty() {
        return Err(TrainError::NoData);
    }
    std::fs::create_dir_all(out).map_err(|source| TrainError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let log_path = out.join("train_log.jsonl");
    let mut log = std::fs::File::create(&log_path).map_err(|source| TrainError::Write {
        path: log_path.clone(),
        source,
    })?;
    let mut order = Order::new(seqs.len(), trainer.config.seed);
    let total = trainer.config.total_steps();
    let mut saved = Vec::new();
    let mut save = |trainer: &Trainer<B>, name: String, cr: f64| -> Result<(), TrainError> {
        let dir = out.join(name);
        let info = CheckpointInfo {
            step: trainer.steps_done(),
            cr,
            config: &trainer.config,
        };
        save_checkpoint(&dir, base, model, weights, &trainer.params, &info)?;
        saved.push(dir);
        Ok(())
    };
    while trainer.steps_done() < total {
        let step = trainer.steps_done();
        let cr = trainer.config.cr_at(step);
        let size = trainer.config.batch;
        let masks: Vec<(&[u32], Vec<bool>)> = (0..size)
            .map(|i| {
                let tokens = seqs[order.at(step * size + i)].as_slice();
                (tokens, kl_mask(tokens, excluded))
            })
            .collect();
        let batch: Vec<(&[u32], &[bool])> = masks.iter().map(|(t, m)| (*t, m.as_slice())).collect();
        let entry = trainer.step_batch(&batch);
        let line = serde_json::to_string(&entry).unwrap_or_default();
        writeln!(log, "{line}")
            .and_then(|()| log.flush())
            .map_err(|source| TrainError::Write {
                path: log_path.clone(),
                source,
            })?;
        on_step(&entry);
        let prev = if step == 0 {
            1.0
        } else {
            trainer.config.cr_at(step - 1)
        };
        let done = trainer.steps_done();
        let every = trainer.config.save_every;
        if cr.fract() == 0.0 && cr > prev && cr >= 2.0 {
            save(trainer, format!("cr{}", cr as u64), cr)?;
        } else if every > 0 && done.is_multiple_of(every) && done < total {
            save(trainer, format!("step{done}"), cr)?;
        }
        if done == total {
            save(trainer, "final".into(), cr)?;
        }
    }
    Ok(saved)
}
