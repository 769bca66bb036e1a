//! Milliseconds to draw one token per row from a step's logits, the way
//! generation samples (temperature 0.6, top-p 0.95), per vocabulary and
//! rows per step: the sampler before (`filtered_distribution`'s whole
//! `(id, probability)` list walked, rows in parallel), the sampler now on
//! one thread per row (`Sampler::sample`, rows in parallel), a lone row
//! split in as many chunks as threads (`Sampler::sample_split`), and
//! `sample_rows` (rows in parallel; a lone row split only on
//! `MIN_SPLIT_THREADS` threads or more).
//! All three draw the same tokens (`generate::draw` tests).
//!
//! `RAYON_NUM_THREADS=2 cargo bench --bench sampling [-- REPEATS]`
//! (default 15). The logits are synthetic, shaped like a model's: a few
//! strong tokens over a spread of ±9. Variants alternate within each
//! repeat, so the machine's drift hits them alike; medians.

use std::time::Instant;

use hyperscale::bench::stats::median;
use hyperscale::generate::sampling::walk_filtered_distribution as before;
use hyperscale::generate::{Sampler, SamplingParams, sample_rows};
use hyperscale::model::kernels::step_pool::on_pool;
use rayon::prelude::*;

fn logits(rows: usize, vocab: usize) -> Vec<f32> {
    // SplitMix64: deterministic, no dependency.
    let mut x = 0x5EED_u64;
    let mut next = move || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(rows * vocab);
    for _ in 0..rows {
        let start = out.len();
        out.extend((0..vocab).map(|_| {
            let a = (next() % 10_000) as f32 / 10_000.0;
            let b = (next() % 10_000) as f32 / 10_000.0;
            (a + b - 1.0) * 9.0
        }));
        for _ in 0..5 {
            let i = (next() % vocab as u64) as usize;
            out[start + i] = 12.0 + (next() % 8) as f32;
        }
    }
    out
}

fn main() {
    let repeats: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let params = SamplingParams {
        temperature: 0.6,
        top_p: 0.95,
        top_k: 0,
        seed: 0,
    };
    println!(
        "threads {}; ms per step (all rows), median of {repeats}",
        rayon::current_num_threads()
    );
    println!(
        "| vocab | rows | before | now, a row per thread | a lone row split | sample_rows | before ÷ sample_rows |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for vocab in [49_152, 151_936] {
        for rows in [1, 2, 16] {
            let x = logits(rows, vocab);
            let mut samplers: Vec<Sampler> =
                (0..rows).map(|r| Sampler::new(params, r as u64)).collect();
            let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
            let threads = rayon::current_num_threads();
            for _ in 0..repeats {
                let t = Instant::now();
                let a: Vec<u32> = x
                    .par_chunks(vocab)
                    .map(|row| before(row, &params, 0.3))
                    .collect();
                times[0].push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let b: Vec<u32> = samplers
                    .par_iter_mut()
                    .zip(x.par_chunks(vocab))
                    .map(|(s, row)| s.sample(row))
                    .collect();
                times[1].push(t.elapsed().as_secs_f64() * 1e3);
                if rows == 1 {
                    let t = Instant::now();
                    let s = &mut samplers[0];
                    let d = on_pool(|| s.sample_split(&x, threads));
                    times[3].push(t.elapsed().as_secs_f64() * 1e3);
                    std::hint::black_box(d);
                }
                let t = Instant::now();
                let c = sample_rows(samplers.iter_mut().zip(x.chunks_exact(vocab)).collect());
                times[2].push(t.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box((a, b, c));
            }
            let m = times.map(|t| if t.is_empty() { f64::NAN } else { median(&t) });
            let split = if rows == 1 {
                format!("{:.2}", m[3])
            } else {
                "–".into()
            };
            println!(
                "| {vocab} | {rows} | {:.2} | {:.2} | {split} | {:.2} | {:.2}× |",
                m[0],
                m[1],
                m[2],
                m[0] / m[2]
            );
        }
    }
}
