//! Register tiles of the decode kernel's two multiply-add passes for
//! `head_dim` 64 and 128, for CPUs with AVX-512 (F + VL): their 32 vector
//! registers hold up to three query heads' tiles at once, so each key or
//! value loaded feeds every head of the tile.
//!
//! Every result is the same bits as the AVX2 passes of
//! [`super::cpu_kernel`] (tests `tiles_match_the_avx2_passes_bit_for_bit`
//! there):
//! - a score is each key's eight-lane fused multiply-add chain over the
//!   dimensions in order, then `((a0+a4) + (a1+a5)) + ((a2+a6) + (a3+a7))`
//!   ([`super::simd`]'s four-key dot); here eight keys × up to three heads
//!   run as 24 independent 256-bit chains and the eight keys' sums are
//!   taken together by a transpose that adds the same pairs in the same
//!   order. A run's last `len % 8` keys take the four-key dot and the plain
//!   dot as before;
//! - a weighted value is `acc[i] = w · v[i] + acc[i]`, fused, key after key:
//!   elementwise, so 512-bit vectors give the same bits as 256-bit ones.

use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_hadd_ps, _mm256_loadu_ps,
    _mm256_permute2f128_ps, _mm256_setzero_ps, _mm256_storeu_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
    _mm512_set1_ps, _mm512_storeu_ps,
};

use super::simd::{Avx2, Madd, dot};

/// Whether this CPU runs the tiles.
pub(super) fn runs_here() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
}

/// Pass 1 over one run of keys: `scores[g * n + j0 + j]` = query head
/// `g`'s (pre-scaled) dot with key `j`, for every head of `qs`
/// (`[group, D]`).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) fn scores<const D: usize>(
    qs: &[f32],
    keys: &[[f32; D]],
    scores: &mut [f32],
    n: usize,
    j0: usize,
) {
    let group = qs.len() / D;
    let (k8, rest) = keys.as_chunks::<8>();
    let mut g0 = 0;
    while g0 < group {
        let h = if group - g0 >= 3 { 3 } else { 1 };
        for (t, k) in k8.iter().enumerate() {
            let q = &qs[g0 * D..(g0 + h) * D];
            let out = &mut scores[g0 * n..];
            if h == 3 {
                score_tile3::<D>(q, k, out, n, j0 + 8 * t);
            } else {
                score_tile1::<D>(q, k, out, j0 + 8 * t);
            }
        }
        g0 += h;
    }
    if !rest.is_empty() {
        scores_rest::<D>(qs, rest, scores, n, j0 + 8 * k8.len());
    }
}

/// A run's last `len % 8` keys, as the AVX2 pass scores them: four-key
/// dots, then plain dots.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
fn scores_rest<const D: usize>(
    qs: &[f32],
    keys: &[[f32; D]],
    scores: &mut [f32],
    n: usize,
    j0: usize,
) {
    let (k4, k1) = keys.as_chunks::<4>();
    let j1 = j0 + 4 * k4.len();
    for (g, q) in qs.as_chunks::<D>().0.iter().enumerate() {
        for (i, k) in k4.iter().enumerate() {
            let s = <Avx2 as Madd>::dot4::<D>(q, k);
            scores[g * n + j0 + 4 * i..g * n + j0 + 4 * i + 4].copy_from_slice(&s);
        }
        for (i, k) in k1.iter().enumerate() {
            scores[g * n + j1 + i] = dot::<Avx2>(q, k);
        }
    }
}

/// Three heads (`q`: `[3, D]`) × eight keys: 24 accumulators over the
/// `D / 8` chunks, then each head's eight sums in one vector, stored at
/// `out[h * n + at ..][..8]`.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
fn score_tile3<const D: usize>(
    q: &[f32],
    keys: &[[f32; D]; 8],
    out: &mut [f32],
    n: usize,
    at: usize,
) {
    assert!(q.len() == 3 * D && out.len() >= 2 * n + at + 8);
    let [mut a0, mut a1, mut a2] = [[_mm256_setzero_ps(); 8]; 3];
    // Opaque to the optimizer so that it keeps the chunk loop (a fully
    // unrolled one runs out of registers); the same value.
    let chunks = std::hint::black_box(D / 8);
    for c in 0..chunks.min(D / 8) {
        let o = c * 8;
        // SAFETY: `o + 8 <= D`: every load reads 8 floats inside one of
        // the three queries (`q` is `3 * D` floats) or inside a key.
        let (q0, q1, q2) = unsafe {
            (
                _mm256_loadu_ps(q.as_ptr().add(o)),
                _mm256_loadu_ps(q.as_ptr().add(D + o)),
                _mm256_loadu_ps(q.as_ptr().add(2 * D + o)),
            )
        };
        macro_rules! key {
            ($($j:literal)*) => {$(
                // SAFETY: as above.
                let k = unsafe { _mm256_loadu_ps(keys[$j].as_ptr().add(o)) };
                a0[$j] = _mm256_fmadd_ps(q0, k, a0[$j]);
                a1[$j] = _mm256_fmadd_ps(q1, k, a1[$j]);
                a2[$j] = _mm256_fmadd_ps(q2, k, a2[$j]);
            )*};
        }
        key!(0 1 2 3 4 5 6 7);
    }
    for (h, a) in [a0, a1, a2].iter().enumerate() {
        let dst = &mut out[h * n + at..h * n + at + 8];
        // SAFETY: `dst` holds eight floats.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), sums8(a)) };
    }
}

/// One head (`q`: `[D]`) × eight keys, stored at `out[at..][..8]`.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
fn score_tile1<const D: usize>(q: &[f32], keys: &[[f32; D]; 8], out: &mut [f32], at: usize) {
    assert!(q.len() == D && out.len() >= at + 8);
    let mut a = [_mm256_setzero_ps(); 8];
    for c in 0..D / 8 {
        let o = c * 8;
        // SAFETY: `o + 8 <= D`: the loads read inside the query or a key.
        let qv = unsafe { _mm256_loadu_ps(q.as_ptr().add(o)) };
        macro_rules! key {
            ($($j:literal)*) => {$(
                // SAFETY: as above.
                let k = unsafe { _mm256_loadu_ps(keys[$j].as_ptr().add(o)) };
                a[$j] = _mm256_fmadd_ps(qv, k, a[$j]);
            )*};
        }
        key!(0 1 2 3 4 5 6 7);
    }
    // SAFETY: `out[at..at + 8]` is in bounds, asserted above.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at), sums8(&a)) };
}

/// Lane `j`: key `j`'s `((a0+a4) + (a1+a5)) + ((a2+a6) + (a3+a7))`.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
fn sums8(a: &[__m256; 8]) -> __m256 {
    // Low half: key x's lanes i + (i + 4); high half: key y's.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    #[inline]
    fn halves(x: __m256, y: __m256) -> __m256 {
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(x, y),
            _mm256_permute2f128_ps::<0x31>(x, y),
        )
    }
    // `hadd` adds neighbours within each 128-bit half: twice gives
    // `(s0 + s1) + (s2 + s3)` of each half's four, keys 0–3 low, 4–7 high.
    let (p, q, r, s) = (
        halves(a[0], a[4]),
        halves(a[1], a[5]),
        halves(a[2], a[6]),
        halves(a[3], a[7]),
    );
    _mm256_hadd_ps(_mm256_hadd_ps(p, q), _mm256_hadd_ps(r, s))
}

/// Pass 3 over one run of values: `accs[g * D + i] += w · v[i]` key after
/// key, `w` = `scores[g * n + j0 + j]`, for every head.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
pub(super) fn values<const D: usize>(
    scores: &[f32],
    values: &[[f32; D]],
    accs: &mut [f32],
    n: usize,
    j0: usize,
) {
    let group = accs.len() / D;
    // Three heads' accumulators are 12 registers at `D` = 64 but 24 at 128,
    // which with the loads spills: two heads a tile there.
    let most = if D > 64 { 2 } else { 3 };
    let mut g0 = 0;
    while g0 < group {
        let h = (group - g0).min(most);
        match h {
            3 => value_tile::<D, 3>(scores, values, accs, g0, n, j0),
            2 => value_tile::<D, 2>(scores, values, accs, g0, n, j0),
            _ => value_tile::<D, 1>(scores, values, accs, g0, n, j0),
        }
        g0 += h;
    }
}

/// Heads `g0 .. g0 + H`: their accumulators stay in registers (H·D/16
/// 512-bit vectors) across the run.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[inline]
fn value_tile<const D: usize, const H: usize>(
    scores: &[f32],
    values: &[[f32; D]],
    accs: &mut [f32],
    g0: usize,
    n: usize,
    j0: usize,
) {
    let count = values.len();
    let w: [&[f32]; H] =
        std::array::from_fn(|h| &scores[(g0 + h) * n + j0..(g0 + h) * n + j0 + count]);
    let slot = &mut accs[g0 * D..(g0 + H) * D];
    // At most 8 vectors a head: `D <= 128`.
    const { assert!(D.is_multiple_of(16) && D <= 128) };
    let mut acc = [[_mm512_set1_ps(0.0); 8]; H];
    for (h, a) in acc.iter_mut().enumerate() {
        for (c, x) in a.iter_mut().enumerate().take(D / 16) {
            // SAFETY: `slot` holds H·D floats; the load reads 16 inside it.
            *x = unsafe { _mm512_loadu_ps(slot.as_ptr().add(h * D + c * 16)) };
        }
    }
    for (j, v) in values.iter().enumerate() {
        for (a, wh) in acc.iter_mut().zip(&w) {
            let wv = _mm512_set1_ps(wh[j]);
            for (c, x) in a.iter_mut().enumerate().take(D / 16) {
                // SAFETY: `c * 16 + 16 <= D`: the load reads inside `v`.
                let vc = unsafe { _mm512_loadu_ps(v.as_ptr().add(c * 16)) };
                *x = _mm512_fmadd_ps(wv, vc, *x);
            }
        }
    }
    for (h, a) in acc.iter().enumerate() {
        for (c, x) in a.iter().enumerate().take(D / 16) {
            // SAFETY: as the loads above.
            unsafe { _mm512_storeu_ps(slot.as_mut_ptr().add(h * D + c * 16), *x) };
        }
    }
}
