//! The machine's memory bandwidth, measured the way weight streaming uses it:
//! reading a buffer far larger than the last-level cache, on all threads.

use std::time::Instant;

use rayon::prelude::*;

use super::stats::median;

/// Read bandwidth in GB/s (10^9 bytes/s): median of `repeats` full passes
/// summing a `bytes`-sized f32 buffer with rayon's threads.
pub fn read_bandwidth_gbs(bytes: usize, repeats: usize) -> f64 {
    let n = bytes / 4;
    let buf: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let mut times = Vec::with_capacity(repeats);
    let mut sink = 0.0f32;
    for _ in 0..repeats.max(1) + 1 {
        let start = Instant::now();
        let s: f32 = buf
            .par_chunks(1 << 16)
            .map(|c| {
                // 8 independent accumulators so the loop is bound by loads, not adds.
                let mut acc = [0.0f32; 8];
                for x in c.chunks_exact(8) {
                    for j in 0..8 {
                        acc[j] += x[j];
                    }
                }
                acc.iter().sum::<f32>()
            })
            .sum();
        sink += s;
        times.push(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    // The first pass pays page faults; it is the warm-up.
    (n * 4) as f64 / median(&times[1..]) / 1e9
}
