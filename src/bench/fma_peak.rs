//! The machine's f32 multiply-add peak, measured the way the decode
//! kernels compute: independent FMA chains in the widest vectors the
//! kernels use ([`Isa::active`]), on all of rayon's threads.
//!
//! Beside [`super::bandwidth`]'s read bandwidth it gives the other
//! roofline: a step with many rows is bound by its multiply-adds, not by
//! the weight stream, and its GFLOP/s against this peak says how far from
//! the bound it runs.

use std::time::Instant;

use rayon::prelude::*;

use super::stats::median;
use crate::model::kernels::isa::Isa;

/// Independent accumulator chains per thread: more than FMA latency ×
/// throughput on current x86 cores (4 × 2).
const CHAINS: usize = 12;

/// Peak f32 GFLOP/s (a multiply-add counts 2): median of `repeats` runs in
/// which every rayon thread does `iters` rounds of `CHAINS` vector FMAs
/// with the kernels' instruction set.
pub fn fma_peak_gflops(iters: usize, repeats: usize) -> f64 {
    let isa = Isa::active();
    let threads = rayon::current_num_threads().max(1);
    let mut times = Vec::with_capacity(repeats + 1);
    let mut sink = 0.0f32;
    for _ in 0..repeats.max(1) + 1 {
        let start = Instant::now();
        sink += (0..threads)
            .into_par_iter()
            .map(|t| chains(isa, iters, t as f32))
            .sum::<f32>();
        times.push(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    let flops = 2.0 * (threads * iters * CHAINS * lanes(isa)) as f64;
    // The first run wakes the pool; it is the warm-up.
    flops / median(&times[1..]) / 1e9
}

/// f32 lanes per FMA of `isa`.
fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        Isa::Portable => 1,
    }
}

/// `iters` rounds of `CHAINS` FMAs (`a = a·m + c`, bounded) in `isa`'s
/// vectors; returns a sum of the accumulators so none is optimized away.
fn chains(isa: Isa, iters: usize, seed: f32) -> f32 {
    match isa {
        // SAFETY (both): `Isa::active` runs here; AVX-512 F comes with
        // AVX2 and FMA (`Isa::runs_here`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { chains_avx512(iters, seed) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { chains_avx2(iters, seed) },
        _ => {
            let mut acc = [seed; CHAINS];
            for _ in 0..iters {
                for a in &mut acc {
                    *a = std::hint::black_box(*a).mul_add(0.999_999, 1e-7);
                }
            }
            acc.iter().sum()
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f")]
fn chains_avx512(iters: usize, seed: f32) -> f32 {
    use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_reduce_add_ps, _mm512_set1_ps};
    let (m, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(seed); CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm512_fmadd_ps(*a, m, c);
        }
    }
    acc.iter().map(|a| _mm512_reduce_add_ps(*a)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn chains_avx2(iters: usize, seed: f32) -> f32 {
    use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_set1_ps, _mm256_storeu_ps};
    let (m, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(seed); CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm256_fmadd_ps(*a, m, c);
        }
    }
    let mut lanes = [0.0f32; 8];
    acc.iter()
        .map(|a| {
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *a) };
            lanes.iter().sum::<f32>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_set_runs_its_chains() {
        for isa in Isa::supported() {
            let s = chains(isa, 1000, 1.0);
            assert!(s.is_finite() && s > 0.0, "{isa}: {s}");
        }
        assert!(fma_peak_gflops(1000, 1) > 0.0);
    }
}
