//! The sampler's `exp`: glibc's double-precision `exp` (the algorithm of
//! Arm's optimized-routines, `sysdeps/ieee754/dbl-64/e_exp.c`, as glibc
//! 2.36 builds it for x86-64 CPUs with FMA and AVX2) ported operation for
//! operation, so it returns the bits `f64::exp` returns on such a machine,
//! one value at a time ([`exp`]) or eight at a time with AVX-512
//! ([`exp_weights`]).
//!
//! Every sampling weight `exp((logit − max) / T)` goes through this module,
//! in the reference walk ([`super::sampling::filtered_distribution`]) and
//! in the draw ([`super::draw`]) alike, so the two agree on every machine;
//! on x86-64 glibc (FMA variant) they also agree with `f64::exp`, so the
//! tokens drawn there are the ones drawn before this module existed
//! (`tests::equals_libm_exp_*`). On another libm the tokens are now
//! glibc's, where they were that libm's.
//!
//! The algorithm: `exp(x) = 2^(k/128) · exp(r)` with `k = round(x · 128 /
//! ln 2)` (by adding and subtracting `1.5 · 2^52`), `r = x − k · ln 2 / 128`
//! in two FMAs, `2^(k/128)` from a 128-entry table (a tail and the bits of
//! the scale) and `exp(r) − 1` by a degree-5 polynomial. The contractions
//! are glibc's (read from its `__exp_fma` machine code): which products
//! are fused into which sums decides the last bit. Arguments of magnitude
//! below `2^-54`, at or above 512, infinite or NaN take glibc's special
//! cases, also ported (the eight-lane path hands such lanes to [`exp`]).

use crate::model::kernels::isa::Isa;

/// `128 / ln 2`.
const INV_LN2_N: f64 = f64::from_bits(0x4067_1547_652b_82fe);
/// `−ln 2 / 128`, high part (its low bits zero, so `k · hi` is exact).
const NEG_LN2_HI_N: f64 = f64::from_bits(0xbf76_2e42_fefa_0000);
/// `−ln 2 / 128`, low part.
const NEG_LN2_LO_N: f64 = f64::from_bits(0xbd0c_f79a_bc9e_3b3a);
/// `exp(r) − 1 − r ≈ C2 r² + C3 r³ + C4 r⁴ + C5 r⁵`.
const C2: f64 = f64::from_bits(0x3fdf_ffff_ffff_fdbd);
const C3: f64 = f64::from_bits(0x3fc5_5555_5555_543c);
const C4: f64 = f64::from_bits(0x3fa5_5555_cf17_2b91);
const C5: f64 = f64::from_bits(0x3f81_1111_67a4_d017);
/// `1.5 · 2^52`: adding it rounds to an integer held in the low bits.
const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000);
/// `top12(2^-54)`: below it `exp(x)` rounds to `1 + x`.
const TOP_TINY: u32 = 0x3c9;
/// `top12(512) − top12(2^-54)`: from 512 on, the scale's exponent may
/// leave the normal range.
const TOP_SPAN: u32 = 0x3f;
/// `top12(1024)`: from it on, `exp` overflows or underflows outright.
const TOP_HUGE: u32 = 0x409;

/// `2^(j/128)` for `j` in `0..128` as pairs: the bits of a small
/// correction `tail` and the bits of the scale less `j << 45`, so that
/// adding `k << 45` gives the scale of `2^(k/128)` (glibc's `__exp_data.tab`).
#[rustfmt::skip]
static TAB: [u64; 256] = [
    0x0000000000000000, 0x3ff0000000000000, 0x3c9b3b4f1a88bf6e, 0x3feff63da9fb3335,
    0xbc7160139cd8dc5d, 0x3fefec9a3e778061, 0xbc905e7a108766d1, 0x3fefe315e86e7f85,
    0x3c8cd2523567f613, 0x3fefd9b0d3158574, 0xbc8bce8023f98efa, 0x3fefd06b29ddf6de,
    0x3c60f74e61e6c861, 0x3fefc74518759bc8, 0x3c90a3e45b33d399, 0x3fefbe3ecac6f383,
    0x3c979aa65d837b6d, 0x3fefb5586cf9890f, 0x3c8eb51a92fdeffc, 0x3fefac922b7247f7,
    0x3c3ebe3d702f9cd1, 0x3fefa3ec32d3d1a2, 0xbc6a033489906e0b, 0x3fef9b66affed31b,
    0xbc9556522a2fbd0e, 0x3fef9301d0125b51, 0xbc5080ef8c4eea55, 0x3fef8abdc06c31cc,
    0xbc91c923b9d5f416, 0x3fef829aaea92de0, 0x3c80d3e3e95c55af, 0x3fef7a98c8a58e51,
    0xbc801b15eaa59348, 0x3fef72b83c7d517b, 0xbc8f1ff055de323d, 0x3fef6af9388c8dea,
    0x3c8b898c3f1353bf, 0x3fef635beb6fcb75, 0xbc96d99c7611eb26, 0x3fef5be084045cd4,
    0x3c9aecf73e3a2f60, 0x3fef54873168b9aa, 0xbc8fe782cb86389d, 0x3fef4d5022fcd91d,
    0x3c8a6f4144a6c38d, 0x3fef463b88628cd6, 0x3c807a05b0e4047d, 0x3fef3f49917ddc96,
    0x3c968efde3a8a894, 0x3fef387a6e756238, 0x3c875e18f274487d, 0x3fef31ce4fb2a63f,
    0x3c80472b981fe7f2, 0x3fef2b4565e27cdd, 0xbc96b87b3f71085e, 0x3fef24dfe1f56381,
    0x3c82f7e16d09ab31, 0x3fef1e9df51fdee1, 0xbc3d219b1a6fbffa, 0x3fef187fd0dad990,
    0x3c8b3782720c0ab4, 0x3fef1285a6e4030b, 0x3c6e149289cecb8f, 0x3fef0cafa93e2f56,
    0x3c834d754db0abb6, 0x3fef06fe0a31b715, 0x3c864201e2ac744c, 0x3fef0170fc4cd831,
    0x3c8fdd395dd3f84a, 0x3feefc08b26416ff, 0xbc86a3803b8e5b04, 0x3feef6c55f929ff1,
    0xbc924aedcc4b5068, 0x3feef1a7373aa9cb, 0xbc9907f81b512d8e, 0x3feeecae6d05d866,
    0xbc71d1e83e9436d2, 0x3feee7db34e59ff7, 0xbc991919b3ce1b15, 0x3feee32dc313a8e5,
    0x3c859f48a72a4c6d, 0x3feedea64c123422, 0xbc9312607a28698a, 0x3feeda4504ac801c,
    0xbc58a78f4817895b, 0x3feed60a21f72e2a, 0xbc7c2c9b67499a1b, 0x3feed1f5d950a897,
    0x3c4363ed60c2ac11, 0x3feece086061892d, 0x3c9666093b0664ef, 0x3feeca41ed1d0057,
    0x3c6ecce1daa10379, 0x3feec6a2b5c13cd0, 0x3c93ff8e3f0f1230, 0x3feec32af0d7d3de,
    0x3c7690cebb7aafb0, 0x3feebfdad5362a27, 0x3c931dbdeb54e077, 0x3feebcb299fddd0d,
    0xbc8f94340071a38e, 0x3feeb9b2769d2ca7, 0xbc87deccdc93a349, 0x3feeb6daa2cf6642,
    0xbc78dec6bd0f385f, 0x3feeb42b569d4f82, 0xbc861246ec7b5cf6, 0x3feeb1a4ca5d920f,
    0x3c93350518fdd78e, 0x3feeaf4736b527da, 0x3c7b98b72f8a9b05, 0x3feead12d497c7fd,
    0x3c9063e1e21c5409, 0x3feeab07dd485429, 0x3c34c7855019c6ea, 0x3feea9268a5946b7,
    0x3c9432e62b64c035, 0x3feea76f15ad2148, 0xbc8ce44a6199769f, 0x3feea5e1b976dc09,
    0xbc8c33c53bef4da8, 0x3feea47eb03a5585, 0xbc845378892be9ae, 0x3feea34634ccc320,
    0xbc93cedd78565858, 0x3feea23882552225, 0x3c5710aa807e1964, 0x3feea155d44ca973,
    0xbc93b3efbf5e2228, 0x3feea09e667f3bcd, 0xbc6a12ad8734b982, 0x3feea012750bdabf,
    0xbc6367efb86da9ee, 0x3fee9fb23c651a2f, 0xbc80dc3d54e08851, 0x3fee9f7df9519484,
    0xbc781f647e5a3ecf, 0x3fee9f75e8ec5f74, 0xbc86ee4ac08b7db0, 0x3fee9f9a48a58174,
    0xbc8619321e55e68a, 0x3fee9feb564267c9, 0x3c909ccb5e09d4d3, 0x3feea0694fde5d3f,
    0xbc7b32dcb94da51d, 0x3feea11473eb0187, 0x3c94ecfd5467c06b, 0x3feea1ed0130c132,
    0x3c65ebe1abd66c55, 0x3feea2f336cf4e62, 0xbc88a1c52fb3cf42, 0x3feea427543e1a12,
    0xbc9369b6f13b3734, 0x3feea589994cce13, 0xbc805e843a19ff1e, 0x3feea71a4623c7ad,
    0xbc94d450d872576e, 0x3feea8d99b4492ed, 0x3c90ad675b0e8a00, 0x3feeaac7d98a6699,
    0x3c8db72fc1f0eab4, 0x3feeace5422aa0db, 0xbc65b6609cc5e7ff, 0x3feeaf3216b5448c,
    0x3c7bf68359f35f44, 0x3feeb1ae99157736, 0xbc93091fa71e3d83, 0x3feeb45b0b91ffc6,
    0xbc5da9b88b6c1e29, 0x3feeb737b0cdc5e5, 0xbc6c23f97c90b959, 0x3feeba44cbc8520f,
    0xbc92434322f4f9aa, 0x3feebd829fde4e50, 0xbc85ca6cd7668e4b, 0x3feec0f170ca07ba,
    0x3c71affc2b91ce27, 0x3feec49182a3f090, 0x3c6dd235e10a73bb, 0x3feec86319e32323,
    0xbc87c50422622263, 0x3feecc667b5de565, 0x3c8b1c86e3e231d5, 0x3feed09bec4a2d33,
    0xbc91bbd1d3bcbb15, 0x3feed503b23e255d, 0x3c90cc319cee31d2, 0x3feed99e1330b358,
    0x3c8469846e735ab3, 0x3feede6b5579fdbf, 0xbc82dfcd978e9db4, 0x3feee36bbfd3f37a,
    0x3c8c1a7792cb3387, 0x3feee89f995ad3ad, 0xbc907b8f4ad1d9fa, 0x3feeee07298db666,
    0xbc55c3d956dcaeba, 0x3feef3a2b84f15fb, 0xbc90a40e3da6f640, 0x3feef9728de5593a,
    0xbc68d6f438ad9334, 0x3feeff76f2fb5e47, 0xbc91eee26b588a35, 0x3fef05b030a1064a,
    0x3c74ffd70a5fddcd, 0x3fef0c1e904bc1d2, 0xbc91bdfbfa9298ac, 0x3fef12c25bd71e09,
    0x3c736eae30af0cb3, 0x3fef199bdd85529c, 0x3c8ee3325c9ffd94, 0x3fef20ab5fffd07a,
    0x3c84e08fd10959ac, 0x3fef27f12e57d14b, 0x3c63cdaf384e1a67, 0x3fef2f6d9406e7b5,
    0x3c676b2c6c921968, 0x3fef3720dcef9069, 0xbc808a1883ccb5d2, 0x3fef3f0b555dc3fa,
    0xbc8fad5d3ffffa6f, 0x3fef472d4a07897c, 0xbc900dae3875a949, 0x3fef4f87080d89f2,
    0x3c74a385a63d07a7, 0x3fef5818dcfba487, 0xbc82919e2040220f, 0x3fef60e316c98398,
    0x3c8e5a50d5c192ac, 0x3fef69e603db3285, 0x3c843a59ac016b4b, 0x3fef7321f301b460,
    0xbc82d52107b43e1f, 0x3fef7c97337b9b5f, 0xbc892ab93b470dc9, 0x3fef864614f5a129,
    0x3c74b604603a88d3, 0x3fef902ee78b3ff6, 0x3c83c5ec519d7271, 0x3fef9a51fbc74c83,
    0xbc8ff7128fd391f0, 0x3fefa4afa2a490da, 0xbc8dae98e223747d, 0x3fefaf482d8e67f1,
    0x3c8ec3bc41aa2008, 0x3fefba1bee615a27, 0x3c842b94c3a9eb32, 0x3fefc52b376bba97,
    0x3c8a64a931d185ee, 0x3fefd0765b6e4540, 0xbc8e37bae43be3ed, 0x3fefdbfdad9cbe14,
    0x3c77893b4d91cd9d, 0x3fefe7c1819e90d8, 0x3c5305c14160cc89, 0x3feff3c22b8f71f1,
];

/// The sign and exponent bits of `x`.
#[inline(always)]
fn top12(x: f64) -> u32 {
    (x.to_bits() >> 52) as u32
}

/// `exp(x)`, bit for bit glibc 2.36's `exp` on x86-64 with FMA (see the
/// module's docs); on any machine.
#[inline]
pub fn exp(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if fma_here() {
        // SAFETY: the CPU has FMA (checked just above).
        return unsafe { exp_fma(x) };
    }
    exp_body(x)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn fma_here() -> bool {
    std::arch::is_x86_feature_detected!("fma")
}

/// [`exp_body`] compiled with FMA, so `mul_add` is one instruction instead
/// of a call (the same correctly rounded result either way).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn exp_fma(x: f64) -> f64 {
    exp_body(x)
}

#[inline(always)]
fn exp_body(x: f64) -> f64 {
    let abstop = top12(x) & 0x7ff;
    let mut special = false;
    if abstop.wrapping_sub(TOP_TINY) >= TOP_SPAN {
        if (abstop.wrapping_sub(TOP_TINY) as i32) < 0 {
            // |x| < 2^-54 (zeros included): 1 + x rounds to the result.
            return x + 1.0;
        }
        if abstop >= TOP_HUGE {
            if x == f64::NEG_INFINITY {
                return 0.0;
            }
            if abstop >= 0x7ff {
                // NaN or +inf.
                return x + 1.0;
            }
            return if x.is_sign_negative() {
                0.0
            } else {
                f64::INFINITY
            };
        }
        special = true;
    }
    let kd = x.mul_add(INV_LN2_N, SHIFT);
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = kd.mul_add(NEG_LN2_LO_N, kd.mul_add(NEG_LN2_HI_N, x));
    let idx = 2 * (ki % 128) as usize;
    let tail = f64::from_bits(TAB[idx]);
    let sbits = TAB[idx + 1].wrapping_add(ki << 45);
    let r2 = r * r;
    let low = r2.mul_add(r.mul_add(C3, C2), r + tail);
    let tmp = (r2 * r2).mul_add(r.mul_add(C5, C4), low);
    if special {
        return special_case(tmp, sbits, ki);
    }
    let scale = f64::from_bits(sbits);
    scale.mul_add(tmp, scale)
}

/// glibc's `specialcase`: 512 ≤ |x| < 1024, where the scale's exponent
/// may have left the normal range; results near overflow, or subnormal
/// (rounded once, not twice).
#[inline(never)]
fn special_case(tmp: f64, sbits: u64, ki: u64) -> f64 {
    if ki & 0x8000_0000 == 0 {
        // k > 0: the scale's exponent may have overflowed by up to 460.
        let scale = f64::from_bits(sbits.wrapping_sub(1009 << 52));
        return f64::from_bits(0x7f00_0000_0000_0000) * scale.mul_add(tmp, scale);
    }
    let scale = f64::from_bits(sbits.wrapping_add(1022 << 52));
    // Not fused here, as glibc's code computes it.
    let product = scale * tmp;
    let mut y = scale + product;
    if y < 1.0 {
        let hi = y + 1.0;
        let lo = (scale - y) + product;
        let lo = ((1.0 - hi) + y) + lo;
        y = (lo + hi) - 1.0;
        if y == 0.0 {
            y = 0.0;
        }
    }
    y * f64::from_bits(0x0010_0000_0000_0000)
}

/// `out[i] = exp((logit(keys[i]) − max) / t)` for every key, where `logit`
/// is [`super::ranking::logit`]: each value [`exp`] of the same f64
/// subtraction and division, eight at a time with AVX-512 where the CPU
/// has it and the kernels may use it ([`crate::model::kernels::isa::Isa`]).
pub(super) fn exp_weights(keys: &[u64], max: f64, t: f64, out: &mut [f64]) {
    exp_weights_on(Isa::active(), keys, max, t, out);
}

/// [`exp_weights`] on `isa` (which the CPU runs): AVX-512 eight at a
/// time, the others one at a time.
fn exp_weights_on(isa: Isa, keys: &[u64], max: f64, t: f64, out: &mut [f64]) {
    assert_eq!(keys.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        assert!(isa.runs_here());
        // SAFETY: the CPU has AVX-512 F and DQ (what `Isa::Avx512` means).
        unsafe { avx512::exp_weights(keys, max, t, out) };
        return;
    }
    for (o, &k) in out.iter_mut().zip(keys) {
        *o = exp((f64::from(super::ranking::logit(k)) - max) / t);
    }
}

/// `out[i] = exp((logits[i] − max) / t)`: [`exp_weights`] over a row of
/// logits in id order instead of ranked keys (the same bits for the same
/// logit).
pub(super) fn exp_logits(logits: &[f32], max: f64, t: f64, out: &mut [f64]) {
    exp_logits_on(Isa::active(), logits, max, t, out);
}

fn exp_logits_on(isa: Isa, logits: &[f32], max: f64, t: f64, out: &mut [f64]) {
    assert_eq!(logits.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        assert!(isa.runs_here());
        // SAFETY: the CPU has AVX-512 F and DQ (what `Isa::Avx512` means).
        unsafe { avx512::exp_logits(logits, max, t, out) };
        return;
    }
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = exp((f64::from(l) - max) / t);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::*;

    /// [`super::exp_weights`], eight keys a step.
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    pub(super) fn exp_weights(keys: &[u64], max: f64, t: f64, out: &mut [f64]) {
        let (max8, t8) = (_mm512_set1_pd(max), _mm512_set1_pd(t));
        let mut chunks = keys.chunks_exact(8);
        let mut outs = out.chunks_exact_mut(8);
        for (k, o) in (&mut chunks).zip(&mut outs) {
            // SAFETY: `k` and `o` hold eight elements each.
            unsafe {
                let k = _mm512_loadu_si512(k.as_ptr().cast());
                let x = _mm512_div_pd(_mm512_sub_pd(logits(k), max8), t8);
                _mm512_storeu_pd(o.as_mut_ptr(), exp8(x));
            }
        }
        for (o, &k) in outs.into_remainder().iter_mut().zip(chunks.remainder()) {
            *o = exp((f64::from(crate::generate::ranking::logit(k)) - max) / t);
        }
    }

    /// [`super::exp_logits`], eight logits a step.
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    pub(super) fn exp_logits(logits: &[f32], max: f64, t: f64, out: &mut [f64]) {
        let (max8, t8) = (_mm512_set1_pd(max), _mm512_set1_pd(t));
        let mut chunks = logits.chunks_exact(8);
        let mut outs = out.chunks_exact_mut(8);
        for (l, o) in (&mut chunks).zip(&mut outs) {
            // SAFETY: `l` and `o` hold eight elements each.
            unsafe {
                let l = _mm512_cvtps_pd(_mm256_loadu_ps(l.as_ptr()));
                let x = _mm512_div_pd(_mm512_sub_pd(l, max8), t8);
                _mm512_storeu_pd(o.as_mut_ptr(), exp8(x));
            }
        }
        for (o, &l) in outs.into_remainder().iter_mut().zip(chunks.remainder()) {
            *o = exp((f64::from(l) - max) / t);
        }
    }

    /// [`super::exp`] of every value, eight at a time (tests).
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    pub(super) fn exp_slice(xs: &[f64], out: &mut [f64]) {
        for (x, o) in xs.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
            // SAFETY: `x` and `o` hold eight elements each.
            unsafe { _mm512_storeu_pd(o.as_mut_ptr(), exp8(_mm512_loadu_pd(x.as_ptr()))) };
        }
    }

    /// The logits of eight keys, widened to f64 (exact): the inverse of
    /// `ranking::key`'s high half, lane for lane.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    fn logits(k: __m512i) -> __m512d {
        // ascending = !(key >> 32); ascending has its top bit set for
        // non-negative logits (clear it), else flip every bit.
        let ascending =
            _mm512_xor_si512(_mm512_srli_epi64::<32>(k), _mm512_set1_epi64(0xffff_ffff));
        let top = _mm512_test_epi64_mask(ascending, _mm512_set1_epi64(0x8000_0000));
        let bits = _mm512_mask_blend_epi64(
            top,
            _mm512_xor_si512(ascending, _mm512_set1_epi64(0xffff_ffff)),
            _mm512_and_si512(ascending, _mm512_set1_epi64(0x7fff_ffff)),
        );
        _mm512_cvtps_pd(_mm512_cvtepi64_epi32(bits).into_ps())
    }

    trait IntoPs {
        fn into_ps(self) -> __m256;
    }
    impl IntoPs for __m256i {
        #[inline(always)]
        fn into_ps(self) -> __m256 {
            // SAFETY: a bit cast between two 256-bit vectors.
            unsafe { std::mem::transmute(self) }
        }
    }

    /// [`super::exp`] of eight values: the main path lane for lane, the
    /// special cases handed to the one-value function.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
    fn exp8(x: __m512d) -> __m512d {
        let bits = _mm512_castpd_si512(x);
        let abstop = _mm512_and_si512(_mm512_srli_epi64::<52>(bits), _mm512_set1_epi64(0x7ff));
        let special = _mm512_cmpge_epu64_mask(
            _mm512_sub_epi64(abstop, _mm512_set1_epi64(i64::from(TOP_TINY))),
            _mm512_set1_epi64(i64::from(TOP_SPAN)),
        );
        let kd = _mm512_fmadd_pd(x, _mm512_set1_pd(INV_LN2_N), _mm512_set1_pd(SHIFT));
        let ki = _mm512_castpd_si512(kd);
        let kd = _mm512_sub_pd(kd, _mm512_set1_pd(SHIFT));
        let r = _mm512_fmadd_pd(
            kd,
            _mm512_set1_pd(NEG_LN2_LO_N),
            _mm512_fmadd_pd(kd, _mm512_set1_pd(NEG_LN2_HI_N), x),
        );
        let idx = _mm512_slli_epi64::<1>(_mm512_and_si512(ki, _mm512_set1_epi64(127)));
        // SAFETY: every index is below 256, inside `TAB`.
        let (tail, scale_bits) = unsafe {
            (
                _mm512_i64gather_pd::<8>(idx, TAB.as_ptr().cast()),
                _mm512_i64gather_epi64::<8>(
                    _mm512_add_epi64(idx, _mm512_set1_epi64(1)),
                    TAB.as_ptr().cast(),
                ),
            )
        };
        let sbits = _mm512_add_epi64(scale_bits, _mm512_slli_epi64::<45>(ki));
        let r2 = _mm512_mul_pd(r, r);
        let low = _mm512_fmadd_pd(
            r2,
            _mm512_fmadd_pd(r, _mm512_set1_pd(C3), _mm512_set1_pd(C2)),
            _mm512_add_pd(r, tail),
        );
        let tmp = _mm512_fmadd_pd(
            _mm512_mul_pd(r2, r2),
            _mm512_fmadd_pd(r, _mm512_set1_pd(C5), _mm512_set1_pd(C4)),
            low,
        );
        let scale = _mm512_castsi512_pd(sbits);
        let y = _mm512_fmadd_pd(scale, tmp, scale);
        if special == 0 {
            return y;
        }
        let mut lanes = [0.0f64; 8];
        let mut xs = [0.0f64; 8];
        // SAFETY: two arrays of eight f64.
        unsafe {
            _mm512_storeu_pd(lanes.as_mut_ptr(), y);
            _mm512_storeu_pd(xs.as_mut_ptr(), x);
        }
        for (i, (l, &x)) in lanes.iter_mut().zip(&xs).enumerate() {
            if special & (1 << i) != 0 {
                *l = super::exp(x);
            }
        }
        // SAFETY: an array of eight f64.
        unsafe { _mm512_loadu_pd(lanes.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::ranking::{key, tests::awkward_logits};
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::{Rng, SeedableRng};

    /// Equal bits, or both NaN (a NaN's payload decides nothing).
    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// The arguments where the algorithm changes course, with their
    /// neighbours: zeros, ±2^-54, ±512, ±1024, the last normal and the
    /// last non-zero results, overflow, infinities, NaN, subnormal inputs,
    /// and the seams of the 128-entry table.
    fn boundaries() -> Vec<f64> {
        let mut xs = vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::MAX,
            f64::MIN,
        ];
        for b in [
            2f64.powi(-54),
            2f64.powi(-53),
            512.0,
            1024.0,
            708.396_418_532_264_1,
            709.782_712_893_384,
            744.440_071_921_381_3,
            745.133_219_101_941_1,
            37.0,
            38.0,
            1.0,
        ] {
            let mut x = b;
            let mut y = b;
            for _ in 0..64 {
                xs.extend([x, -x, y, -y]);
                x = x.next_up();
                y = y.next_down();
            }
        }
        // k · ln 2 / 128 ± a little: r near ±ln 2 / 256, every table entry.
        for k in -1100 * 128 / 7..=1100 * 128 / 7 {
            let x = f64::from(k) * 7.0 * std::f64::consts::LN_2 / 128.0;
            xs.extend([x, x.next_up(), x.next_down()]);
            let half = (f64::from(k) + 0.5) * std::f64::consts::LN_2 / 128.0;
            xs.extend([half, half.next_up(), half.next_down()]);
        }
        xs
    }

    /// `n` arguments: half uniform over the sampler's range `[−1100, 0]`,
    /// a quarter over `[−40, 0]` (the weights that count), a quarter any
    /// bits at all (every sign, exponent and NaN).
    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                match i % 4 {
                    0 | 1 => -1100.0 * u,
                    2 => -40.0 * u,
                    _ => f64::from_bits(rng.next_u64()),
                }
            })
            .collect()
    }

    /// Where `f64::exp` is glibc's FMA variant (x86-64 Linux with glibc,
    /// a CPU with FMA and AVX2), [`exp`] returns its bits on 16 million
    /// arguments and every boundary.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    fn equals_libm_exp_on_millions_of_arguments() {
        if !(std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("avx2"))
        {
            return;
        }
        let mut xs = boundaries();
        xs.extend(random(16 << 20, 1));
        let mut wrong = 0;
        for &x in &xs {
            if !same(exp(x), x.exp()) {
                if wrong < 10 {
                    eprintln!("exp({x:e}) = {:e}, libm {:e}", exp(x), x.exp());
                }
                wrong += 1;
            }
        }
        assert_eq!(wrong, 0, "of {}", xs.len());
    }

    /// The portable body (`mul_add` through libm's `fma` where the build
    /// has no FMA) returns [`exp`]'s bits.
    #[test]
    fn the_portable_body_equals_exp() {
        let mut xs = boundaries();
        xs.extend(random(1 << 18, 2));
        for &x in &xs {
            assert!(same(exp_body(x), exp(x)), "{x:e}");
        }
    }

    /// The eight-lane AVX-512 path returns [`exp`]'s bits, lane for lane,
    /// special lanes mixed in among ordinary ones.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn eight_lanes_equal_one_at_a_time() {
        if !Isa::Avx512.runs_here() {
            return;
        }
        let mut xs = boundaries();
        xs.extend(random(4 << 20, 3));
        xs.truncate(xs.len() / 8 * 8);
        let mut got = vec![0.0; xs.len()];
        // SAFETY: the CPU has AVX-512 F and DQ (checked above).
        unsafe { avx512::exp_slice(&xs, &mut got) };
        for (&x, &g) in xs.iter().zip(&got) {
            assert!(same(g, exp(x)), "{x:e}: {g:e} vs {:e}", exp(x));
        }
    }

    /// `exp_weights` and `exp_logits` on every kernel instruction set return the weights
    /// one value at a time gives, over rows with ties, infinities and NaN,
    /// a ragged tail and temperatures from tiny to large.
    #[test]
    fn weights_equal_one_at_a_time_on_every_isa() {
        for len in [1usize, 7, 8, 9, 500, 4_099] {
            let logits = awkward_logits(len, len as u64);
            let keys: Vec<u64> = logits.iter().enumerate().map(|(i, &x)| key(i, x)).collect();
            for max in [20.0f64, 12.0, f64::INFINITY] {
                for t in [1e-30, 0.05, 0.6, 1.0, 1.7, 1e30] {
                    let want: Vec<f64> = keys
                        .iter()
                        .map(|&k| exp((f64::from(crate::generate::ranking::logit(k)) - max) / t))
                        .collect();
                    for isa in Isa::supported() {
                        let mut got = vec![7.0; keys.len()];
                        exp_weights_on(isa, &keys, max, t, &mut got);
                        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                            assert!(same(g, w), "{isa} {len} {max} {t} #{i}: {g:e} vs {w:e}");
                        }
                        // Keys are built in id order: the same weights.
                        let mut got = vec![7.0; keys.len()];
                        exp_logits_on(isa, &logits, max, t, &mut got);
                        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                            assert!(same(g, w), "{isa} {len} {max} {t} #{i}: {g:e} vs {w:e}");
                        }
                    }
                }
            }
        }
    }
}
