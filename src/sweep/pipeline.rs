//! The asynchronous half of a sweep: generated samples are graded on a
//! bounded pool of blocking threads (graders may run sandboxed processes)
//! while generation goes on, and their records are appended as they are
//! graded, in generation order (a small reorder buffer), so the file's order
//! is deterministic and a crash loses at most the samples still in flight.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};

use super::SweepError;
use super::deps::SampleGrader;
use super::progress::ProgressState;
use super::sample::graded;
use super::session::LiveSession;
use crate::record::{ResumeIndex, SampleRecord};
use crate::task::Expected;

/// One generated sample waiting for its grade.
#[derive(Debug)]
pub struct Job {
    /// Position in generation order, from 0 without gaps.
    pub seq: u64,
    pub task: Arc<str>,
    pub expected: Arc<Expected>,
    pub text: String,
    /// The sample's records (one per trial it belongs to), not yet graded.
    pub records: Vec<SampleRecord>,
}

/// What the pipeline did.
#[derive(Debug, Default)]
pub struct PipelineOutput {
    pub written: u64,
    pub grading_seconds: f64,
    pub finished_at: Option<Instant>,
    /// The first failure (grading or writing), if any.
    pub error: Option<SweepError>,
}

type Graded = (u64, Result<Vec<SampleRecord>, SweepError>, f64);

/// Grade jobs from `jobs` on `workers` threads and append their records to
/// `session`, skipping any key already in `index` or written before. Sets
/// `abort` on the first failure. The session is left open (the caller
/// closes it).
pub async fn grade_and_record(
    mut jobs: mpsc::Receiver<Vec<Job>>,
    session: Arc<LiveSession>,
    index: Arc<ResumeIndex>,
    grader: Arc<dyn SampleGrader>,
    workers: usize,
    progress: Arc<ProgressState>,
    abort: Arc<AtomicBool>,
) -> PipelineOutput {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Graded>();
    let pool = Arc::new(Semaphore::new(workers.max(1)));
    let dispatch_abort = abort.clone();
    tokio::spawn(async move {
        while let Some(batch) = jobs.recv().await {
            for job in batch {
                if dispatch_abort.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(permit) = pool.clone().acquire_owned().await else {
                    return;
                };
                let (tx, grader) = (done_tx.clone(), grader.clone());
                tokio::task::spawn_blocking(move || {
                    let start = Instant::now();
                    let outcome = grader.grade(&job.task, &job.expected, &job.text);
                    let seconds = start.elapsed().as_secs_f64();
                    drop(permit);
                    let out = match outcome {
                        Ok(o) => Ok(job
                            .records
                            .into_iter()
                            .map(|r| graded(r, &o, seconds))
                            .collect()),
                        Err(source) => Err(SweepError::Grade {
                            sample_id: job
                                .records
                                .first()
                                .map_or_else(String::new, |r| r.sample_id.clone()),
                            source,
                        }),
                    };
                    // The receiver is gone only after a write failure.
                    let _ = tx.send((job.seq, out, seconds));
                });
            }
        }
    });

    let mut out = PipelineOutput::default();
    let mut pending: BTreeMap<u64, Result<Vec<SampleRecord>, SweepError>> = BTreeMap::new();
    let mut next = 0u64;
    let mut written: HashSet<crate::record::SampleKey> = HashSet::new();
    let mut write =
        |records: Vec<SampleRecord>, out: &mut PipelineOutput| -> Result<(), SweepError> {
            for r in records {
                let key = r.key();
                if index.contains(&key) || !written.insert(key) {
                    continue;
                }
                session.append(&r)?;
                out.written += 1;
                progress.written.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        };
    let fail = |e: SweepError, out: &mut PipelineOutput| {
        abort.store(true, Ordering::SeqCst);
        if out.error.is_none() {
            out.error = Some(e);
        }
    };
    while let Some((seq, result, seconds)) = done_rx.recv().await {
        out.grading_seconds += seconds;
        pending.insert(seq, result);
        while let Some(result) = pending.remove(&next) {
            next += 1;
            match result.and_then(|records| write(records, &mut out)) {
                Ok(()) => {}
                Err(e @ (SweepError::Record(_) | SweepError::Closed)) => {
                    fail(e, &mut out);
                    return out;
                }
                Err(e) => fail(e, &mut out),
            }
        }
    }
    // After an abort, samples graded beyond a gap are still good records.
    for (_, result) in std::mem::take(&mut pending) {
        if let Err(e) = result.and_then(|records| write(records, &mut out)) {
            fail(e, &mut out);
        }
    }
    out.finished_at = Some(Instant::now());
    out
}
