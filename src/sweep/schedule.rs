//! What a session has left to do: the batches whose records are not all in
//! the run directory yet, in run order (width group → problem → repeat →
//! batch). A batch with any missing record is decoded whole, so a resumed
//! batch measures what an uninterrupted one would; only its missing records
//! are written.

use super::deps::SampleGenerator;
use super::expand::{Expanded, WorkUnit};
use super::options::SkippedGroup;
use super::trial::BatchPlan;
use crate::record::{ResumeIndex, SampleKey};

/// One batch to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchWork {
    pub unit: WorkUnit,
    pub repeat: u32,
    /// Index into the group's batches.
    pub batch: usize,
    /// `(trial index in the group, sample)` records to write.
    pub missing: Vec<(usize, u32)>,
}

/// The remaining work of a session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    pub batches: Vec<BatchWork>,
    /// Records of the whole (filtered) plan.
    pub planned_records: u64,
    /// Of those, already recorded.
    pub skipped_records: u64,
    /// Samples to decode.
    pub samples: u64,
    /// Upper bound on tokens to generate.
    pub tokens: u64,
}

impl Schedule {
    pub fn records_to_write(&self) -> u64 {
        self.planned_records - self.skipped_records
    }
}

/// The record key of `(trial, sample)` in `unit`, `repeat`.
pub fn key(
    expanded: &Expanded,
    unit: WorkUnit,
    trial: usize,
    repeat: u32,
    sample: u32,
) -> SampleKey {
    let g = &expanded.groups[unit.group];
    SampleKey {
        trial: g.trials[trial].id.clone(),
        problem_id: expanded.tasks[g.task].problems[unit.problem].id.clone(),
        repeat,
        sample,
    }
}

/// Take out the width groups `generator` cannot run (a trial of the group
/// it does not support), in run order.
pub fn take_unsupported(
    expanded: &mut Expanded,
    generator: &dyn SampleGenerator,
) -> Vec<SkippedGroup> {
    let mut skipped = Vec::new();
    expanded.groups.retain(|g| {
        let Some(reason) = g.trials.iter().find_map(|t| generator.supports(t).err()) else {
            return true;
        };
        skipped.push(SkippedGroup {
            label: g.label.clone(),
            trials: g.trials.iter().map(|t| t.id.clone()).collect(),
            reason,
        });
        false
    });
    skipped
}

/// Compare the plan with `index`.
pub fn schedule(expanded: &Expanded, index: &ResumeIndex) -> Schedule {
    let mut s = Schedule::default();
    for unit in expanded.units() {
        let g = &expanded.groups[unit.group];
        for repeat in 0..expanded.repeats {
            for (b, batch) in g.batches.iter().enumerate() {
                let missing = missing(expanded, unit, repeat, batch, index, &mut s);
                if !missing.is_empty() {
                    s.samples += u64::from(batch.samples);
                    s.tokens +=
                        u64::from(batch.samples) * g.trials[batch.owner].spec.max_tokens as u64;
                    s.batches.push(BatchWork {
                        unit,
                        repeat,
                        batch: b,
                        missing,
                    });
                }
            }
        }
    }
    s
}

fn missing(
    expanded: &Expanded,
    unit: WorkUnit,
    repeat: u32,
    batch: &BatchPlan,
    index: &ResumeIndex,
    s: &mut Schedule,
) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    for &t in &batch.targets {
        for sample in batch.first..batch.first + batch.samples {
            s.planned_records += 1;
            if index.contains(&key(expanded, unit, t, repeat, sample)) {
                s.skipped_records += 1;
            } else {
                out.push((t, sample));
            }
        }
    }
    out
}
