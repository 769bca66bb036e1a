//! A draw decided on the head of the ranking: the tokens whose logits
//! reach a bound ranked alone, the rest of the vocabulary summed into the
//! total in any order, and the total bit for bit the sequential sum in
//! ranking order that [`super::sampling::filtered_distribution`] takes.
//!
//! Why the rest's order cannot change the total. The weights are summed
//! from the top token's `exp(0) = 1`, so after the head the running total
//! `s` is at least 1; say it lies in `[2^e, 2^(e+1))`, where the doubles
//! are the multiples of `u = 2^(e−52)`. If the final total is still below
//! `2^(e+1)`, every running total after the head lies in that binade, and
//! rounding `s + w` to the nearest double is `s + round_u(w)`, `w` rounded
//! to the nearest multiple of `u` — unless `w` lies exactly halfway
//! between two multiples, where the tie goes to the even *total* and so
//! depends on `s`. Without such a tie the total is `s + Σ round_u(w)`,
//! whatever the order: an integer sum in units of `u`, exact in f64 below
//! `2^53`. Both conditions are checked (`with_rest`); where either fails,
//! or the nucleus or the draw is not decided inside the head, or a logit
//! is NaN or the largest is infinite, or top-k is on, [`draw`] answers
//! `None` and the caller ranks the whole row as before.
//!
//! The head is every token with a logit at or above a bound, so it is a
//! prefix of the ranking (ties all in or all out) whatever the bound; the
//! bound only decides how often the head suffices. It is the smallest of
//! [`GAPS`] whose head holds, by a quick unordered sum, the mass the draw
//! needs (top-p, or the uniform when top-p is off) with a margin, or a
//! larger one where the rest of that head would leave its binade.

use super::ranking;
use super::sampling::SamplingParams;
use crate::model::kernels::isa::Isa;

/// Scaled gaps `(max − logit) / T` tried as the head's bound, smallest
/// head first. Steps of 2 up to 16: a SmolLM2 row at T = 0.6 often needs
/// a gap of 8 to 16 for its top-p 0.95 nucleus, and a head of gap 16
/// holds ≈ 20 000 of its 49 152 tokens where gap 10 may do.
const GAPS: [f64; 10] = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 24.0, 32.0];

/// `2^52`: adding and subtracting it rounds a value in `[0, 2^52]` to the
/// nearest integer, ties to even.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// The token of [`super::draw::draw`] (the reference walk's) for `logits`
/// with temperature `t` (clamped as there) and uniform `u`, decided on the
/// head of the ranking; `None` where the head cannot decide it (see the
/// module's docs). `weights`, `keys` and `nucleus` are scratch.
pub(super) fn draw(
    weights: &mut Vec<f64>,
    keys: &mut Vec<u64>,
    nucleus: &mut Vec<f64>,
    logits: &[f32],
    params: &SamplingParams,
    t: f64,
    u: f64,
) -> Option<u32> {
    if params.top_k > 0 {
        return None;
    }
    let (max, nan) = max_and_nan(logits);
    if nan || !max.is_finite() {
        return None;
    }
    let max = f64::from(max);
    weights.resize(logits.len(), 0.0);
    super::exp::exp_logits(logits, max, t, weights);
    let bounds = GAPS.map(|g| (max - g * t) as f32);
    let (all, masses) = masses(logits, weights, &bounds);
    let need = if params.top_p < 1.0 {
        f64::from(params.top_p)
    } else {
        u
    };
    let first = masses.iter().position(|&m| m >= (need + 1e-6) * all)?;
    // A larger head where the rest would carry the total out of the
    // head's binade (or hold a tie).
    let weight = |k: u64| weights[ranking::id(k) as usize];
    let mut total = None;
    for &bound in &bounds[first..] {
        head_keys(Isa::active(), logits, bound, keys);
        if keys.len() > 4_096 {
            let mut spare = Vec::new();
            ranking::radix_sort(keys, &mut spare);
        } else {
            keys.sort_unstable();
        }
        let head: f64 = keys.iter().map(|&k| weight(k)).sum();
        total = with_rest(head, logits, weights, bound);
        if total.is_some() {
            break;
        }
    }
    let total = total?;
    if params.top_p < 1.0 {
        let top_p = f64::from(params.top_p);
        nucleus.clear();
        let mut cumulative = 0.0;
        let mut closed = false;
        for &k in keys.iter() {
            let p = weight(k) / total;
            nucleus.push(p);
            cumulative += p;
            if cumulative >= top_p {
                closed = true;
                break;
            }
        }
        if !closed {
            return None;
        }
        let kept: f64 = nucleus.iter().sum();
        let mut cumulative = 0.0;
        for (i, &p) in nucleus.iter().enumerate() {
            cumulative += p / kept;
            if u < cumulative {
                return Some(ranking::id(keys[i]));
            }
        }
        Some(ranking::id(keys[nucleus.len() - 1]))
    } else {
        let mut cumulative = 0.0;
        for &k in keys.iter() {
            cumulative += weight(k) / total;
            if u < cumulative {
                return Some(ranking::id(k));
            }
        }
        None
    }
}

/// `keys`: the ranking keys of every logit at or above `bound`, in id
/// order.
fn head_keys(isa: Isa, logits: &[f32], bound: f32, keys: &mut Vec<u64>) {
    keys.clear();
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        assert!(isa.runs_here());
        // SAFETY: the CPU has AVX-512 F and DQ (what `Isa::Avx512` means).
        unsafe { head_keys_avx512(logits, bound, keys) };
        return;
    }
    keys.extend(
        logits
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l >= bound)
            .map(|(i, &l)| ranking::key(i, l)),
    );
}

/// [`head_keys`] sixteen logits a step: most steps find none.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
fn head_keys_avx512(logits: &[f32], bound: f32, keys: &mut Vec<u64>) {
    use std::arch::x86_64::*;
    let b = _mm512_set1_ps(bound);
    let mut chunks = logits.chunks_exact(16);
    for (c, l) in (&mut chunks).enumerate() {
        // SAFETY: `l` holds sixteen floats.
        let x = unsafe { _mm512_loadu_ps(l.as_ptr()) };
        let mut at_or_above = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, b);
        while at_or_above != 0 {
            let j = at_or_above.trailing_zeros() as usize;
            keys.push(ranking::key(c * 16 + j, l[j]));
            at_or_above &= at_or_above - 1;
        }
    }
    let done = logits.len() - chunks.remainder().len();
    for (j, &l) in chunks.remainder().iter().enumerate() {
        if l >= bound {
            keys.push(ranking::key(done + j, l));
        }
    }
}

/// The largest logit (`>`; any NaN is reported instead) and whether any
/// is NaN. With no NaN, `>`'s largest and `total_cmp`'s differ at most in
/// the sign of a zero, which gives every logit the same weight.
fn max_and_nan(logits: &[f32]) -> (f32, bool) {
    let mut max = [f32::NEG_INFINITY; 16];
    let mut nan = [false; 16];
    let mut chunks = logits.chunks_exact(16);
    for c in &mut chunks {
        for j in 0..16 {
            nan[j] |= c[j].is_nan();
            max[j] = if c[j] > max[j] { c[j] } else { max[j] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    let mut n = nan.contains(&true);
    for &x in max.iter().chain(chunks.remainder()) {
        n |= x.is_nan();
        m = if x > m { x } else { m };
    }
    (m, n)
}

/// The whole row's weight and the weight at or above each bound, summed
/// in any order (only to pick the head: any order, and so any instruction
/// set, draws the same token).
fn masses<const N: usize>(logits: &[f32], weights: &[f64], bounds: &[f32; N]) -> (f64, [f64; N]) {
    masses_on(Isa::active(), logits, weights, bounds)
}

fn masses_on<const N: usize>(
    isa: Isa,
    logits: &[f32],
    weights: &[f64],
    bounds: &[f32; N],
) -> (f64, [f64; N]) {
    assert_eq!(logits.len(), weights.len(), "masses: a weight per logit");
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        assert!(isa.runs_here());
        // SAFETY: the CPU has AVX-512 F and DQ (what `Isa::Avx512` means).
        return unsafe { masses_avx512(logits, weights, bounds) };
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        assert!(isa.runs_here());
        // SAFETY: the CPU has AVX2 (what `Isa::Avx2` means).
        return unsafe { masses_avx2(logits, weights, bounds) };
    }
    masses_portable(logits, weights, bounds)
}

/// [`masses_avx512`] four logits a step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn masses_avx2<const N: usize>(
    logits: &[f32],
    weights: &[f64],
    bounds: &[f32; N],
) -> (f64, [f64; N]) {
    use std::arch::x86_64::*;
    let mut all = _mm256_setzero_pd();
    let mut acc = [_mm256_setzero_pd(); N];
    let mut b = [_mm256_setzero_pd(); N];
    for (b, &x) in b.iter_mut().zip(bounds) {
        *b = _mm256_set1_pd(f64::from(x));
    }
    let mut ls = logits.chunks_exact(4);
    let mut ws = weights.chunks_exact(4);
    for (l, w) in (&mut ls).zip(&mut ws) {
        // SAFETY: `l` and `w` hold four elements each.
        let (l, w) = unsafe {
            (
                _mm256_cvtps_pd(_mm_loadu_ps(l.as_ptr())),
                _mm256_loadu_pd(w.as_ptr()),
            )
        };
        all = _mm256_add_pd(all, w);
        for (a, &b) in acc.iter_mut().zip(&b) {
            let at_or_above = _mm256_cmp_pd::<_CMP_GE_OQ>(l, b);
            *a = _mm256_add_pd(*a, _mm256_and_pd(at_or_above, w));
        }
    }
    let lanes = |v: __m256d| {
        let mut x = [0.0f64; 4];
        // SAFETY: `x` holds four doubles.
        unsafe { _mm256_storeu_pd(x.as_mut_ptr(), v) };
        x.iter().sum::<f64>()
    };
    let mut total = lanes(all);
    let mut out = [0.0f64; N];
    for (o, &a) in out.iter_mut().zip(&acc) {
        *o = lanes(a);
    }
    for (&l, &w) in ls.remainder().iter().zip(ws.remainder()) {
        total += w;
        for (m, &b) in out.iter_mut().zip(bounds) {
            *m += if l >= b { w } else { 0.0 };
        }
    }
    (total, out)
}

/// [`masses`] eight logits a step, each bound's sum in its own register
/// (compiled for the portable target, the 8 × `N` lane sums of
/// [`masses_portable`] do not fit the registers: it took ≈ 270 µs of a
/// ≈ 430 µs draw over SmolLM2's 49 152 logits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
fn masses_avx512<const N: usize>(
    logits: &[f32],
    weights: &[f64],
    bounds: &[f32; N],
) -> (f64, [f64; N]) {
    use std::arch::x86_64::*;
    let mut all = _mm512_setzero_pd();
    let mut acc = [_mm512_setzero_pd(); N];
    // The bounds as doubles: a float widened to a double is exact, so
    // `l >= b` compares the same either way.
    let mut b = [_mm512_setzero_pd(); N];
    for (b, &x) in b.iter_mut().zip(bounds) {
        *b = _mm512_set1_pd(f64::from(x));
    }
    let mut ls = logits.chunks_exact(8);
    let mut ws = weights.chunks_exact(8);
    for (l, w) in (&mut ls).zip(&mut ws) {
        // SAFETY: `l` and `w` hold eight elements each.
        let (l, w) = unsafe {
            (
                _mm512_cvtps_pd(_mm256_loadu_ps(l.as_ptr())),
                _mm512_loadu_pd(w.as_ptr()),
            )
        };
        all = _mm512_add_pd(all, w);
        for (a, &b) in acc.iter_mut().zip(&b) {
            let at_or_above = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(l, b);
            *a = _mm512_mask_add_pd(*a, at_or_above, *a, w);
        }
    }
    let mut total = _mm512_reduce_add_pd(all);
    let mut out = [0.0f64; N];
    for (o, &a) in out.iter_mut().zip(&acc) {
        *o = _mm512_reduce_add_pd(a);
    }
    for (&l, &w) in ls.remainder().iter().zip(ws.remainder()) {
        total += w;
        for (m, &b) in out.iter_mut().zip(bounds) {
            *m += if l >= b { w } else { 0.0 };
        }
    }
    (total, out)
}

/// [`masses`] in portable code.
fn masses_portable<const N: usize>(
    logits: &[f32],
    weights: &[f64],
    bounds: &[f32; N],
) -> (f64, [f64; N]) {
    let mut all = [0.0f64; 8];
    let mut masses = [[0.0f64; 8]; N];
    let mut ls = logits.chunks_exact(8);
    let mut ws = weights.chunks_exact(8);
    for (l, w) in (&mut ls).zip(&mut ws) {
        for j in 0..8 {
            all[j] += w[j];
            for (m, &b) in masses.iter_mut().zip(bounds) {
                m[j] += if l[j] >= b { w[j] } else { 0.0 };
            }
        }
    }
    let mut total: f64 = all.iter().sum();
    let mut out = masses.map(|m| m.iter().sum::<f64>());
    for (&l, &w) in ls.remainder().iter().zip(ws.remainder()) {
        total += w;
        for (m, &b) in out.iter_mut().zip(bounds) {
            *m += if l >= b { w } else { 0.0 };
        }
    }
    (total, out)
}

/// The sequential total of `head` (the head's sum, at least 1) followed
/// by every weight whose logit is below `bound`, in any order; `None`
/// where the order could matter (the total leaves `head`'s binade, or a
/// weight is a tie in its units).
fn with_rest(head: f64, logits: &[f32], weights: &[f64], bound: f32) -> Option<f64> {
    with_rest_on(Isa::active(), head, logits, weights, bound)
}

fn with_rest_on(isa: Isa, head: f64, logits: &[f32], weights: &[f64], bound: f32) -> Option<f64> {
    debug_assert!(head >= 1.0);
    assert_eq!(logits.len(), weights.len(), "with_rest: a weight per logit");
    let e = ((head.to_bits() >> 52) & 0x7ff) as i64 - 1023;
    // 2^(52 − e), so `head · up` is an integer in [2^52, 2^53).
    let up = f64::from_bits(((1023 + 52 - e) as u64) << 52);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        assert!(isa.runs_here());
        // SAFETY: the CPU has AVX-512 F and DQ (what `Isa::Avx512` means).
        let (units, tie) = unsafe { rest_units_avx512(logits, weights, bound, up) };
        return total_of(head, up, units, tie);
    }
    let mut sum = [0.0f64; 8];
    let mut tie = [false; 8];
    let mut ls = logits.chunks_exact(8);
    let mut ws = weights.chunks_exact(8);
    let mut add = |j: usize, l: f32, w: f64| {
        let v = w * up;
        let m = (v + TWO_52) - TWO_52;
        let rest = l < bound;
        tie[j] |= rest & ((v - m).abs() == 0.5);
        sum[j] += if rest { m } else { 0.0 };
    };
    for (l, w) in (&mut ls).zip(&mut ws) {
        for j in 0..8 {
            add(j, l[j], w[j]);
        }
    }
    for (&l, &w) in ls.remainder().iter().zip(ws.remainder()) {
        add(0, l, w);
    }
    total_of(head, up, sum, tie.contains(&true))
}

/// The total of [`with_rest`] from the head and the rest's lane sums in
/// units of `1 / up`; `None` where a weight was a tie or the total leaves
/// the head's binade. (The lane sums are integers, so neither their
/// grouping nor the number of lanes changes the result.)
fn total_of<const L: usize>(head: f64, up: f64, sum: [f64; L], tie: bool) -> Option<f64> {
    if tie {
        return None;
    }
    // Integers below 2^53 add exactly; from 2^53 on a sum cannot round
    // back below it.
    let units = sum.iter().fold(head * up, |a, &s| a + s);
    (units < 2.0 * TWO_52).then(|| units / up)
}

/// The rest's weights of [`with_rest`] rounded to units of `1 / up`,
/// summed per lane, and whether any was a tie: eight logits a step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512dq")]
fn rest_units_avx512(logits: &[f32], weights: &[f64], bound: f32, up: f64) -> ([f64; 8], bool) {
    use std::arch::x86_64::*;
    let (up8, two52) = (_mm512_set1_pd(up), _mm512_set1_pd(TWO_52));
    let (b, half) = (_mm512_set1_pd(f64::from(bound)), _mm512_set1_pd(0.5));
    let mut sum = _mm512_setzero_pd();
    let mut tie: __mmask8 = 0;
    let mut ls = logits.chunks_exact(8);
    let mut ws = weights.chunks_exact(8);
    for (l, w) in (&mut ls).zip(&mut ws) {
        // SAFETY: `l` and `w` hold eight elements each.
        let (l, w) = unsafe {
            (
                _mm512_cvtps_pd(_mm256_loadu_ps(l.as_ptr())),
                _mm512_loadu_pd(w.as_ptr()),
            )
        };
        // As the portable lanes: `l < bound` compares the same in f64.
        let rest = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(l, b);
        let v = _mm512_mul_pd(w, up8);
        let m = _mm512_sub_pd(_mm512_add_pd(v, two52), two52);
        let off = _mm512_abs_pd(_mm512_sub_pd(v, m));
        tie |= rest & _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(off, half);
        sum = _mm512_mask_add_pd(sum, rest, sum, m);
    }
    let mut lanes = [0.0f64; 8];
    // SAFETY: `lanes` holds eight doubles.
    unsafe { _mm512_storeu_pd(lanes.as_mut_ptr(), sum) };
    for (&l, &w) in ls.remainder().iter().zip(ws.remainder()) {
        let v = w * up;
        let m = (v + TWO_52) - TWO_52;
        if l < bound {
            tie |= u8::from((v - m).abs() == 0.5);
            lanes[0] += m;
        }
    }
    (lanes, tie != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequential(head: f64, rest: &[f64]) -> f64 {
        rest.iter().fold(head, |s, &w| s + w)
    }

    /// `with_rest` with every logit below the bound 0, the same on every
    /// instruction set.
    fn rest_total(head: f64, rest: &[f64]) -> Option<f64> {
        let logits = vec![-1.0f32; rest.len()];
        let total = with_rest_on(Isa::Portable, head, &logits, rest, 0.0);
        for isa in Isa::supported() {
            let got = with_rest_on(isa, head, &logits, rest, 0.0);
            assert_eq!(got.map(f64::to_bits), total.map(f64::to_bits), "{isa:?}");
        }
        total
    }

    /// Where `with_rest` answers, it is the sequential sum, over random
    /// heads and tails of every size; and it answers most of them.
    #[test]
    fn the_rest_in_any_order_is_the_sequential_sum() {
        use rand_chacha::ChaCha8Rng;
        use rand_chacha::rand_core::{Rng, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut answered, mut cases) = (0, 0);
        for _ in 0..2_000 {
            let head = 1.0 + 60.0 * unit();
            let len = (unit() * 300.0) as usize;
            let scale = 10f64.powf(-18.0 * unit());
            let rest: Vec<f64> = (0..len).map(|_| scale * unit() * unit()).collect();
            cases += 1;
            if let Some(t) = rest_total(head, &rest) {
                answered += 1;
                assert_eq!(
                    t.to_bits(),
                    sequential(head, &rest).to_bits(),
                    "{head} {len}"
                );
            }
        }
        assert!(answered * 10 > cases * 8, "{answered} of {cases}");
    }

    /// A weight exactly halfway between two multiples of the total's unit
    /// rounds to the even total, which depends on the order: refused.
    #[test]
    fn a_tie_in_the_rest_is_refused() {
        let head = 1.0 + f64::EPSILON; // odd in units of 2^-52
        let rest = [f64::EPSILON / 2.0];
        assert_ne!(sequential(head, &rest), head + 0.0);
        assert_eq!(rest_total(head, &rest), None);
        // A tie among eight lanes and a remainder, or in the remainder.
        for at in [0, 5, 11] {
            let mut rest = vec![f64::EPSILON / 3.0; 12];
            rest[at] = f64::EPSILON / 2.0;
            assert_eq!(rest_total(head, &rest), None, "{at}");
        }
        // Far from a tie, the same head answers.
        assert_eq!(
            rest_total(head, &[f64::EPSILON / 3.0]),
            Some(sequential(head, &[f64::EPSILON / 3.0]))
        );
    }

    /// A rest that carries the total into the next binade is refused.
    #[test]
    fn a_total_leaving_the_heads_binade_is_refused() {
        let head = 1.5;
        let rest = [0.3 + 1e-17, 0.3, 1.1e-16];
        assert!(sequential(head, &rest) >= 2.0);
        assert_eq!(rest_total(head, &rest), None);
    }

    /// Only weights below the bound count as the rest.
    #[test]
    fn weights_at_or_above_the_bound_are_the_heads() {
        let logits = [0.5f32, -0.5, 0.0, -2.0, 1.0, -3.0, 0.0, 0.25, -1.0];
        let weights = [
            0.25,
            0.125,
            0.5,
            2f64.powi(-10),
            0.75,
            2f64.powi(-20),
            0.5,
            0.0625,
            2f64.powi(-5),
        ];
        let rest: Vec<f64> = logits
            .iter()
            .zip(&weights)
            .filter(|&(&l, _)| l < 0.0)
            .map(|(_, &w)| w)
            .collect();
        for isa in Isa::supported() {
            assert_eq!(
                with_rest_on(isa, 1.0, &logits, &weights, 0.0),
                Some(sequential(1.0, &rest)),
                "{isa:?}"
            );
        }
    }

    /// Every instruction set's masses are the weights at or above each
    /// bound (the order of the sums aside), remainders and NaN included.
    #[test]
    fn masses_agree_on_every_instruction_set() {
        use rand_chacha::ChaCha8Rng;
        use rand_chacha::rand_core::{Rng, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for len in [0, 1, 7, 8, 9, 63, 1_000, 49_153] {
            let mut logits: Vec<f32> = (0..len)
                .map(|_| (rng.next_u64() % 4_000) as f32 / 100.0 - 20.0)
                .collect();
            if len > 9 {
                logits[9] = f32::NAN;
            }
            let weights: Vec<f64> = (0..len)
                .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
                .collect();
            // Bounds on logits that occur, so `>=` meets equality.
            let bounds = [15.0f32, 10.0, 4.25, 0.0, -7.5, -20.0];
            let all: f64 = weights.iter().sum();
            let direct = bounds.map(|b| {
                logits
                    .iter()
                    .zip(&weights)
                    .filter(|&(&l, _)| l >= b)
                    .map(|(_, &w)| w)
                    .sum::<f64>()
            });
            for isa in Isa::supported() {
                let (total, got) = masses_on(isa, &logits, &weights, &bounds);
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * all.max(1.0);
                assert!(close(total, all), "{isa:?} {len}: {total} vs {all}");
                for ((g, d), b) in got.iter().zip(&direct).zip(&bounds) {
                    assert!(close(*g, *d), "{isa:?} {len} bound {b}: {g} vs {d}");
                }
            }
        }
    }

    /// Every instruction set's head is the keys of the logits at or above
    /// the bound, in id order (equal logits, remainders, NaN, infinities).
    #[test]
    fn head_keys_agree_on_every_instruction_set() {
        for len in [0, 1, 15, 16, 17, 500, 4_099] {
            let logits = ranking::tests::awkward_logits(len, 9);
            for bound in [f32::NEG_INFINITY, -12.0, -5.0, 0.0, 2.5, 5.0, f32::INFINITY] {
                let want: Vec<u64> = logits
                    .iter()
                    .enumerate()
                    .filter(|&(_, &l)| l >= bound)
                    .map(|(i, &l)| ranking::key(i, l))
                    .collect();
                for isa in Isa::supported() {
                    let mut got = vec![7];
                    head_keys(isa, &logits, bound, &mut got);
                    assert_eq!(got, want, "{isa:?} {len} {bound}");
                }
            }
        }
    }

    #[test]
    fn the_largest_logit_and_nan() {
        let mut x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        x[37] = 4.0;
        assert_eq!(max_and_nan(&x), (4.0, false));
        x[99] = 5.0;
        assert_eq!(max_and_nan(&x), (5.0, false));
        x[50] = f32::NAN;
        assert!(max_and_nan(&x).1);
        assert_eq!(
            max_and_nan(&[f32::NEG_INFINITY; 3]),
            (f32::NEG_INFINITY, false)
        );
    }
}
