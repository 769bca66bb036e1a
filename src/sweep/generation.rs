//! The generation half of a sweep: the schedule's batches, stream by
//! stream ([`super::streams`]), through
//! [`SampleGenerator::generate_stream`] with up to `max_sequences`
//! sequences in flight. Prompts are rendered as the generator pulls
//! requests; each request's samples become grading [`Job`]s as soon as it
//! finishes (in finishing order, numbered without gaps for the pipeline's
//! reorder buffer), after the generator's contract is checked.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use super::SweepError;
use super::deps::{
    Generated, PromptContext, PromptRenderer, RenderedPrompt, SampleGenerator, SweepDeps,
};
use super::expand::Expanded;
use super::options::{PipelineTiming, RunSummary};
use super::pipeline::Job;
use super::plan::Plan;
use super::progress::ProgressState;
use super::sample::{SampleContext, ungraded_record};
use super::schedule::{BatchWork, Schedule};
use super::streams::{owner, streams};
use super::trial::{split_stream, stream};
use crate::generate::{Request, SchedulerOptions};
use crate::record::BudgetSource;
use crate::task::Expected;

/// The generation loop's state.
pub(super) struct Generation<'a> {
    pub(super) plan: &'a Plan,
    pub(super) expanded: &'a Expanded,
    pub(super) device: &'a str,
    pub(super) budget_source: BudgetSource,
    pub(super) progress: &'a Arc<ProgressState>,
    pub(super) abort: &'a AtomicBool,
    pub(super) tx: mpsc::Sender<Vec<Job>>,
    pub(super) seq: u64,
    /// Sequences decoded together at most, and their KV memory.
    pub(super) engine: SchedulerOptions,
    pub(super) timing: PipelineTiming,
    pub(super) summary: &'a mut RunSummary,
}

/// A request pulled into a stream: the batch it decodes and what its
/// samples are graded against.
struct Admitted<'w> {
    item: &'w BatchWork,
    expected: Arc<Expected>,
}

impl Generation<'_> {
    pub(super) fn run(&mut self, work: &Schedule, deps: SweepDeps<'_>) -> Result<(), SweepError> {
        let SweepDeps {
            renderer,
            generator,
            ..
        } = deps;
        for range in streams(self.expanded, &work.batches) {
            if self.abort.load(Ordering::SeqCst) || self.tx.is_closed() {
                return Ok(()); // the pipeline holds the reason
            }
            self.run_stream(&work.batches[range], renderer, generator)?;
        }
        Ok(())
    }

    /// Decode `items` (batches whose owners may share a batch) as one
    /// stream: prompts are rendered as the generator pulls requests, and
    /// each request's samples go to grading as soon as it finishes.
    fn run_stream(
        &mut self,
        items: &[BatchWork],
        renderer: &mut dyn PromptRenderer,
        generator: &mut dyn SampleGenerator,
    ) -> Result<(), SweepError> {
        let expanded: &Expanded = self.expanded;
        let progress: &Arc<ProgressState> = self.progress;
        let abort: &AtomicBool = self.abort;
        let engine = self.engine;
        let trial = owner(expanded, &items[0]);
        let admitted: RefCell<Vec<Admitted<'_>>> = RefCell::new(Vec::new());
        let failure: RefCell<Option<SweepError>> = RefCell::new(None);
        let mut prompt: Option<((usize, usize, u32), RenderedPrompt)> = None;
        let mut requests = items.iter().map_while(|item| {
            if abort.load(Ordering::SeqCst) || failure.borrow().is_some() {
                return None;
            }
            match request_of(expanded, item, renderer, &mut prompt, progress) {
                Ok((request, expected)) => {
                    admitted.borrow_mut().push(Admitted { item, expected });
                    Some(request)
                }
                Err(e) => {
                    *failure.borrow_mut() = Some(e);
                    None
                }
            }
        });
        let started = Instant::now();
        let mut blocked = 0.0;
        let mut on_done = |r: usize, generated: Generated| {
            if self.tx.is_closed() {
                return; // the pipeline stopped and holds the reason
            }
            let admitted = admitted.borrow();
            let Some(a) = admitted.get(r) else {
                failure
                    .borrow_mut()
                    .get_or_insert(SweepError::GeneratorContract {
                        trial: trial.id.clone(),
                        problem: String::new(),
                        message: format!("finished request {r}, which was never pulled"),
                    });
                return;
            };
            match self.jobs_of(a.item, &a.expected, generated) {
                Ok(jobs) => {
                    let waited = Instant::now();
                    // An error: the pipeline stopped and holds the reason.
                    let _ = self.tx.blocking_send(jobs);
                    blocked += waited.elapsed().as_secs_f64();
                }
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                }
            }
        };
        let result =
            generator.generate_stream(trial, &mut requests, engine, &progress.tokens, &mut on_done);
        drop(requests);
        self.timing.generating += started.elapsed().as_secs_f64() - blocked;
        self.timing.blocked_on_grading += blocked;
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        result.map_err(|source| {
            let admitted = admitted.borrow();
            let item = admitted.last().map_or(&items[0], |a| a.item);
            let group = &expanded.groups[item.unit.group];
            SweepError::Generate {
                trial: trial.id.clone(),
                label: trial.label.clone(),
                problem: expanded.tasks[group.task].problems[item.unit.problem]
                    .id
                    .clone(),
                source,
            }
        })
    }

    /// The grading jobs of `item`'s generated samples (those with a record
    /// still missing), after checking the generator's contract.
    fn jobs_of(
        &mut self,
        item: &BatchWork,
        expected: &Arc<Expected>,
        generated: Generated,
    ) -> Result<Vec<Job>, SweepError> {
        let expanded = self.expanded;
        let group = &expanded.groups[item.unit.group];
        let task = &expanded.tasks[group.task];
        let problem = &task.problems[item.unit.problem];
        let batch = &group.batches[item.batch];
        let owner = &group.trials[batch.owner];
        let mut completions = generated.completions;
        completions.sort_by_key(|c| c.sample);
        let expected_streams: Vec<u64> = (0..batch.samples)
            .map(|i| stream(item.repeat, batch.first + i))
            .collect();
        let got: Vec<u64> = completions.iter().map(|c| c.sample).collect();
        if got != expected_streams {
            return Err(SweepError::GeneratorContract {
                trial: owner.id.clone(),
                problem: problem.id.clone(),
                message: format!("asked for samples {expected_streams:?}, got {got:?}"),
            });
        }
        self.summary.batches_generated += 1;
        self.summary.samples_generated += completions.len() as u64;
        self.summary.tokens_generated += completions
            .iter()
            .map(|c| c.generated_tokens as u64)
            .sum::<u64>();

        let task_name: Arc<str> = Arc::from(task.name.as_str());
        let mut jobs = Vec::new();
        for c in completions {
            let (_, sample) = split_stream(c.sample);
            let ctx = SampleContext {
                run: &self.plan.run_name,
                task_version: &task.version,
                problem_id: &problem.id,
                repeat: item.repeat,
                sample,
                batch,
                kv_rows: generated.kv_rows,
                device: self.device,
                save_text: self.plan.save_text,
                budget_source: self.budget_source,
                kv_dtype: generated.kv_dtype,
            };
            let records: Vec<_> = item
                .missing
                .iter()
                .filter(|(_, s)| *s == sample)
                .map(|&(t, _)| ungraded_record(&group.trials[t], &c, &ctx))
                .collect();
            if records.is_empty() {
                continue; // recorded in every trial already
            }
            jobs.push(Job {
                seq: self.seq,
                task: task_name.clone(),
                expected: expected.clone(),
                text: c.text,
                records,
            });
            self.seq += 1;
        }
        Ok(jobs)
    }
}

/// The request of `item`, rendering its prompt unless `prompt` holds it
/// already (the batches of one problem and repeat share it), and what its
/// samples are graded against.
fn request_of(
    expanded: &Expanded,
    item: &BatchWork,
    renderer: &mut dyn PromptRenderer,
    prompt: &mut Option<((usize, usize, u32), RenderedPrompt)>,
    progress: &ProgressState,
) -> Result<(Request, Arc<Expected>), SweepError> {
    let group = &expanded.groups[item.unit.group];
    let task = &expanded.tasks[group.task];
    let problem = &task.problems[item.unit.problem];
    let batch = &group.batches[item.batch];
    let owner = &group.trials[batch.owner];
    progress.enter(
        item.unit.group,
        &group.label,
        item.unit.problem,
        task.problems.len(),
    );
    let prompt_key = (item.unit.group, item.unit.problem, item.repeat);
    if prompt.as_ref().is_none_or(|(k, _)| *k != prompt_key) {
        let ctx = PromptContext {
            task: &task.name,
            problem_index: task.indices[item.unit.problem],
            repeat: item.repeat,
        };
        let rendered =
            renderer
                .render(owner, problem, &ctx)
                .map_err(|source| SweepError::Render {
                    task: task.name.clone(),
                    problem: problem.id.clone(),
                    source,
                })?;
        *prompt = Some((prompt_key, rendered));
    }
    let rendered = &prompt.as_ref().expect("rendered above").1;
    let request = Request {
        prompt: rendered.tokens.clone(),
        samples: batch.samples as usize,
        first_sample: stream(item.repeat, batch.first),
        max_tokens: owner.spec.max_tokens,
        sampling: owner.sampling,
        stop: rendered.stop.clone(),
    };
    Ok((request, Arc::new(rendered.expected.clone())))
}
