//! Vector primitives of the CPU decode kernel: dot products, weighted
//! sums and a vectorizable `exp`, written so LLVM emits 256-bit FMAs, with
//! an AVX2 intrinsic four-key dot where the portable form vectorizes badly.
//! Floating-point order is fixed per build, so results are deterministic.

/// `a * b + c`, fused where the target has FMA.
pub(crate) trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;

    /// Dot products of one query with four keys, as four independent
    /// 8-lane FMA chains.
    #[inline(always)]
    fn dot4<const D: usize>(q: &[f32; D], k: &[[f32; D]; 4]) -> [f32; 4] {
        let mut acc = [[0.0f32; 8]; 4];
        for c in 0..D / 8 {
            for (a, key) in acc.iter_mut().zip(k) {
                for i in 0..8 {
                    a[i] = Self::madd(q[c * 8 + i], key[c * 8 + i], a[i]);
                }
            }
        }
        acc.map(hsum)
    }
}

#[cfg(any(target_arch = "aarch64", test))]
pub(crate) struct Fused;
#[cfg(any(target_arch = "aarch64", test))]
impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

pub(crate) struct Plain;
impl Madd for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[inline(always)]
pub(crate) fn dot<M: Madd>(a: &[f32], b: &[f32]) -> f32 {
    // Fixed-width chunks and an 8-lane accumulator: one 256-bit FMA per
    // chunk under AVX2.
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..8 {
            acc[i] = M::madd(x[i], y[i], acc[i]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail = M::madd(*x, *y, tail);
    }
    hsum(acc) + tail
}

/// Sum of eight lanes: high half onto low half, then pairs.
#[inline(always)]
fn hsum(acc: [f32; 8]) -> f32 {
    let h = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (h[0] + h[2]) + (h[1] + h[3])
}

/// Σ x in eight interleaved partial sums (vectorizes; order is fixed):
/// what [`exp_sum`] returns, kept as its reference.
#[cfg(test)]
#[inline(always)]
pub(crate) fn sum(x: &[f32]) -> f32 {
    let (c, r) = x.as_chunks::<8>();
    let mut acc = [0.0f32; 8];
    for y in c {
        for i in 0..8 {
            acc[i] += y[i];
        }
    }
    hsum(acc) + r.iter().sum::<f32>()
}

/// `x ← exp_fast(x − m)` for every element, then [`sum`] of the results,
/// in one pass: the same bits as the two loops, but the sums' additions
/// (a dependency chain) overlap the exponentials instead of following them.
/// Sixteen at a time, so that the exponentials fill 512-bit vectors where
/// the target has them.
#[inline(always)]
pub(crate) fn exp_sum(x: &mut [f32], m: f32) -> f32 {
    let (c16, rest) = x.as_chunks_mut::<16>();
    let mut acc = [0.0f32; 8];
    for y in c16 {
        for v in y.iter_mut() {
            *v = exp_fast(*v - m);
        }
        for i in 0..8 {
            acc[i] += y[i];
        }
        for i in 0..8 {
            acc[i] += y[8 + i];
        }
    }
    let (c8, r) = rest.as_chunks_mut::<8>();
    for y in c8 {
        for v in y.iter_mut() {
            *v = exp_fast(*v - m);
        }
        for i in 0..8 {
            acc[i] += y[i];
        }
    }
    for v in r.iter_mut() {
        *v = exp_fast(*v - m);
    }
    hsum(acc) + r.iter().sum::<f32>()
}

#[inline(always)]
pub(crate) fn axpy<M: Madd>(acc: &mut [f32], w: f32, v: &[f32]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a = M::madd(w, *x, *a);
    }
}

/// `e^x` to about 2 ulp for the softmax range (Cephes `expf`: range
/// reduction by ln 2, degree-5 polynomial), written to vectorize: the
/// integer part comes out of the rounding constant's bits, with no
/// float-to-int conversion.
#[inline(always)]
pub(crate) fn exp_fast(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // t's low mantissa bits hold k + 2^22; shift k + 127 into the exponent.
    let k_bits = t.to_bits().wrapping_sub(MAGIC.to_bits());
    e * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

/// AVX2 + FMA: [`Fused`] with the four-key dot in 256-bit intrinsics (the
/// portable form vectorizes across keys instead of lanes).
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Madd for Avx2 {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }

    #[inline(always)]
    fn dot4<const D: usize>(q: &[f32; D], k: &[[f32; D]; 4]) -> [f32; 4] {
        // SAFETY: `Avx2` is only used by the kernel's AVX2 + FMA entry,
        // reached after checking both features at run time.
        unsafe { dot4_avx2(q, k) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot4_avx2<const D: usize>(q: &[f32; D], k: &[[f32; D]; 4]) -> [f32; 4] {
    use std::arch::x86_64::{
        __m128, __m256, _mm_add_ps, _mm_hadd_ps, _mm_storeu_ps, _mm256_castps256_ps128,
        _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
    };
    // Nested helpers get the same features: intrinsics only inline into
    // functions compiled with them (no closures here for the same reason).
    #[target_feature(enable = "avx2,fma")]
    fn halves(v: __m256) -> __m128 {
        _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))
    }
    let mut acc = [_mm256_setzero_ps(); 4];
    for c in 0..D / 8 {
        // SAFETY: `c * 8 + 8 <= D`: every load reads 8 floats inside `q`
        // or a key, all `D` floats long.
        let qv = unsafe { _mm256_loadu_ps(q.as_ptr().add(c * 8)) };
        for i in 0..4 {
            // SAFETY: as above.
            let kv = unsafe { _mm256_loadu_ps(k[i].as_ptr().add(c * 8)) };
            acc[i] = _mm256_fmadd_ps(qv, kv, acc[i]);
        }
    }
    // The four horizontal sums at once, each `(s0 + s1) + (s2 + s3)` of its
    // halves' sum `s` (lane i: a_i + a_(i+4)): two `hadd`s per key as
    // `hadd(s, s)` twice would take, three for all four keys.
    let (s0, s1, s2, s3) = (
        halves(acc[0]),
        halves(acc[1]),
        halves(acc[2]),
        halves(acc[3]),
    );
    let sums = _mm_hadd_ps(_mm_hadd_ps(s0, s1), _mm_hadd_ps(s2, s3));
    let mut out = [0.0f32; 4];
    // SAFETY: `out` holds four floats.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), sums) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_matches_std_over_softmax_range() {
        let mut worst = 0.0f32;
        for i in 0..=200_000 {
            let x = -87.0 + 87.0 * i as f32 / 200_000.0;
            let (a, b) = (exp_fast(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!(exp_fast(f32::NEG_INFINITY) < 1e-37);
    }

    /// [`exp_sum`] gives the bits of the exponentials then [`sum`]: every
    /// length's chunks of 16 and 8 and remainder, scores far below the
    /// maximum (clamped), equal to it, infinite and NaN.
    #[test]
    fn exp_sum_gives_the_bits_of_exps_then_sum() {
        let mut x = 7u32;
        let mut next = || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 8) as f32 / (1 << 24) as f32
        };
        for len in (0..80).chain([255, 256, 257, 1000, 1031, 1032, 4099]) {
            for m in [0.0f32, 3.5, -2.0, f32::INFINITY, f32::NEG_INFINITY] {
                let mut s: Vec<f32> = (0..len)
                    .map(|i| match i % 97 {
                        13 => -1e4,
                        29 => m,
                        41 => f32::NEG_INFINITY,
                        _ if len == 1031 && i == 500 => f32::NAN,
                        _ => m - 30.0 * next(),
                    })
                    .collect();
                let mut want = s.clone();
                for v in want.iter_mut() {
                    *v = exp_fast(*v - m);
                }
                let want_sum = sum(&want);
                let got_sum = exp_sum(&mut s, m);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&s), bits(&want), "len {len} m {m}");
                assert_eq!(got_sum.to_bits(), want_sum.to_bits(), "len {len} m {m}");
            }
        }
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let want: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot::<Plain>(&a, &a), want);
        assert_eq!(dot::<Fused>(&a, &a), want);
    }

    /// The AVX2 four-key dot, bit for bit: eight fused lanes per key over
    /// the chunks in order, then `((a0+a4) + (a1+a5)) + ((a2+a6) + (a3+a7))`
    /// (what one `hadd(s, s)` pair per key gave before the four keys'
    /// sums were taken together).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_dot4_sums_each_key_in_the_fixed_order() {
        fn check<const D: usize>(seed: u32) {
            let mut x = seed;
            let mut next = || {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
            };
            let q: [f32; D] = std::array::from_fn(|_| next());
            let k: [[f32; D]; 4] = std::array::from_fn(|_| std::array::from_fn(|_| next()));
            let want = k.map(|key| {
                let mut a = [0.0f32; 8];
                for c in 0..D / 8 {
                    for i in 0..8 {
                        a[i] = q[c * 8 + i].mul_add(key[c * 8 + i], a[i]);
                    }
                }
                ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
            });
            let got = Avx2::dot4::<D>(&q, &k);
            assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "D = {D}");
        }
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        for seed in 0..200 {
            check::<64>(seed);
            check::<128>(seed);
        }
    }
}
