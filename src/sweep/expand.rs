//! From a [`Plan`] to the work of a run: model identities and task versions
//! resolved through the catalog and task source, problems selected, trials
//! built and grouped by width, in a deterministic order (by model first, so
//! a model is loaded once).

use std::collections::HashSet;

use super::deps::{ModelCatalog, TaskSource};
use super::plan::{Checkpoint, Plan};
use super::resources::check_plan;
use super::trial::{BatchPlan, SamplingSpec, Trial, TrialSpec, batch_plans};
use super::{ConfigError, SweepError};
use crate::generate::SamplingParams;
use crate::record::Identities;
use crate::task::Problem;

/// A task as run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedTask {
    pub name: String,
    pub version: String,
    /// The selected problems, in run order.
    pub problems: Vec<Problem>,
    /// Index of each selected problem in the loaded task.
    pub indices: Vec<usize>,
}

/// Trials that differ only in W, and how their samples are batched.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    /// Index into [`Expanded::tasks`].
    pub task: usize,
    /// Ascending W.
    pub trials: Vec<Trial>,
    pub batches: Vec<BatchPlan>,
    /// The trial label without W.
    pub label: String,
    /// The task's problems this group runs (ascending indices into
    /// [`ExpandedTask::problems`]) when a shard holds only some of them;
    /// `None`: all of them.
    pub problems: Option<Vec<usize>>,
}

/// The work of a run, in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct Expanded {
    pub tasks: Vec<ExpandedTask>,
    pub groups: Vec<Group>,
    /// Identities of every configured model and task (filters ignored).
    pub identities: Identities,
    pub repeats: u32,
}

/// A unit of work, the granularity of sharding: all batches of one problem
/// in one width group (so the samples nested widths share stay together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkUnit {
    pub group: usize,
    pub problem: usize,
}

impl Expanded {
    pub fn trials(&self) -> impl Iterator<Item = &Trial> {
        self.groups.iter().flat_map(|g| g.trials.iter())
    }

    /// Every work unit, in run order.
    pub fn units(&self) -> Vec<WorkUnit> {
        self.groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| {
                let all = self.tasks[group.task].problems.len();
                let problems: Vec<usize> = match &group.problems {
                    Some(p) => p.clone(),
                    None => (0..all).collect(),
                };
                problems
                    .into_iter()
                    .map(move |problem| WorkUnit { group: g, problem })
            })
            .collect()
    }

    /// Upper bound on generated tokens of a unit: every decoded sample runs to L.
    pub fn unit_tokens(&self, unit: WorkUnit) -> u64 {
        let g = &self.groups[unit.group];
        let decoded: u64 = g.batches.iter().map(|b| u64::from(b.samples)).sum();
        decoded * u64::from(self.repeats) * g.trials[0].spec.max_tokens as u64
    }
}

/// Resolve `plan` against the model catalog and the task source.
pub fn expand(
    plan: &Plan,
    file: &str,
    catalog: &dyn ModelCatalog,
    tasks: &dyn TaskSource,
) -> Result<Expanded, SweepError> {
    let err = |key: String, message: String| {
        SweepError::Config(ConfigError {
            file: file.to_string(),
            key,
            message,
        })
    };
    let mut identities = Identities::default();
    let base = catalog.inspect(&plan.model.path).map_err(|e| {
        err(
            "model.path".into(),
            format!(
                "cannot identify `{}`: {}",
                plan.model.path,
                crate::error_chain(&*e)
            ),
        )
    })?;
    identities
        .models
        .insert(plan.model.path.clone(), base.identity.clone());
    let limits = catalog.limits(&plan.model.path).map_err(|e| {
        err(
            "model.path".into(),
            format!(
                "cannot read the config of `{}`: {}",
                plan.model.path,
                crate::error_chain(&*e)
            ),
        )
    })?;
    let mut dms_ids = Vec::new();
    for (i, d) in plan.model.dms.iter().enumerate() {
        let key = format!("model.dms[{i}].path");
        let info = catalog.inspect(&d.path).map_err(|e| {
            err(
                key.clone(),
                format!("cannot identify `{}`: {}", d.path, crate::error_chain(&*e)),
            )
        })?;
        if !info.has_dms {
            return Err(err(key, format!("`{}` has no DMS parameters", d.path)));
        }
        identities
            .models
            .insert(d.path.clone(), info.identity.clone());
        dms_ids.push(info.identity);
    }

    let mut expanded_tasks = Vec::new();
    for (i, t) in plan.tasks.iter().enumerate() {
        let loaded = tasks.load(t).map_err(|e| {
            err(
                format!("tasks[{i}]"),
                format!("cannot load task `{}`: {}", t.name, crate::error_chain(&*e)),
            )
        })?;
        let mut seen = HashSet::new();
        if let Some(p) = loaded.problems.iter().find(|p| !seen.insert(p.id.as_str())) {
            return Err(err(
                format!("tasks[{i}]"),
                format!("task `{}` has two problems with id `{}`", t.name, p.id),
            ));
        }
        identities
            .tasks
            .insert(t.name.clone(), loaded.version.clone());
        let mut indices: Vec<usize> = match &t.problems {
            None => (0..loaded.problems.len()).collect(),
            Some(ids) => ids
                .iter()
                .map(|id| {
                    loaded
                        .problems
                        .iter()
                        .position(|p| &p.id == id)
                        .ok_or_else(|| {
                            err(
                                format!("tasks[{i}].problems"),
                                format!("no problem `{id}` in task `{}`", t.name),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        if let Some(limit) = t.limit {
            indices.truncate(limit);
        }
        if !t.selected {
            indices.clear();
        }
        expanded_tasks.push(ExpandedTask {
            name: t.name.clone(),
            version: loaded.version,
            problems: indices
                .iter()
                .map(|&j| loaded.problems[j].clone())
                .collect(),
            indices,
        });
    }

    // Sorted by (checkpoint, task, method, variant, L, seed): model first.
    type Order = (Checkpoint, usize, usize, usize, usize, usize);
    let mut keyed: Vec<(Order, Group)> = Vec::new();
    for (ti, task) in expanded_tasks.iter().enumerate() {
        if task.problems.is_empty() {
            continue;
        }
        for (mi, method) in plan.methods.iter().enumerate() {
            for (vi, variant) in method.variants.iter().enumerate() {
                let model = match variant.checkpoint {
                    Checkpoint::Base => base.identity.clone(),
                    Checkpoint::Dms(i) => dms_ids[i].clone(),
                };
                for (li, &max_tokens) in plan.lengths.iter().enumerate() {
                    for (si, &seed) in plan.sampling.seeds.iter().enumerate() {
                        let sampling = SamplingParams {
                            temperature: plan.sampling.temperature,
                            top_p: plan.sampling.top_p,
                            top_k: plan.sampling.top_k,
                            seed,
                        };
                        let cr = variant.cr.map_or(String::new(), |c| format!(" cr{c}"));
                        let label =
                            format!("{} {}{cr} L{max_tokens} seed{seed}", task.name, method.name);
                        let trials: Vec<Trial> = plan
                            .widths
                            .iter()
                            .map(|&width| {
                                let spec = TrialSpec {
                                    model: model.clone(),
                                    dtype: plan.model.dtype,
                                    task: task.name.clone(),
                                    task_version: task.version.clone(),
                                    policy: variant.policy.clone(),
                                    cr: variant.cr,
                                    width,
                                    max_tokens,
                                    sampling: SamplingSpec::new(&sampling),
                                };
                                Trial {
                                    id: spec.id(),
                                    group: spec.group_id(),
                                    method: method.name.clone(),
                                    checkpoint: variant.checkpoint,
                                    model_path: plan.model.path_of(variant.checkpoint).to_string(),
                                    device: plan.model.device,
                                    sampling,
                                    label: format!(
                                        "{} {}{cr} W{width} L{max_tokens} seed{seed}",
                                        task.name, method.name
                                    ),
                                    spec,
                                }
                            })
                            .collect();
                        let group = Group {
                            id: trials[0].group.clone(),
                            task: ti,
                            batches: batch_plans(&plan.widths, plan.nested_widths),
                            trials,
                            label,
                            problems: None,
                        };
                        keyed.push(((variant.checkpoint, ti, mi, vi, li, si), group));
                    }
                }
            }
        }
    }
    keyed.sort_by_key(|(k, _)| *k);
    let groups: Vec<Group> = keyed.into_iter().map(|(_, g)| g).collect();
    check_plan(
        plan,
        &groups,
        |g| expanded_tasks[g.task].problems.len(),
        limits.as_ref(),
    )
    .map_err(|(key, message)| err(key, message))?;
    Ok(Expanded {
        tasks: expanded_tasks,
        groups,
        identities,
        repeats: plan.repeats,
    })
}
