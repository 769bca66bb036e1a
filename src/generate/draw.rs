//! Drawing tokens from logits rows: bit for bit the token a walk over
//! [`filtered_distribution`] gives for the same uniform, in fewer passes,
//! the rows of a step in parallel and a lone row split across threads.
//!
//! What a draw computes is fixed by [`filtered_distribution`]: every
//! logit's `exp((logit − max) / T)` in f64, their total summed one after
//! another in ranking order, each probability divided by it, the nucleus
//! cut where the running sum first reaches top-p, the nucleus renormalised
//! by its own sequential sum, and the first token whose running sum passes
//! the uniform. [`draw`] performs exactly these operations on exactly
//! these values, in the same order wherever an order matters, and skips
//! only what cannot reach the token:
//!
//! - the `(id, probability)` list of the whole vocabulary is never built:
//!   the ranked keys carry ids and logits (`ranking`), the exps are summed
//!   as they are taken, and the probabilities are divided out only for the
//!   tokens the nucleus walk and the draw visit (the same divisions, so the
//!   same values);
//! - without top-k, the draw is first tried on the head of the ranking
//!   alone ([`super::head`]): every weight taken eight at a time in id
//!   order, only the tokens whose logits reach a bound ranked, the rest
//!   added to the total in units of its last place, which is exactly the
//!   sequential sum when the total stays in the head's binade and no
//!   weight is a tie (checked; otherwise, or where the nucleus or the
//!   draw reaches past the head, the whole row is ranked as below);
//! - every `exp` is the sampler's own ([`super::exp`], glibc's bits on
//!   any machine), eight at a time with AVX-512;
//! - buffers are kept per thread from one draw to the next;
//! - split in chunks ([`split_for`]: at least [`MIN_SPLIT_THREADS`]
//!   threads, fewer rows than threads and a large vocabulary), the keys
//!   are built, radix-sorted (`ranking::rank_into`) and exp'd chunk by
//!   chunk on rayon's pool, each element by the same
//!   code whichever thread takes it; only the total stays one sequential
//!   sum in ranking order, on the row's thread.
//!
//! Tested against the reference walk over many rows, vocabularies,
//! parameters and uniforms on the distribution's own boundaries, on 1, 2
//! and 4 threads (`tests`).
//!
//! [`filtered_distribution`]: super::sampling::filtered_distribution

use std::cell::Cell;

use rayon::prelude::*;

use super::sampling::{Sampler, SamplingParams};
use super::{exp, head, ranking};
use crate::model::kernels::step_pool::on_pool;

/// The fewest logits per chunk a row is split into: below it the forks
/// cost more than the chunk.
pub const MIN_SPLIT_CHUNK: usize = 65_536;

/// The fewest threads on which a row is split. On the 2-core VM under
/// load a 151 936-logit row split in two took longer than on one thread
/// (2026-12-07, `benches/sampling.rs`, docs/batching.md), so two threads
/// keep a row whole; not measured on an idle or larger machine.
pub const MIN_SPLIT_THREADS: usize = 4;

/// How many chunks to split each of `rows` rows of `vocab` logits into on
/// `threads` threads: 1 (a row per thread) when there are at least as many
/// rows as threads or fewer than [`MIN_SPLIT_THREADS`] threads, else
/// enough to give every thread a share, but no chunk under
/// [`MIN_SPLIT_CHUNK`]. Any split draws the same token
/// ([`Sampler::sample_split`]); this only decides the speed.
pub fn split_for(rows: usize, vocab: usize, threads: usize) -> usize {
    if rows >= threads || threads < MIN_SPLIT_THREADS {
        return 1;
    }
    threads
        .div_ceil(rows.max(1))
        .min(vocab / MIN_SPLIT_CHUNK)
        .max(1)
}

/// Draws the next token of every row: `rows[i].0` samples from `rows[i].1`
/// (`[vocab]`), rows in parallel and each split by [`split_for`], on
/// rayon's pool (entered once, so the splits fork from a pool thread).
/// Every sampler has its own random stream, so the tokens are those of
/// calling [`Sampler::sample`] on each row in turn, in row order.
///
/// A CPU decode step's spinning workers ([`crate::model::kernels::step_pool`])
/// have left their loops when the step returns, so the draw has the pool's
/// threads to itself.
pub fn sample_rows(rows: Vec<(&mut Sampler, &[f32])>) -> Vec<u32> {
    if rows.is_empty() {
        return Vec::new();
    }
    on_pool(move || {
        let n = rows.len();
        let threads = rayon::current_num_threads();
        rows.into_par_iter()
            .map(|(sampler, row)| sampler.sample_split(row, split_for(n, row.len(), threads)))
            .collect()
    })
}

/// A thread's buffers, kept from one draw to the next.
struct Scratch {
    keys: Vec<u64>,
    spare: Vec<u64>,
    /// `exp((logit − max) / T)` in ranking order.
    weights: Vec<f64>,
    /// The nucleus' probabilities before renormalising.
    nucleus: Vec<f64>,
}

impl Scratch {
    const fn new() -> Self {
        Self {
            keys: Vec::new(),
            spare: Vec::new(),
            weights: Vec::new(),
            nucleus: Vec::new(),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

thread_local! {
    /// Taken for a draw and put back after, so a draw that this thread
    /// runs while it waits inside another (rayon's work stealing) finds it
    /// empty and uses fresh buffers instead of sharing them.
    static SCRATCH: Cell<Scratch> = const { Cell::new(Scratch::new()) };
}

/// The token that walking [`super::sampling::filtered_distribution`]`(logits, params)`
/// with uniform `u` picks: the first whose running probability exceeds
/// `u`, else the last kept. `split` chunks as in [`split_for`] (1: this
/// thread alone). `logits` is not empty.
pub(super) fn draw(logits: &[f32], params: &SamplingParams, u: f64, split: usize) -> u32 {
    draw_as(logits, params, u, split, true)
}

/// [`draw`], trying the head of the ranking first ([`super::head`]) where
/// `try_head` is set; the whole ranking otherwise (tests take both).
fn draw_as(logits: &[f32], params: &SamplingParams, u: f64, split: usize, try_head: bool) -> u32 {
    let mut scratch = SCRATCH.with(Cell::take);
    let token = draw_with(&mut scratch, logits, params, u, split, try_head);
    SCRATCH.with(|s| s.set(scratch));
    token
}

fn draw_with(
    scratch: &mut Scratch,
    logits: &[f32],
    params: &SamplingParams,
    u: f64,
    split: usize,
    try_head: bool,
) -> u32 {
    let t = f64::from(params.temperature.max(f32::MIN_POSITIVE));
    let Scratch {
        keys,
        spare,
        weights,
        nucleus,
    } = scratch;
    if try_head && let Some(token) = head::draw(weights, keys, nucleus, logits, params, t, u) {
        return token;
    }
    ranking::rank_into(logits, params.top_k, split, keys, spare);
    let n = keys.len();
    let max = f64::from(ranking::logit(keys[0]));
    // Every weight `exp((logit − max) / T)` in ranking order, eight at a
    // time where the CPU allows (`exp::exp_weights`: the same bits as
    // `exp::exp`, which the reference walk takes one by one).
    weights.resize(n, 0.0);
    if split > 1 && n >= 2 {
        let chunk = n.div_ceil(split);
        weights
            .par_chunks_mut(chunk)
            .zip(keys.par_chunks(chunk))
            .for_each(|(w, k)| exp::exp_weights(k, max, t, w));
    } else {
        exp::exp_weights(keys, max, t, weights);
    }
    let total: f64 = weights.iter().sum();
    if params.top_p < 1.0 {
        let top_p = f64::from(params.top_p);
        nucleus.clear();
        let mut cumulative = 0.0;
        for &w in weights.iter() {
            let p = w / total;
            nucleus.push(p);
            cumulative += p;
            if cumulative >= top_p {
                break;
            }
        }
        let kept: f64 = nucleus.iter().sum();
        let mut cumulative = 0.0;
        for (i, &p) in nucleus.iter().enumerate() {
            cumulative += p / kept;
            if u < cumulative {
                return ranking::id(keys[i]);
            }
        }
        ranking::id(keys[nucleus.len() - 1])
    } else {
        let mut cumulative = 0.0;
        for (&w, &k) in weights.iter().zip(keys.iter()) {
            cumulative += w / total;
            if u < cumulative {
                return ranking::id(k);
            }
        }
        ranking::id(keys[n - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::ranking::tests::awkward_logits;
    use crate::generate::sampling::{
        argmax, filtered_distribution, walk_filtered_distribution as reference,
    };
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::{Rng, SeedableRng};

    /// The uniforms that decide a draw: 0, just under 1, and each of the
    /// first running sums of the filtered distribution with its two
    /// neighbours (a total or probability off by one bit moves a token).
    fn boundary_uniforms(logits: &[f32], params: &SamplingParams) -> Vec<f64> {
        let mut us = vec![0.0, 0.5, 1.0 - f64::EPSILON / 2.0];
        let mut cumulative = 0.0;
        for &(_, p) in filtered_distribution(logits, params).iter().take(12) {
            cumulative += p;
            us.extend([cumulative.next_down(), cumulative, cumulative.next_up()]);
        }
        us.retain(|u| (0.0..1.0).contains(u));
        us
    }

    fn params(temperature: f32, top_p: f32, top_k: usize) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            top_k,
            seed: 11,
        }
    }

    /// Rows like a model's: a few strong tokens over a spread, with ties
    /// (coarse values) and masked tokens (`-inf`).
    fn model_like(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x: Vec<f32> = (0..len)
            .map(|_| {
                let a = (rng.next_u64() % 10_000) as f32 / 10_000.0;
                let b = (rng.next_u64() % 10_000) as f32 / 10_000.0;
                (a + b - 1.0) * 9.0
            })
            .collect();
        for _ in 0..len.min(5) {
            let i = (rng.next_u64() % len as u64) as usize;
            x[i] = 12.0 + (rng.next_u64() % 8) as f32;
        }
        x.iter_mut().step_by(7).for_each(|v| *v = v.round());
        x.iter_mut()
            .skip(3)
            .step_by(97)
            .for_each(|v| *v = f32::NEG_INFINITY);
        x
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool")
    }

    fn rows() -> Vec<Vec<f32>> {
        let mut rows = vec![
            vec![3.0],
            vec![1.0, 1.0],
            vec![0.0, 2.0f32.ln(), 5.0f32.ln()],
            vec![f32::INFINITY, 1.0, f32::INFINITY],
        ];
        for len in [7, 500, 4_099, 49_152] {
            rows.push(model_like(len, len as u64));
            rows.push(awkward_logits(len, len as u64 + 1));
            // Coarse values only: long runs of ties.
            let mut rng = ChaCha8Rng::seed_from_u64(len as u64 + 2);
            rows.push(
                (0..len)
                    .map(|_| (rng.next_u64() % 41) as f32 / 4.0 - 5.0)
                    .collect(),
            );
        }
        rows
    }

    fn settings() -> [SamplingParams; 9] {
        [
            params(0.6, 0.95, 0),
            params(0.6, 1.0, 0),
            params(1.0, 0.5, 0),
            params(1.7, 0.999, 0),
            params(0.05, 0.95, 0),
            params(1e-30, 1.0, 0),
            params(0.6, 0.95, 40),
            params(1.0, 1.0, 3),
            params(0.6, 1e-9, 0),
        ]
    }

    /// Every row, parameter set, deciding uniform and split on 1, 2 and 4
    /// threads draws the reference walk's token, with and without the
    /// head (`super::head`) tried first.
    #[test]
    fn draw_equals_the_reference_walk() {
        let settings = settings();
        let pools = [pool(1), pool(2), pool(4)];
        let mut checked = 0;
        for logits in rows() {
            for p in &settings {
                let us = boundary_uniforms(&logits, p);
                let want: Vec<u32> = us.iter().map(|&u| reference(&logits, p, u)).collect();
                for pool in &pools {
                    for split in [1, 2, 3, 5] {
                        for head in [false, true] {
                            let got: Vec<u32> = pool.install(|| {
                                us.iter()
                                    .map(|&u| draw_as(&logits, p, u, split, head))
                                    .collect()
                            });
                            assert!(
                                got == want,
                                "{} logits, {p:?}, {} threads, split {split}, head {head}: \
                                 {got:?} vs {want:?}",
                                logits.len(),
                                pool.current_num_threads()
                            );
                            checked += got.len();
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    /// On the rows above the head decides most draws (1 109 of 1 692 when
    /// written) and leaves the others to the whole ranking (NaN and
    /// infinite rows, top-k, uniforms near 1, flat rows), so
    /// `draw_equals_the_reference_walk` tests both.
    #[test]
    fn the_head_decides_most_draws_and_leaves_some() {
        let (mut decided, mut left) = (0, 0);
        let (mut w, mut k, mut n) = (Vec::new(), Vec::new(), Vec::new());
        for logits in rows() {
            for p in &settings() {
                let t = f64::from(p.temperature.max(f32::MIN_POSITIVE));
                for u in boundary_uniforms(&logits, p) {
                    match head::draw(&mut w, &mut k, &mut n, &logits, p, t, u) {
                        Some(_) => decided += 1,
                        None => left += 1,
                    }
                }
            }
        }
        assert!(
            decided > left && left > 50,
            "{decided} decided, {left} left"
        );
    }

    /// The sampler as it was, stream and all.
    struct ReferenceSampler {
        params: SamplingParams,
        rng: ChaCha8Rng,
    }

    impl ReferenceSampler {
        fn new(params: SamplingParams, sample: u64) -> Self {
            let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
            rng.set_stream(sample);
            Self { params, rng }
        }

        fn sample(&mut self, logits: &[f32]) -> u32 {
            if self.params.is_greedy() {
                return argmax(logits);
            }
            let u = (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            reference(logits, &self.params, u)
        }
    }

    /// `sample_rows` over 1, 2, 3 and 16 rows for eight steps, on 1, 2 and
    /// 4 threads, draws the tokens of the old sampler on each row in turn,
    /// greedy, top-k and top-p rows mixed.
    #[test]
    fn sample_rows_equals_the_reference_sampler_row_by_row() {
        let settings = [
            params(0.6, 0.95, 0),
            params(1.0, 1.0, 0),
            params(0.0, 1.0, 0),
            params(0.8, 0.9, 20),
        ];
        for threads in [1, 2, 4] {
            for (rows, vocab) in [(1, 151_936), (2, 40_000), (3, 5_000), (16, 2_000)] {
                let mut ours: Vec<Sampler> = (0..rows)
                    .map(|r| Sampler::new(settings[r % settings.len()], r as u64))
                    .collect();
                let mut theirs: Vec<ReferenceSampler> = (0..rows)
                    .map(|r| ReferenceSampler::new(settings[r % settings.len()], r as u64))
                    .collect();
                for step in 0..8u64 {
                    let logits: Vec<f32> = (0..rows)
                        .flat_map(|r| model_like(vocab, step * 100 + r as u64))
                        .collect();
                    let got = pool(threads).install(|| {
                        sample_rows(ours.iter_mut().zip(logits.chunks_exact(vocab)).collect())
                    });
                    let want: Vec<u32> = theirs
                        .iter_mut()
                        .zip(logits.chunks_exact(vocab))
                        .map(|(s, row)| s.sample(row))
                        .collect();
                    assert_eq!(got, want, "{threads} threads, {rows} rows, step {step}");
                }
            }
        }
    }

    #[test]
    fn a_row_splits_only_when_spare_threads_outnumber_rows_and_chunks_are_large() {
        assert_eq!(split_for(16, 151_936, 2), 1);
        assert_eq!(split_for(2, 151_936, 2), 1);
        assert_eq!(split_for(1, 151_936, 2), 1);
        assert_eq!(split_for(1, 151_936, 4), 2);
        assert_eq!(split_for(1, 151_936, 16), 151_936 / MIN_SPLIT_CHUNK);
        assert_eq!(split_for(3, 4 * MIN_SPLIT_CHUNK, 8), 3);
        assert_eq!(split_for(1, MIN_SPLIT_CHUNK - 1, 4), 1);
    }
}
