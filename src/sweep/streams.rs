//! Which requests may share a batch: the sweep's work cut into *streams*,
//! each decoded by one [`SampleGenerator::generate_stream`] call in one KV
//! store with up to `max_sequences` sequences in flight.
//!
//! Sequences can share a decode step only when they run the same weights
//! (one forward pass over the batch) and the same store (the cache policy
//! and its parameters are properties of the store). So a stream is a run of
//! consecutive batches (in run order) whose owning trials have the same
//! model path, device, weight dtype and cache policy (budget included).
//! Everything else is per request or per sample and may differ inside a
//! stream: problems, tasks, repeats, seeds, widths, temperatures and token
//! limits (sampling, stop conditions and L are per sample; a sample draws
//! from its own seeded stream over its own logits row). Run order sorts
//! groups by checkpoint, task, method, variant, L and seed, so the groups
//! of one method at one CR follow each other and form one stream per task.
//!
//! [`SampleGenerator::generate_stream`]: super::SampleGenerator::generate_stream

use std::ops::Range;

use super::expand::Expanded;
use super::schedule::BatchWork;
use super::trial::Trial;

/// The trial that decodes `item` (its batch's owner).
pub fn owner<'a>(expanded: &'a Expanded, item: &BatchWork) -> &'a Trial {
    let group = &expanded.groups[item.unit.group];
    &group.trials[group.batches[item.batch].owner]
}

/// Whether two trials' requests may share a decode step: the same model
/// (path, device, dtype) and the same cache policy with the same
/// parameters.
pub fn can_share(a: &Trial, b: &Trial) -> bool {
    a.model_path == b.model_path
        && a.device == b.device
        && a.spec.dtype == b.spec.dtype
        && a.spec.policy == b.spec.policy
}

/// `batches` cut into streams: maximal runs of consecutive batches whose
/// owners [`can_share`] a batch, as index ranges, in order.
pub fn streams(expanded: &Expanded, batches: &[BatchWork]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, item) in batches.iter().enumerate() {
        match out.last_mut() {
            Some(r) if can_share(owner(expanded, &batches[r.start]), owner(expanded, item)) => {
                r.end = i + 1;
            }
            _ => out.push(i..i + 1),
        }
    }
    out
}
