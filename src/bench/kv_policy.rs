//! Decode time per step under a cache policy at model shapes: the attention
//! part of a step (every layer: place/write the new entries, attend, evict)
//! for W samples forked from one prompt, against the entries each policy
//! keeps. `benches/kv_policy.rs` prints the table; `hyperscale bench` can
//! call [`run_policy_bench`].
//!
//! Data are seeded random values. DMS decisions are random too, each token
//! asking for eviction with probability `p = (1 − 1/CR) · T / (T − w)`, so
//! that about `T / CR` entries are live after `T` positions with window
//! `w` (what a trained checkpoint reaches at that CR).

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::kv_store::timed_decode_steps;
use crate::kv::{CachePolicy, DecodeStep, DmsParams, KvShape, KvStore, PrefillStep, SeqId};

/// What to measure.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyBenchConfig {
    pub shape: KvShape,
    /// Query heads (a multiple of `shape.kv_heads`).
    pub n_heads: usize,
    pub policy: CachePolicy,
    /// The DMS window and convention, and the CR its decisions target.
    pub dms: DmsParams,
    pub dms_cr: f64,
    /// W: samples forked from the prompt and decoded together.
    pub batch: usize,
    /// Prompt positions before the timed steps.
    pub context: usize,
    pub steps: usize,
    pub warmup: usize,
    pub seed: u64,
}

impl PolicyBenchConfig {
    /// SmolLM2-135M attention (30 layers, 9 query / 3 KV heads, head_dim
    /// 64), DMS window 256.
    pub fn smollm2_135m(policy: CachePolicy, cr: f64, batch: usize, context: usize) -> Self {
        Self {
            shape: KvShape {
                layers: 30,
                kv_heads: 3,
                head_dim: 64,
            },
            n_heads: 9,
            policy,
            dms: DmsParams {
                window: 256,
                shifted: true,
            },
            dms_cr: cr,
            batch,
            context,
            steps: 8,
            warmup: 2,
            seed: 0,
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyBenchReport {
    pub method: &'static str,
    /// Median and minimum wall time of the attention part of one step (all
    /// layers, the whole batch), ms.
    pub step_ms_median: f64,
    pub step_ms_min: f64,
    /// Prompt prefill (policy attention and writes), s.
    pub prefill_seconds: f64,
    /// Entries per (sample, layer, KV head) row after the timed steps.
    pub resident_per_row: f64,
    /// Entries read per step (all layers and samples), counted by the store.
    pub reads_per_step: f64,
    /// Peak entries the store held (the shared prompt once; a sample that
    /// evicts from a shared block copies it first).
    pub peak_resident: u64,
    /// Σ over samples of each sample's own peak (its prompt counted in
    /// full): the store peak of W private contexts of this length.
    pub sample_peak_sum: u64,
    pub threads: usize,
}

/// Prefill one prompt under the policy, fork `batch` samples, time decode
/// steps.
///
/// # Panics
/// On an invalid policy (see [`CachePolicy::resolve`]).
pub fn run_policy_bench(cfg: &PolicyBenchConfig) -> PolicyBenchReport {
    let KvShape {
        layers,
        kv_heads,
        head_dim: d,
    } = cfg.shape;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut fill = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let mut store = KvStore::with_policy(cfg.shape, &cfg.policy, Some(cfg.dms))
        .unwrap_or_else(|e| panic!("{e}"));
    let w = cfg.dms.window as f64;
    let t = cfg.context as f64;
    let p_evict = ((1.0 - 1.0 / cfg.dms_cr) * t / (t - w).max(1.0)).clamp(0.0, 1.0);
    let mut dec_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xD15);
    let mut decisions = |n: usize| -> Vec<bool> {
        if store_needs_decisions(&cfg.policy) {
            (0..n).map(|_| dec_rng.random_bool(p_evict)).collect()
        } else {
            Vec::new()
        }
    };
    let scale = 1.0 / (d as f32).sqrt();
    let parent = store.add_sequence();
    let start = Instant::now();
    for layer in 0..layers {
        let k = fill(kv_heads * cfg.context * d);
        let v = fill(kv_heads * cfg.context * d);
        if store.policy().is_dense() {
            store.append_prefill(parent, layer, &k, &v);
            continue;
        }
        let q = fill(cfg.context * cfg.n_heads * d);
        let dec = decisions(kv_heads * cfg.context);
        let mut out = vec![0.0f32; q.len()];
        let step = PrefillStep {
            layer,
            seq: parent,
            q: &q,
            k: &k,
            v: &v,
            scale,
            decisions: &dec,
        };
        store
            .policy_prefill(step, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    store.advance(parent, cfg.context);
    let prefill_seconds = start.elapsed().as_secs_f64();
    let seqs: Vec<SeqId> = store.fork(parent, cfg.batch);
    store.release(parent);
    let q = fill(cfg.batch * cfg.n_heads * d);
    let k = fill(cfg.batch * kv_heads * d);
    let v = fill(cfg.batch * kv_heads * d);
    let mut out = vec![0.0f32; q.len()];
    let (times, reads) = timed_decode_steps(
        &mut store,
        &seqs,
        cfg.warmup,
        cfg.steps,
        || -> Vec<Vec<bool>> {
            (0..layers)
                .map(|_| decisions(cfg.batch * kv_heads))
                .collect()
        },
        |store, dec| {
            for (layer, dec) in dec.iter().enumerate() {
                let s = DecodeStep::appending(layer, &seqs, [&q, &k, &v], scale);
                store
                    .policy_decode(s, dec, &mut out)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        },
    );
    let rows = (cfg.batch * layers * kv_heads) as f64;
    let resident: u64 = seqs.iter().map(|&s| store.stats(s).resident).sum();
    PolicyBenchReport {
        method: cfg.policy.method(),
        step_ms_median: times[times.len() / 2] * 1e3,
        step_ms_min: times[0] * 1e3,
        prefill_seconds,
        resident_per_row: resident as f64 / rows,
        reads_per_step: reads as f64 / cfg.steps as f64,
        peak_resident: store.peak_resident(),
        sample_peak_sum: seqs.iter().map(|&s| store.stats(s).peak_resident).sum(),
        threads: rayon::current_num_threads(),
    }
}

fn store_needs_decisions(policy: &CachePolicy) -> bool {
    matches!(policy, CachePolicy::Dms { .. })
}
