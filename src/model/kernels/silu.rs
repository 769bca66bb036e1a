//! `silu(gate) · up`, the SwiGLU product, sixteen values at a time with
//! AVX-512 and bit for bit what the scalar composition returns.
//!
//! The scalar form is burn-flex's sigmoid (`1 / (1 + exp(−x))` for
//! `x ≥ 0`, `exp(x) / (1 + exp(x))` below), with `f32::exp`: glibc's
//! `expf`. At W = 16 on SmolLM2 that is 737k calls per decode step, the
//! largest part of the step outside the projections and attention that
//! grows with the rows. The sixteen-lane path evaluates glibc 2.36's
//! `expf` (`sysdeps/ieee754/flt-32/e_expf.c`, Arm's optimized-routines
//! algorithm) operation for operation, with the contractions of the
//! `__expf_fma` variant glibc runs on a CPU with FMA and AVX2 (read from
//! its machine code): in double precision, `k = round(x · 32 / ln 2)` by
//! adding `1.5 · 2^52` to a fused product, `r = x · 32 / ln 2 − k` in one
//! FMA, `2^(k/32)` from a 32-entry table plus the bits of `k`, and
//! `2^(r/32)` by a cubic in three FMAs; then one rounding to f32. It runs
//! only where `f32::exp` is that function (x86-64 Linux with glibc), so
//! no logit changes anywhere; `tests::expf_equals_libm` checks the port
//! against libm on tens of millions of arguments (and every f32 the fast
//! path takes was compared once, exhaustively, when it was written).
//! Lanes of magnitude 88 or more (or NaN) take glibc's special cases: the
//! chunk holding them runs the scalar form.

use crate::model::kernels::isa::Isa;

/// `32 / ln 2`.
const INV_LN2_N: f64 = f64::from_bits(0x4047_1547_652b_82fe);
/// `1.5 · 2^52`: adding it rounds to an integer held in the low bits.
const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000);
/// `2^(r/32) ≈ (C0 r + C1) r² + (C2 r + 1)`.
const C0: f64 = f64::from_bits(0x3ebc_6af8_4b91_2394);
const C1: f64 = f64::from_bits(0x3f2e_bfce_50fa_c4f3);
const C2: f64 = f64::from_bits(0x3f96_2e42_ff0c_52d6);
/// The top 12 bits of an f32 (sign masked) from which glibc's `expf`
/// takes its special cases: `top12(88.0)`.
const TOP_SPECIAL: u32 = 0x42b;

/// `2^(j/32)` for `j` in `0..32`, less `j << 47` in the bits, so that
/// adding `k << 47` gives `2^(k/32)` (glibc's `__exp2f_data.tab`).
#[rustfmt::skip]
static TAB: [u64; 32] = [
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
];

/// `out[i] = gate[i] · σ(gate[i]) · up[i]` (evaluated left to right),
/// sixteen at a time where the kernels may use AVX-512 and `f32::exp` is
/// glibc's; the same bits on every path.
pub fn silu_times(gate: &[f32], up: &[f32], out: &mut [f32]) {
    silu_times_on(Isa::active(), gate, up, out);
}

/// [`silu_times`] on `isa` (which the CPU runs).
fn silu_times_on(isa: Isa, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == out.len() && up.len() == out.len());
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    if isa == Isa::Avx512 {
        assert!(isa.runs_here());
        // SAFETY: the CPU has AVX-512 F and DQ (what `Isa::Avx512` means).
        unsafe { avx512::silu_times(gate, up, out) };
        return;
    }
    let _ = isa;
    silu_times_scalar(gate, up, out);
}

/// The scalar form, one value at a time.
fn silu_times_scalar(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &x), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = x * sigmoid(x) * u;
    }
}

/// burn-flex's `sigmoid_f32`, operation for operation.
#[inline]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// glibc's `expf` main path, one value at a time (what the sixteen-lane
/// path computes per lane); `|x| < 88` only.
#[cfg(test)]
fn expf_main_path(x: f32) -> f32 {
    let xd = f64::from(x);
    let kd = INV_LN2_N.mul_add(xd, SHIFT);
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = INV_LN2_N.mul_add(xd, -kd);
    let z = C0.mul_add(r, C1);
    let r2 = r * r;
    let y = C2.mul_add(r, 1.0);
    let y = z.mul_add(r2, y);
    let s = f64::from_bits(TAB[(ki % 32) as usize].wrapping_add(ki << 47));
    (y * s) as f32
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod avx512 {
    use std::arch::x86_64::*;

    use super::*;

    /// [`super::silu_times`], sixteen values a step.
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    pub(super) fn silu_times(gate: &[f32], up: &[f32], out: &mut [f32]) {
        let mut gates = gate.chunks_exact(16);
        let mut ups = up.chunks_exact(16);
        let mut outs = out.chunks_exact_mut(16);
        for ((g, u), o) in (&mut gates).zip(&mut ups).zip(&mut outs) {
            // SAFETY: `g`, `u` and `o` hold sixteen elements each.
            let x = unsafe { _mm512_loadu_ps(g.as_ptr()) };
            let abstop = _mm512_and_si512(
                _mm512_srli_epi32::<20>(_mm512_castps_si512(x)),
                _mm512_set1_epi32(0x7ff),
            );
            let special = _mm512_cmpge_epu32_mask(abstop, _mm512_set1_epi32(TOP_SPECIAL as i32));
            if special != 0 {
                silu_times_scalar(g, u, o);
                continue;
            }
            // exp(−|x|): the argument of both branches of the sigmoid.
            let a = _mm512_or_ps(x, _mm512_set1_ps(-0.0));
            let lo = expf8(_mm512_castps512_ps256(a));
            let hi = expf8(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(a),
            )));
            let e = _mm512_insertf32x8::<1>(_mm512_castps256_ps512(lo), hi);
            let one = _mm512_set1_ps(1.0);
            let nonneg = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_setzero_ps());
            let sig = _mm512_div_ps(_mm512_mask_blend_ps(nonneg, e, one), _mm512_add_ps(one, e));
            // SAFETY: as above.
            unsafe {
                let y = _mm512_mul_ps(_mm512_mul_ps(x, sig), _mm512_loadu_ps(u.as_ptr()));
                _mm512_storeu_ps(o.as_mut_ptr(), y);
            }
        }
        silu_times_scalar(gates.remainder(), ups.remainder(), outs.into_remainder());
    }

    /// glibc's `expf` main path for eight values (`|x| < 88`), in double
    /// precision lane for lane.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    fn expf8(x: __m256) -> __m256 {
        let inv = _mm512_set1_pd(INV_LN2_N);
        let xd = _mm512_cvtps_pd(x);
        let kd = _mm512_fmadd_pd(inv, xd, _mm512_set1_pd(SHIFT));
        let ki = _mm512_castpd_si512(kd);
        let kd = _mm512_sub_pd(kd, _mm512_set1_pd(SHIFT));
        let r = _mm512_fmsub_pd(inv, xd, kd);
        let z = _mm512_fmadd_pd(_mm512_set1_pd(C0), r, _mm512_set1_pd(C1));
        let r2 = _mm512_mul_pd(r, r);
        let y = _mm512_fmadd_pd(_mm512_set1_pd(C2), r, _mm512_set1_pd(1.0));
        let y = _mm512_fmadd_pd(z, r2, y);
        // TAB[k % 32]: two 16-entry permutes, picked by bit 4 of k.
        // SAFETY: `TAB` holds four 512-bit vectors.
        let t = unsafe {
            let p = TAB.as_ptr().cast::<__m512i>();
            let lo =
                _mm512_permutex2var_epi64(_mm512_loadu_si512(p), ki, _mm512_loadu_si512(p.add(1)));
            let hi = _mm512_permutex2var_epi64(
                _mm512_loadu_si512(p.add(2)),
                ki,
                _mm512_loadu_si512(p.add(3)),
            );
            _mm512_mask_blend_epi64(_mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), lo, hi)
        };
        let s = _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64::<47>(ki)));
        _mm512_cvtpd_ps(_mm512_mul_pd(y, s))
    }

    /// [`expf8`] over a slice whose length is a multiple of eight (tests).
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    pub(super) fn expf_slice(xs: &[f32], out: &mut [f32]) {
        for (x, o) in xs.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
            // SAFETY: `x` and `o` hold eight elements each.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), expf8(_mm256_loadu_ps(x.as_ptr()))) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal bits, or both NaN.
    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Where `f32::exp` is glibc's FMA variant, the main path returns its
    /// bits on every 61st f32 it takes (37 million, both signs), one at a
    /// time and eight at a time.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    fn expf_equals_libm() {
        if !(std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("avx2"))
        {
            return;
        }
        let mut xs: Vec<f32> = (0..=u32::MAX)
            .step_by(61)
            .filter(|bits| (bits >> 20) & 0x7ff < TOP_SPECIAL)
            .map(f32::from_bits)
            .collect();
        xs.truncate(xs.len() / 8 * 8);
        let mut lanes = vec![7.0; xs.len()];
        if Isa::Avx512.runs_here() {
            // SAFETY: the CPU has AVX-512 F and DQ (checked just above).
            unsafe { avx512::expf_slice(&xs, &mut lanes) };
        }
        let mut wrong = 0;
        for (&x, &l) in xs.iter().zip(&lanes) {
            let one = expf_main_path(x);
            if !same(one, x.exp()) || (Isa::Avx512.runs_here() && !same(l, one)) {
                if wrong < 10 {
                    eprintln!(
                        "expf({x:e}) = {one:e}, eight lanes {l:e}, libm {:e}",
                        x.exp()
                    );
                }
                wrong += 1;
            }
        }
        assert_eq!(wrong, 0, "of {}", xs.len());
    }

    /// Every instruction set returns the scalar form's bits, over rows
    /// with special lanes (±88 and beyond, infinities, NaN, signed zeros)
    /// among ordinary ones and ragged tails.
    #[test]
    fn every_isa_equals_the_scalar_form() {
        let mut s = 0x9e37_79b9u32;
        let mut next = |amp: f32| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            amp * ((s % 200_001) as f32 / 100_000.0 - 1.0)
        };
        let awkward = [
            0.0,
            -0.0,
            87.99,
            -87.99,
            88.0,
            -88.0,
            -103.5,
            -104.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-30,
            -1e-30,
            f32::MIN_POSITIVE,
        ];
        for len in [1usize, 15, 16, 17, 1536, 4099] {
            for amp in [0.01f32, 8.0, 120.0] {
                let mut gate: Vec<f32> = (0..len).map(|_| next(amp)).collect();
                let up: Vec<f32> = (0..len).map(|_| next(4.0)).collect();
                if len > 1000 {
                    for (i, &a) in awkward.iter().enumerate() {
                        gate[i * 37 + 3] = a;
                    }
                }
                let mut want = vec![0.0; len];
                silu_times_scalar(&gate, &up, &mut want);
                for isa in Isa::supported() {
                    let mut got = vec![7.0; len];
                    silu_times_on(isa, &gate, &up, &mut got);
                    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            same(g, w),
                            "{isa} {len} {amp} #{i} ({}): {g:e} vs {w:e}",
                            gate[i]
                        );
                    }
                }
            }
        }
    }
}
