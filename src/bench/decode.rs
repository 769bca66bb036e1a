//! `hyperscale bench decode`: prefill and decode speed per batch × context,
//! with the bytes each step moves and the bandwidth that implies.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::launches;
use super::stats::median;
use crate::generate::{Decoder, Sampler, SamplingParams, sample_rows};
use crate::kv::{KvStore, SeqId};
use crate::profile;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeBenchConfig {
    /// Parallel sequences decoded together (they share the prompt's KV,
    /// unless `distinct_prompts`).
    pub batches: Vec<usize>,
    /// Prompt lengths (positions already in the cache when decoding starts).
    pub contexts: Vec<usize>,
    /// Untimed decode steps before measuring.
    pub warmup_steps: usize,
    /// Timed decode steps; the median step time is reported.
    pub steps: usize,
    /// Seed of the random prompt ids.
    pub seed: u64,
    /// Also break each step down by phase ([`StepProfile`]).
    #[serde(default)]
    pub profile: bool,
    /// Give every sequence of a batch its own prompt (prefilled one by one)
    /// instead of forking one prompt: W independent generations, whose KV
    /// does not sit in the CPU's last-level cache the way one shared
    /// prefix read W times per layer does.
    #[serde(default)]
    pub distinct_prompts: bool,
}

impl Default for DecodeBenchConfig {
    fn default() -> Self {
        Self {
            batches: vec![1, 8, 32],
            contexts: vec![128, 1024, 4096],
            warmup_steps: 3,
            steps: 16,
            seed: 0,
            profile: false,
            distinct_prompts: false,
        }
    }
}

/// One measured (batch, context) point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodePoint {
    pub batch: usize,
    pub context: usize,
    /// Prompt tokens per second of the prefill of this context.
    pub prefill_tokens_per_second: f64,
    /// Median wall time of one decode step of the whole batch.
    pub step_ms: f64,
    /// `batch / step time`.
    pub decode_tokens_per_second: f64,
    /// Weight bytes streamed per step (shared by the batch).
    pub weight_bytes_per_step: u64,
    /// KV bytes read per step (median step), counted by the store.
    pub kv_bytes_per_step: u64,
    /// `(weight + KV bytes per step) / batch`.
    pub bytes_per_token: u64,
    /// Bytes per step / step time, in GB/s.
    pub implied_gbs: f64,
    /// Mean milliseconds to draw one token per sequence from a step's
    /// logits (R1-style temperature 0.6, top-p 0.95, drawn by
    /// [`sample_rows`]: rows in parallel, a lone row split), which
    /// generation adds to `step_ms`; measured after each timed step.
    #[serde(default)]
    pub sampling_ms: f64,
    /// Where the step time goes (`profile` runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<StepProfile>,
}

/// Mean milliseconds per decode step by phase (see [`crate::profile`]).
///
/// `projection + attention + other` is the mean step time; `sampling` is
/// [`DecodePoint::sampling_ms`], outside it. `launches_per_step` counts the
/// kernels a step launches on a cubecl backend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepProfile {
    /// Linear layers and the lm head.
    pub projection_ms: f64,
    /// The decode-attention kernel.
    pub attention_ms: f64,
    /// Everything else in the step: norms, RoPE, residuals, embedding,
    /// logits to the host, tensor allocation and dispatch.
    pub other_ms: f64,
    /// Sampling one token per sequence.
    pub sampling_ms: f64,
    /// Mean kernel launches per step on a cubecl backend, counted by cubecl
    /// ([`super::launches`]); `None` on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launches_per_step: Option<f64>,
    /// Mean host↔device transfers per step on a device backend
    /// ([`crate::profile::Transfers`]); `None` on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers_per_step: Option<StepTransfers>,
}

/// Mean host↔device transfers of one decode step, counted where the project
/// makes them ([`crate::profile::Transfers`]); the logits' read-back is one
/// of the `reads`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepTransfers {
    pub uploads: f64,
    pub upload_bytes: f64,
    /// Read-backs to the host: each is a host synchronisation.
    pub reads: f64,
    pub read_bytes: f64,
}

/// Deterministic pseudo-random prompt ids in `1..vocab` (SplitMix64).
pub(crate) fn prompt_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            1 + (z % (vocab as u64 - 1)) as u32
        })
        .collect()
}

/// Seconds to draw one token from each `vocab`-wide row of `logits`.
fn time_sampling(logits: &[f32], vocab: usize, seed: u64) -> f64 {
    let params = SamplingParams {
        temperature: 0.6,
        top_p: 0.95,
        top_k: 0,
        seed,
    };
    let mut samplers: Vec<Sampler> = (0..logits.len() / vocab)
        .map(|i| Sampler::new(params, i as u64))
        .collect();
    let t = Instant::now();
    // As generation draws them: rows in parallel, a lone row split.
    let rows = samplers
        .iter_mut()
        .zip(logits.chunks_exact(vocab))
        .collect();
    std::hint::black_box(sample_rows(rows));
    t.elapsed().as_secs_f64()
}

/// Run the decode benchmark over every (context, batch) pair; `report` is
/// called after each point so long runs show progress.
pub fn run_decode_bench<M: Decoder>(
    model: &M,
    weight_bytes_per_step: u64,
    config: &DecodeBenchConfig,
    new_store: &dyn Fn() -> KvStore,
    mut report: impl FnMut(&DecodePoint),
) -> Vec<DecodePoint> {
    let vocab = model.vocab_size();
    let shape = model.kv_shape();
    let entry_bytes = (2 * shape.head_dim * 4) as u64;
    let mut points = Vec::new();
    for &context in &config.contexts {
        let mut store = new_store();
        let prompt = prompt_ids(context.max(1), vocab, config.seed);
        let parent = store.add_sequence();
        let start = Instant::now();
        let logits = model.prefill(&mut store, parent, &prompt);
        let prefill_s = start.elapsed().as_secs_f64();
        std::hint::black_box(&logits);
        for &batch in &config.batches {
            let seqs: Vec<SeqId> = if config.distinct_prompts {
                // The first reuses the measured prefill; the rest get their own.
                let mut seqs = store.fork(parent, 1);
                for i in 1..batch {
                    let seq = store.add_sequence();
                    let own = prompt_ids(context.max(1), vocab, config.seed.wrapping_add(i as u64));
                    std::hint::black_box(model.prefill(&mut store, seq, &own));
                    seqs.push(seq);
                }
                seqs
            } else {
                store.fork(parent, batch)
            };
            let tokens: Vec<u32> = prompt_ids(batch, vocab, config.seed ^ 0xA5A5).to_vec();
            let mut times = Vec::with_capacity(config.steps);
            let mut reads = Vec::with_capacity(config.steps);
            let mut phases = [0u64; 2];
            let mut transfers = profile::Transfers::default();
            let mut sampling_s = 0.0;
            let mut launches_before = None;
            for step in 0..config.warmup_steps + config.steps.max(1) {
                let timed = step >= config.warmup_steps;
                if config.profile && step == config.warmup_steps {
                    launches_before = launches::settled_count();
                }
                profile::set_enabled(config.profile && timed);
                let before: u64 = seqs.iter().map(|&s| store.stats(s).decode_reads).sum();
                let t = Instant::now();
                let out = model.decode(&mut store, &seqs, &tokens);
                let dt = t.elapsed().as_secs_f64();
                profile::set_enabled(false);
                std::hint::black_box(&out);
                let after: u64 = seqs.iter().map(|&s| store.stats(s).decode_reads).sum();
                let step_phases = profile::take();
                let step_transfers = profile::take_transfers();
                if timed {
                    times.push(dt);
                    reads.push((after - before) as f64);
                    phases[0] += step_phases[0];
                    phases[1] += step_phases[1];
                    transfers.uploads += step_transfers.uploads;
                    transfers.upload_bytes += step_transfers.upload_bytes;
                    transfers.reads += step_transfers.reads;
                    transfers.read_bytes += step_transfers.read_bytes;
                    sampling_s += time_sampling(&out, vocab, step as u64);
                }
            }
            let launches_after = launches_before.and(launches::settled_count());
            for s in seqs {
                store.release(s);
            }
            let step_s = median(&times);
            let kv_bytes = median(&reads) as u64 * entry_bytes;
            let per_step = weight_bytes_per_step + kv_bytes;
            let point = DecodePoint {
                batch,
                context,
                prefill_tokens_per_second: context as f64 / prefill_s,
                step_ms: step_s * 1e3,
                decode_tokens_per_second: batch as f64 / step_s,
                weight_bytes_per_step,
                kv_bytes_per_step: kv_bytes,
                bytes_per_token: per_step / batch as u64,
                implied_gbs: per_step as f64 / step_s / 1e9,
                sampling_ms: sampling_s * 1e3 / times.len() as f64,
                profile: config.profile.then(|| {
                    let n = times.len() as f64;
                    let [proj, attn] = phases.map(|ns| ns as f64 / 1e6 / n);
                    let mean_step = times.iter().sum::<f64>() * 1e3 / n;
                    StepProfile {
                        projection_ms: proj,
                        attention_ms: attn,
                        other_ms: (mean_step - proj - attn).max(0.0),
                        sampling_ms: sampling_s * 1e3 / n,
                        launches_per_step: launches_before
                            .zip(launches_after)
                            .map(|(a, b)| b.saturating_sub(a) as f64 / n),
                        // A device step reads its logits back at least.
                        transfers_per_step: (transfers.reads > 0).then(|| StepTransfers {
                            uploads: transfers.uploads as f64 / n,
                            upload_bytes: transfers.upload_bytes as f64 / n,
                            reads: transfers.reads as f64 / n,
                            read_bytes: transfers.read_bytes as f64 / n,
                        }),
                    }
                }),
            };
            report(&point);
            points.push(point);
        }
        store.release(parent);
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_ids_are_seeded_and_in_range() {
        let a = prompt_ids(100, 50, 1);
        assert_eq!(a, prompt_ids(100, 50, 1));
        assert_ne!(a, prompt_ids(100, 50, 2));
        assert!(a.iter().all(|&t| (1..50).contains(&t)));
    }
}
