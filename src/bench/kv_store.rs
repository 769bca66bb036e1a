//! Microbenchmark of the store's decode attention at model shapes: wall time
//! per decode step (every layer: append the new entry, attend) and the KV
//! bytes the step reads, hence GB/s. `benches/kv_decode.rs` calls
//! [`run_attention_bench`]. (The whole model's decode benchmark,
//! `hyperscale bench decode`, is [`crate::bench::DecodeBenchConfig`].)

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::kv::{KvShape, KvStore, SeqId};

/// What to measure.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionBenchConfig {
    pub shape: KvShape,
    /// Query heads (a multiple of `shape.kv_heads`).
    pub n_heads: usize,
    /// Sequences decoded together.
    pub batch: usize,
    /// Entries per row before the timed steps.
    pub context: usize,
    /// The batch forks one prompt (W samples, the prefix held once) instead
    /// of holding `batch` independent contexts.
    pub shared_prefix: bool,
    /// Timed steps, after `warmup` untimed ones.
    pub steps: usize,
    pub warmup: usize,
    pub block_size: usize,
    pub seed: u64,
}

impl AttentionBenchConfig {
    /// SmolLM2-135M attention: 30 layers, 9 query / 3 KV heads, head_dim 64.
    pub fn smollm2_135m(batch: usize, context: usize, shared_prefix: bool) -> Self {
        Self {
            shape: KvShape {
                layers: 30,
                kv_heads: 3,
                head_dim: 64,
            },
            n_heads: 9,
            batch,
            context,
            shared_prefix,
            steps: 10,
            warmup: 2,
            block_size: crate::kv::DEFAULT_BLOCK_SIZE,
            seed: 0,
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionBenchReport {
    pub config: AttentionBenchConfig,
    /// Median and minimum wall time of one step over every layer, ms.
    pub step_ms_median: f64,
    pub step_ms_min: f64,
    /// K and V bytes read by attention per step (counted reads × entry
    /// bytes; a shared prefix is read once per sequence).
    pub kv_bytes_per_step: f64,
    /// `kv_bytes_per_step / step time (median)`, GB/s (10^9 bytes).
    pub gb_per_s: f64,
    /// Peak K/V bytes the store's pools held.
    pub store_peak_bytes: u64,
    pub threads: usize,
}

/// Fill a store, then time decode steps. Data are seeded random values.
pub fn run_attention_bench(cfg: &AttentionBenchConfig) -> AttentionBenchReport {
    let KvShape {
        layers,
        kv_heads,
        head_dim: d,
    } = cfg.shape;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut fill = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let mut store = KvStore::with_block_size(cfg.shape, cfg.block_size).expect("block size ≥ 1");
    let prompts = if cfg.shared_prefix { 1 } else { cfg.batch };
    let mut seqs: Vec<SeqId> = Vec::new();
    for _ in 0..prompts {
        let s = store.add_sequence();
        for layer in 0..layers {
            let k = fill(kv_heads * cfg.context * d);
            let v = fill(kv_heads * cfg.context * d);
            store.append_prefill(s, layer, &k, &v);
        }
        store.advance(s, cfg.context);
        seqs.push(s);
    }
    if cfg.shared_prefix {
        let parent = seqs[0];
        seqs = store.fork(parent, cfg.batch);
        store.release(parent);
    }
    let q = fill(cfg.batch * cfg.n_heads * d);
    let k = fill(cfg.batch * kv_heads * d);
    let v = fill(cfg.batch * kv_heads * d);
    let mut out = vec![0.0f32; q.len()];
    let scale = 1.0 / (d as f32).sqrt();
    let (times, reads) = timed_decode_steps(
        &mut store,
        &seqs,
        cfg.warmup,
        cfg.steps,
        || (),
        |store, ()| {
            for layer in 0..layers {
                store.decode_attend(layer, &seqs, &q, &k, &v, scale, &mut out);
            }
        },
    );
    let median = times[times.len() / 2];
    let kv_bytes_per_step = reads as f64 * (2 * d * 4) as f64 / cfg.steps as f64;
    AttentionBenchReport {
        config: cfg.clone(),
        step_ms_median: median * 1e3,
        step_ms_min: times[0] * 1e3,
        kv_bytes_per_step,
        gb_per_s: kv_bytes_per_step / median / 1e9,
        store_peak_bytes: store.store_stats().peak_bytes,
        threads: rayon::current_num_threads(),
    }
}

/// `warmup` then `steps` timed decode steps of `seqs`: each draws its inputs
/// with `prepare` (not timed), runs `step` over every layer (timed), then
/// advances every sequence by one position.
///
/// Returns the measured steps' times in seconds, sorted ascending, and the
/// store's decode reads during them.
pub(crate) fn timed_decode_steps<P>(
    store: &mut KvStore,
    seqs: &[SeqId],
    warmup: usize,
    steps: usize,
    mut prepare: impl FnMut() -> P,
    mut step: impl FnMut(&mut KvStore, P),
) -> (Vec<f64>, u64) {
    let mut times = Vec::with_capacity(steps);
    let mut reads = 0u64;
    for i in 0..warmup + steps {
        let inputs = prepare();
        let before = store.store_stats().decode_reads;
        let t0 = Instant::now();
        step(store, inputs);
        let dt = t0.elapsed().as_secs_f64();
        for &s in seqs {
            store.advance(s, 1);
        }
        if i >= warmup {
            times.push(dt);
            reads += store.store_stats().decode_reads - before;
        }
    }
    times.sort_by(f64::total_cmp);
    (times, reads)
}
