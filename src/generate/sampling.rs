//! Turning logits into a token: greedy, temperature, top-k, top-p, each sample
//! with its own seeded random stream.
//!
//! A sample's stream is ChaCha8 seeded with the request seed and set to stream
//! number = the sample index, so a sample's tokens never depend on which other
//! samples share its batch.
//!
//! A draw is computed from the head of the distribution only (the tokens
//! whose weight can still change the f64 total, [`head_distribution`]) when
//! that gives the same token bit for bit, which is nearly always; from every
//! logit otherwise ([`filtered_distribution`], the reference).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy (argmax, lowest id on ties).
    pub temperature: f32,
    /// Nucleus threshold in `(0, 1]`; `1` disables it.
    pub top_p: f32,
    /// Keep only the `k` most likely tokens; `0` disables it.
    pub top_k: usize,
    /// Seed of the request; each sample derives its own stream from it.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}

/// A temperature or top-p that sampling cannot use. [`check_sampling`] is
/// the one check behind `generate`'s flags, a sweep config's `[sampling]`
/// and a task file's `[sampling]`; each caller names its flag or field from
/// [`SamplingError::param`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SamplingError {
    #[error("{0} is not a finite temperature >= 0 (0 is greedy)")]
    Temperature(f64),
    #[error("{0} is not a top-p in (0, 1] (1 keeps every token)")]
    TopP(f64),
}

impl SamplingError {
    /// `temperature` or `top_p`: the parameter at fault.
    pub fn param(&self) -> &'static str {
        match self {
            SamplingError::Temperature(_) => "temperature",
            SamplingError::TopP(_) => "top_p",
        }
    }
}

/// Checks a temperature (finite, `>= 0`) and a top-p (in `(0, 1]`; NaN
/// fails), whatever their source. `f32` values widen exactly.
pub fn check_sampling(temperature: f64, top_p: f64) -> Result<(), SamplingError> {
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(SamplingError::Temperature(temperature));
    }
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(SamplingError::TopP(top_p));
    }
    Ok(())
}

/// The distribution actually sampled from after temperature, top-k and top-p:
/// `(token id, probability)` sorted by probability descending (ties: lower id
/// first), probabilities renormalised to sum to 1.
pub fn filtered_distribution(logits: &[f32], params: &SamplingParams) -> Vec<(u32, f64)> {
    let t = f64::from(params.temperature.max(f32::MIN_POSITIVE));
    let order = ranked(logits, params.top_k);
    let max = f64::from(logits[order[0] as usize]);
    let mut probs: Vec<(u32, f64)> = order
        .iter()
        .map(|&id| (id, ((f64::from(logits[id as usize]) - max) / t).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= total);
    if params.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cumulative += p.1;
            if cumulative >= f64::from(params.top_p) {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        let total: f64 = probs.iter().map(|p| p.1).sum();
        probs.iter_mut().for_each(|p| p.1 /= total);
    }
    probs
}

/// Scaled gap `(logit − max) / T` at or below which a token is in the
/// *tail* of the distribution: its weight `exp(gap) ≤ exp(−40) ≈ 4.2e-18` is
/// below 2^-53 / 25, less than half an ulp of any total ≥ 1.
const TAIL_GAP: f64 = -40.0;

/// The head of [`filtered_distribution`]: the same `(id, probability)`
/// pairs, bit for bit, computed from the tokens whose scaled gap is above
/// [`TAIL_GAP`] only, without an `exp` or a sort over the rest of the
/// vocabulary.
///
/// Why it is exact. The gap is monotone in the logit, so the head is a prefix
/// of the full ranking (ties fall on the same side). The full total is summed
/// in ranking order from `exp(0) = 1`, so when the tail's terms are added the
/// partial sum is already ≥ 1 and each term is below half its ulp: none of
/// them changes it, and the head's total is the full total. Each head
/// probability (`weight / total`), the top-p cut (a cumulative sum from the
/// front, when it stops inside the head) and the renormalised nucleus are
/// then the same operations on the same values.
///
/// `None` where the head cannot stand for the full computation: a NaN or
/// infinite logit, a `top_k` that truncates the ranking, or a top-p cut that
/// the head does not reach.
fn head_distribution(logits: &[f32], params: &SamplingParams) -> Option<Head> {
    if params.top_k > 0 && params.top_k < logits.len() {
        return None;
    }
    let mut max = *logits.first()?;
    for &x in logits {
        if !x.is_finite() {
            return None;
        }
        if x.total_cmp(&max).is_gt() {
            max = x;
        }
    }
    // The same expressions as filtered_distribution, value for value.
    let t = f64::from(params.temperature.max(f32::MIN_POSITIVE));
    let max = f64::from(max);
    let gap = |x: f32| (f64::from(x) - max) / t;
    let mut keys: Vec<u64> = logits
        .iter()
        .enumerate()
        .filter(|&(_, &x)| gap(x) > TAIL_GAP)
        .map(|(id, &x)| rank_key(id, x))
        .collect();
    // Kept in id order, so the radix sort breaks ties by id as `ranked`
    // does; unique keys, so a comparison sort gives the same order.
    if keys.len() > 4096 {
        radix_sort_by_high_half(&mut keys);
    } else {
        keys.sort_unstable();
    }
    let whole = keys.len() == logits.len();
    let mut probs: Vec<(u32, f64)> = keys
        .iter()
        .map(|&k| (k as u32, gap(logits[k as u32 as usize]).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= total);
    if params.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut keep = None;
        for (i, p) in probs.iter().enumerate() {
            cumulative += p.1;
            if cumulative >= f64::from(params.top_p) {
                keep = Some(i + 1);
                break;
            }
        }
        let keep = match keep {
            Some(keep) => keep,
            None if whole => probs.len(),
            None => return None,
        };
        probs.truncate(keep);
        let total: f64 = probs.iter().map(|p| p.1).sum();
        probs.iter_mut().for_each(|p| p.1 /= total);
        return Some(Head {
            dist: probs,
            complete: true,
        });
    }
    Some(Head {
        dist: probs,
        complete: whole,
    })
}

/// What [`head_distribution`] returns.
struct Head {
    /// A prefix of [`filtered_distribution`], bit for bit.
    dist: Vec<(u32, f64)>,
    /// Whether the prefix is the whole filtered distribution (a top-p
    /// nucleus inside the head, or a head that is the whole vocabulary).
    complete: bool,
}

/// The token a uniform draw `u` in `[0, 1)` picks from `dist`: the first whose
/// cumulative probability exceeds `u`; `None` past the end.
fn draw(dist: &[(u32, f64)], u: f64) -> Option<u32> {
    let mut cumulative = 0.0;
    for &(id, p) in dist {
        cumulative += p;
        if u < cumulative {
            return Some(id);
        }
    }
    None
}

/// The token `u` picks from [`filtered_distribution`], the last one when the
/// cumulative sum never exceeds `u` (rounding). From the head alone
/// ([`head_distribution`]) when it decides the draw, which is nearly always
/// (only a `u` within about 1e-11 of 1 can pass the head of a 49k-token
/// vocabulary); from the full distribution otherwise. Either way the same
/// token.
fn pick(logits: &[f32], params: &SamplingParams, u: f64) -> u32 {
    if let Some(head) = head_distribution(logits, params) {
        if let Some(id) = draw(&head.dist, u) {
            return id;
        }
        if head.complete {
            return head.dist[head.dist.len() - 1].0;
        }
    }
    pick_full(logits, params, u)
}

/// [`pick`] over the full distribution: every logit's `exp`, the whole
/// vocabulary ranked.
fn pick_full(logits: &[f32], params: &SamplingParams, u: f64) -> u32 {
    let dist = filtered_distribution(logits, params);
    draw(&dist, u).unwrap_or(dist[dist.len() - 1].0)
}

/// Token ids by logit descending (`f32::total_cmp`), ties by id ascending;
/// only the first `top_k` when `top_k > 0`.
///
/// Sorts packed `u64` keys ([`rank_key`]) instead of comparing through the
/// logits: the same order as a comparison sort, several times faster over a
/// 50k–150k vocabulary.
fn ranked(logits: &[f32], top_k: usize) -> Vec<u32> {
    let mut keys: Vec<u64> = logits
        .iter()
        .enumerate()
        .map(|(id, &x)| rank_key(id, x))
        .collect();
    if top_k > 0 && top_k < keys.len() {
        keys.select_nth_unstable(top_k - 1);
        keys.truncate(top_k);
        keys.sort_unstable();
    } else {
        radix_sort_by_high_half(&mut keys);
    }
    keys.into_iter().map(|k| k as u32).collect()
}

/// The sort key of token `id` with logit `x`: order-preserving logit bits,
/// inverted, above the id, so that ascending keys are logits descending
/// (`f32::total_cmp`), ties by id ascending. Keys are unique.
fn rank_key(id: usize, x: f32) -> u64 {
    let bits = x.to_bits();
    // Ascending in total_cmp order: flip negatives, set the sign of
    // non-negatives.
    let ascending = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(!ascending) << 32) | id as u64
}

/// Sorts `keys` by their high 32 bits with a stable LSD radix sort (digits
/// of 11, 11 and 10 bits). `ranked` and `head_distribution` build the keys
/// in ascending id order (the low 32 bits), so stability breaks ties by id:
/// the order of `sort_unstable` on the whole `u64`, in three linear passes
/// instead of a comparison sort. Over SmolLM2's 49k vocabulary that took
/// sampling 16 rows (R1 settings, one thread) from 24–29 ms to 19–23 ms,
/// when every logit was ranked and its f64 `exp` taken; now only the head's
/// are ([`head_distribution`]).
fn radix_sort_by_high_half(keys: &mut Vec<u64>) {
    debug_assert!(keys.windows(2).all(|w| (w[0] as u32) < (w[1] as u32)));
    let mut out = vec![0u64; keys.len()];
    for (shift, bits) in [(32, 11), (43, 11), (54, 10)] {
        let digit = |k: u64| ((k >> shift) & ((1 << bits) - 1)) as usize;
        let mut start = [0usize; 1 << 11];
        for &k in keys.iter() {
            start[digit(k)] += 1;
        }
        if start.contains(&keys.len()) {
            // One bucket holds every key: this pass would not move any.
            continue;
        }
        let mut sum = 0;
        for c in start.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        for &k in keys.iter() {
            let d = digit(k);
            out[start[d]] = k;
            start[d] += 1;
        }
        std::mem::swap(keys, &mut out);
    }
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// One sample's sampler: its parameters and its own random stream.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// The sampler of sample number `sample` of a request.
    pub fn new(params: SamplingParams, sample: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        rng.set_stream(sample);
        Self { params, rng }
    }

    /// Pick the next token from `logits` (`[vocab]`).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let u = self.uniform();
        pick(logits, &self.params, u)
    }

    /// A uniform draw in `[0, 1)` with 53 bits of precision.
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_equals_a_comparison_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (len, top_k) in [
            (500, 0),
            (500, 1),
            (500, 3),
            (500, 40),
            (500, 1000),
            (49_152, 0),
        ] {
            // Coarse values force ties; signed zeros, infinities and NaN too.
            let mut logits: Vec<f32> = (0..len)
                .map(|_| (rng.next_u64() % 41) as f32 / 4.0 - 5.0)
                .collect();
            if len > 500 {
                // Realistic logits as well: continuous values, both signs.
                logits
                    .iter_mut()
                    .step_by(3)
                    .for_each(|x| *x = (rng.next_u64() % 1_000_000) as f32 * 3e-5 - 12.0);
            }
            logits.extend([
                0.0,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                -f32::NAN,
            ]);
            let mut want: Vec<u32> = (0..logits.len() as u32).collect();
            want.sort_by(|&a, &b| {
                logits[b as usize]
                    .total_cmp(&logits[a as usize])
                    .then(a.cmp(&b))
            });
            if top_k > 0 {
                want.truncate(top_k);
            }
            assert_eq!(ranked(&logits, top_k), want, "top_k {top_k}");
        }
    }

    fn params(temperature: f32, top_p: f32, top_k: usize) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            top_k,
            seed: 7,
        }
    }

    #[test]
    fn temperature_one_is_softmax() {
        let logits = [0.0f32, (2.0f32).ln(), (5.0f32).ln()];
        let d = filtered_distribution(&logits, &params(1.0, 1.0, 0));
        let expect = [(2, 5.0 / 8.0), (1, 2.0 / 8.0), (0, 1.0 / 8.0)];
        for ((id, p), (eid, ep)) in d.iter().zip(expect) {
            assert_eq!(*id, eid);
            assert!((p - ep).abs() < 1e-7, "{p} vs {ep}");
        }
    }

    #[test]
    fn temperature_sharpens() {
        // p ∝ exp(l / T): with T = 0.5, weights 1, 4, 25.
        let logits = [0.0f32, (2.0f32).ln(), (5.0f32).ln()];
        let d = filtered_distribution(&logits, &params(0.5, 1.0, 0));
        assert!((d[0].1 - 25.0 / 30.0).abs() < 1e-6);
        assert!((d[2].1 - 1.0 / 30.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_keeps_the_k_most_likely() {
        let logits = [1.0f32, 3.0, 2.0, 0.0];
        let d = filtered_distribution(&logits, &params(1.0, 1.0, 2));
        let ids: Vec<u32> = d.iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![1, 2]);
        let e = (1.0f64).exp();
        assert!((d[0].1 - e / (e + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn top_p_keeps_the_smallest_nucleus() {
        // probabilities 0.5, 0.3, 0.2: p = 0.7 needs the first two (0.8 ≥ 0.7).
        let logits = [(0.5f32).ln(), (0.3f32).ln(), (0.2f32).ln()];
        let d = filtered_distribution(&logits, &params(1.0, 0.7, 0));
        assert_eq!(d.len(), 2);
        assert!((d[0].1 - 0.5 / 0.8).abs() < 1e-6);
        // p = 0.5 exactly is reached by the first token alone.
        let d = filtered_distribution(&logits, &params(1.0, 0.5, 0));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn draws_follow_the_distribution() {
        let logits = [(0.5f32).ln(), (0.3f32).ln(), (0.2f32).ln()];
        let mut s = Sampler::new(params(1.0, 1.0, 0), 0);
        let n = 20_000;
        let mut counts = [0usize; 3];
        for _ in 0..n {
            counts[s.sample(&logits) as usize] += 1;
        }
        for (c, p) in counts.iter().zip([0.5, 0.3, 0.2]) {
            let f = *c as f64 / n as f64;
            // 5 standard errors of a binomial proportion.
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((f - p).abs() < 5.0 * se, "frequency {f} vs {p}");
        }
    }

    #[test]
    fn same_seed_same_tokens_and_streams_differ() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |sample| {
            let mut s = Sampler::new(params(1.0, 0.95, 20), sample);
            (0..64).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    /// Logits of the kinds the head must get right: realistic spreads with
    /// a few peaks, coarse values with many ties, one vocabulary-wide tie,
    /// one dominant token, gaps placed on and around the tail cut, and
    /// ladders whose weights straddle half an ulp.
    fn logit_cases(rng: &mut ChaCha8Rng, n: usize, t: f32) -> Vec<(&'static str, Vec<f32>)> {
        let mut uniform = || (rng.next_u64() >> 11) as f32 / (1u64 << 53) as f32;
        let realistic: Vec<f32> = (0..n)
            .map(|i| {
                let bulk = (uniform() + uniform() + uniform() - 1.5) * 6.0;
                if i % 997 == 3 {
                    bulk + 18.0 * uniform() + 6.0
                } else {
                    bulk
                }
            })
            .collect();
        let coarse: Vec<f32> = (0..n)
            .map(|_| (uniform() * 41.0).floor() / 4.0 - 5.0)
            .collect();
        let dominant: Vec<f32> = (0..n)
            .map(|i| if i == n / 2 { 100.0 } else { uniform() })
            .collect();
        // Gaps of exactly TAIL_GAP, just above and just below it.
        let cut = (TAIL_GAP * f64::from(t)) as f32;
        let on_cut: Vec<f32> = (0..n)
            .map(|i| match i % 4 {
                0 => 0.0,
                1 => cut,
                2 => cut.next_up(),
                _ => cut.next_down(),
            })
            .collect();
        // Weights from 1 down to far below 2^-53, in steps of one nat.
        let ladder: Vec<f32> = (0..n).map(|i| -((i % 60) as f32) * t).collect();
        let mut cases = vec![
            ("realistic", realistic),
            ("coarse ties", coarse),
            ("one tie", vec![0.25; n]),
            ("dominant", dominant),
            ("on the cut", on_cut),
            ("ladder", ladder),
        ];
        // A few logits that make the head stand aside.
        for (name, bad) in [
            ("nan", f32::NAN),
            ("+inf", f32::INFINITY),
            ("-inf", f32::NEG_INFINITY),
        ] {
            let mut l = cases[0].1.clone();
            l[n / 3] = bad;
            cases.push((name, l));
        }
        cases
    }

    /// Draws to try on a distribution: random ones, the extremes of `[0, 1)`
    /// and each cumulative boundary of `dist`'s first and last 20 tokens with
    /// its neighbours on either side.
    fn draws(rng: &mut ChaCha8Rng, dist: &[(u32, f64)]) -> Vec<f64> {
        let mut u: Vec<f64> = (0..64)
            .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
            .collect();
        u.extend([0.0, 1.0f64.next_down(), 0.5, 0.95, 0.999_999_999_999]);
        let mut cumulative = 0.0;
        for (i, p) in dist.iter().enumerate() {
            cumulative += p.1;
            if i < 20 || i + 20 >= dist.len() {
                u.extend([cumulative.next_down(), cumulative, cumulative.next_up()]);
            }
        }
        u.retain(|u| (0.0..1.0).contains(u));
        u
    }

    #[test]
    fn tail_weights_are_below_half_an_ulp_of_one() {
        // Below 2^-53 (half an ulp of 1) with a wide margin, so that no
        // rounding of exp can bring a tail weight up to it.
        assert!(TAIL_GAP.exp() < 2f64.powi(-53) / 16.0);
    }

    #[test]
    fn the_head_is_the_full_distribution_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut heads = 0;
        for n in [2, 7, 1000, 49_152] {
            for t in [0.05f32, 0.6, 1.0, 3.0] {
                for top_p in [1.0f32, 0.95, 0.5, 0.1] {
                    for top_k in [0, 5, n, n + 3] {
                        for (name, logits) in logit_cases(&mut rng, n, t) {
                            let p = params(t, top_p, top_k);
                            let full = filtered_distribution(&logits, &p);
                            let Some(head) = head_distribution(&logits, &p) else {
                                continue;
                            };
                            heads += 1;
                            let why = format!("{name}: n {n} T {t} top-p {top_p} top-k {top_k}");
                            assert!(head.dist.len() <= full.len(), "{why}");
                            if head.complete {
                                assert_eq!(head.dist.len(), full.len(), "{why}");
                            }
                            for (h, f) in head.dist.iter().zip(&full) {
                                assert_eq!((h.0, h.1.to_bits()), (f.0, f.1.to_bits()), "{why}");
                            }
                        }
                    }
                }
            }
        }
        assert!(heads > 1000, "the head decided only {heads} cases");
    }

    #[test]
    fn pick_equals_the_full_pick_on_every_draw() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let (mut from_head, mut fell_back) = (0usize, 0usize);
        for n in [2, 7, 1000, 49_152] {
            for t in [0.05f32, 0.6, 1.0, 3.0] {
                for top_p in [1.0f32, 0.95, 0.5] {
                    for top_k in [0, 5, n + 3] {
                        for (name, logits) in logit_cases(&mut rng, n, t) {
                            let p = params(t, top_p, top_k);
                            let full = filtered_distribution(&logits, &p);
                            let head = head_distribution(&logits, &p);
                            for u in draws(&mut rng, &full) {
                                // pick_full's result, from the distribution computed once.
                                let want = draw(&full, u).unwrap_or(full[full.len() - 1].0);
                                assert_eq!(
                                    pick(&logits, &p, u),
                                    want,
                                    "{name}: n {n} T {t} top-p {top_p} top-k {top_k} u {u:e}"
                                );
                                match &head {
                                    Some(h) if h.complete || draw(&h.dist, u).is_some() => {
                                        from_head += 1
                                    }
                                    _ => fell_back += 1,
                                }
                            }
                        }
                    }
                }
            }
        }
        // Both paths were exercised: the head decided most draws, and the
        // draws past an incomplete head went to the full distribution.
        assert!(
            from_head > 10 * fell_back,
            "{from_head} from the head, {fell_back} full"
        );
        assert!(fell_back > 0);
    }

    #[test]
    fn a_draw_past_the_head_falls_back_to_the_full_distribution() {
        // 49 152 tokens: one at 0 and the rest 45 nats below at T = 1, so the
        // head is the first token alone (probability 1 - 49151 e^-45 rounds
        // to just below 1) and the tail holds every other token.
        let mut logits = vec![-45.0f32; 49_152];
        logits[7] = 0.0;
        let p = params(1.0, 1.0, 0);
        let head = head_distribution(&logits, &p).expect("finite logits");
        assert_eq!(head.dist.len(), 1);
        assert!(!head.complete);
        let full = filtered_distribution(&logits, &p);
        let past = 1.0f64.next_down();
        assert_eq!(draw(&head.dist, past), None);
        assert_eq!(
            pick(&logits, &p, past),
            draw(&full, past).unwrap_or(full[full.len() - 1].0)
        );
        assert_eq!(pick(&logits, &p, 0.5), 7);
    }

    #[test]
    fn the_head_of_realistic_logits_is_short() {
        // The demo's settings on logits shaped like a language model's: the
        // head decides, from a small part of the vocabulary.
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let logits = logit_cases(&mut rng, 49_152, 0.6).swap_remove(0).1;
        let head = head_distribution(&logits, &params(0.6, 0.95, 0)).expect("decides");
        assert!(head.complete);
        assert!(head.dist.len() < 49_152 / 10, "{} tokens", head.dist.len());
    }

    #[test]
    fn the_sampler_draws_what_the_full_pick_draws() {
        // Token by token over a stream, at each seed: the sampler against
        // the same stream drawn through pick_full.
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        for seed in 0..8u64 {
            for (t, top_p, top_k) in [
                (0.6f32, 0.95f32, 0),
                (1.0, 1.0, 0),
                (0.3, 0.5, 40),
                (2.0, 0.9, 0),
            ] {
                let cases = logit_cases(&mut rng, 4096, t);
                let p = SamplingParams {
                    temperature: t,
                    top_p,
                    top_k,
                    seed,
                };
                let (mut fast, mut reference) = (Sampler::new(p, 3), Sampler::new(p, 3));
                for i in 0..200 {
                    let logits = &cases[i % cases.len()].1;
                    let want = pick_full(logits, &p, reference.uniform());
                    assert_eq!(fast.sample(logits), want, "seed {seed} step {i}");
                }
            }
        }
    }

    #[test]
    fn greedy_takes_the_lowest_id_on_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        let mut s = Sampler::new(params(0.0, 1.0, 0), 0);
        assert_eq!(s.sample(&[0.0, 5.0, 1.0]), 1);
    }
}
