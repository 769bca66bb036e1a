//! A row of logits ranked for sampling: token ids by logit descending
//! (`f32::total_cmp`), ties by id ascending, as packed `u64` keys.
//!
//! A key is the logit's order-preserving bits, inverted, above the id, so
//! sorting keys ascending ranks the row and each key carries both its id
//! ([`id`]) and its logit ([`logit`]); sorting keys instead of comparing
//! through the logits is several times faster over a 50k–150k vocabulary,
//! which every sampled token of every sequence pays. The full ranking is a stable LSD
//! radix sort on the keys' high halves; split into chunks
//! ([`rank_into`]'s `split`) it runs on rayon's pool and gives the same
//! order, because a stable radix pass scattered chunk by chunk from
//! per-chunk offsets moves every key where the one-thread pass does.

use rayon::prelude::*;

/// Radix digits over a key's high 32 bits: (shift, bits), least significant
/// first.
const PASSES: [(u32, u32); 3] = [(32, 11), (43, 11), (54, 10)];
const BUCKETS: usize = 1 << 11;

/// The key of token `id` with logit `x`.
#[inline]
pub(in crate::generate) fn key(id: usize, x: f32) -> u64 {
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

/// The token id of a key.
#[inline]
pub(super) fn id(key: u64) -> u32 {
    key as u32
}

/// The logit of a key, bit for bit the one [`key`] packed.
#[inline]
pub(in crate::generate) fn logit(key: u64) -> f32 {
    let ascending = !((key >> 32) as u32);
    f32::from_bits(if ascending >> 31 == 1 {
        ascending & 0x7FFF_FFFF
    } else {
        !ascending
    })
}

/// Token ids by logit descending (`f32::total_cmp`), ties by id ascending;
/// only the first `top_k` when `top_k > 0`.
pub(super) fn ranked(logits: &[f32], top_k: usize) -> Vec<u32> {
    let (mut keys, mut spare) = (Vec::new(), Vec::new());
    rank_into(logits, top_k, 1, &mut keys, &mut spare);
    keys.into_iter().map(id).collect()
}

/// Fills `keys` with the ranked keys of `logits` ([`ranked`]'s order and
/// length); `spare` is scratch. With `split > 1` and no top-k the keys are
/// built and radix-sorted in `split` chunks on rayon's pool: the same keys
/// in the same order.
///
/// With `top_k > 0` the `top_k` smallest keys are selected and sorted (a
/// comparison sort on the whole `u64`, whose order is the radix sort's).
pub(super) fn rank_into(
    logits: &[f32],
    top_k: usize,
    split: usize,
    keys: &mut Vec<u64>,
    spare: &mut Vec<u64>,
) {
    let n = logits.len();
    keys.clear();
    let chunk = n.div_ceil(split.max(1)).max(1);
    if split > 1 {
        keys.resize(n, 0);
        keys.par_chunks_mut(chunk)
            .zip(logits.par_chunks(chunk))
            .enumerate()
            .for_each(|(c, (k, l))| {
                for (i, (k, &x)) in k.iter_mut().zip(l).enumerate() {
                    *k = key(c * chunk + i, x);
                }
            });
    } else {
        keys.extend(logits.iter().enumerate().map(|(i, &x)| key(i, x)));
    }
    if top_k > 0 && top_k < n {
        keys.select_nth_unstable(top_k - 1);
        keys.truncate(top_k);
        keys.sort_unstable();
    } else if split > 1 {
        radix_sort_split(keys, spare, chunk);
    } else {
        radix_sort(keys, spare);
    }
}

#[inline]
fn digit(k: u64, (shift, bits): (u32, u32)) -> usize {
    ((k >> shift) & ((1 << bits) - 1)) as usize
}

/// Sorts `keys` by their high 32 bits with a stable LSD radix sort (digits
/// of 11, 11 and 10 bits). [`rank_into`] builds the keys in ascending id
/// order (the low 32 bits), so stability breaks ties by id: the order of
/// `sort_unstable` on the whole `u64`, in linear passes instead of a
/// comparison sort. The three digits' counts are taken in one pass (they
/// do not depend on the order), and a pass whose digit is the same in
/// every key is skipped (it would move none).
pub(super) fn radix_sort(keys: &mut Vec<u64>, spare: &mut Vec<u64>) {
    debug_assert!(keys.windows(2).all(|w| id(w[0]) < id(w[1])));
    let n = keys.len();
    let mut counts = [[0u32; BUCKETS]; 3];
    for &k in keys.iter() {
        for (c, pass) in counts.iter_mut().zip(PASSES) {
            c[digit(k, pass)] += 1;
        }
    }
    spare.resize(n, 0);
    for (c, pass) in counts.iter().zip(PASSES) {
        if c.contains(&(n as u32)) {
            continue;
        }
        let mut start = [0usize; BUCKETS];
        let mut sum = 0;
        for (s, &c) in start.iter_mut().zip(c) {
            (*s, sum) = (sum, sum + c as usize);
        }
        for &k in keys.iter() {
            let d = digit(k, pass);
            spare[start[d]] = k;
            start[d] += 1;
        }
        std::mem::swap(keys, spare);
    }
}

/// `*mut u64` shared by the chunks of one scatter, which write disjoint
/// positions.
struct Scatter(*mut u64);
// SAFETY: each chunk writes only the positions its offsets give it, and
// no two chunks' ranges overlap (see `radix_sort_split`).
unsafe impl Sync for Scatter {}

/// [`radix_sort`] in chunks of `chunk` keys on rayon's pool. Each pass
/// counts every chunk's digits, gives chunk `c` the positions of digit `d`
/// after all smaller digits and after digit `d` of chunks before `c`, and
/// scatters the chunks in parallel: exactly the positions the one-thread
/// pass gives each key.
fn radix_sort_split(keys: &mut Vec<u64>, spare: &mut Vec<u64>, chunk: usize) {
    let n = keys.len();
    spare.resize(n, 0);
    for pass in PASSES {
        let counts: Vec<[u32; BUCKETS]> = keys
            .par_chunks(chunk)
            .map(|c| {
                let mut h = [0u32; BUCKETS];
                for &k in c {
                    h[digit(k, pass)] += 1;
                }
                h
            })
            .collect();
        let mut starts = vec![[0usize; BUCKETS]; counts.len()];
        let (mut sum, mut full) = (0, false);
        for d in 0..BUCKETS {
            let before = sum;
            for (s, c) in starts.iter_mut().zip(&counts) {
                s[d] = sum;
                sum += c[d] as usize;
            }
            full |= sum - before == n;
        }
        if full {
            // One bucket holds every key: this pass would not move any.
            continue;
        }
        let out = Scatter(spare.as_mut_ptr());
        keys.par_chunks(chunk)
            .zip(starts.par_iter_mut())
            .for_each(|(c, start)| {
                let out = &out;
                for &k in c {
                    let d = digit(k, pass);
                    debug_assert!(start[d] < n);
                    // SAFETY: `start[d]` runs over this chunk's own range
                    // of digit `d` (its count, after every smaller digit
                    // and after earlier chunks), inside `0..n`.
                    unsafe { *out.0.add(start[d]) = k };
                    start[d] += 1;
                }
            });
        std::mem::swap(keys, spare);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::{Rng, SeedableRng};

    /// Coarse values force ties; signed zeros, infinities and NaN too;
    /// above 500 a third of them continuous, both signs.
    pub(in crate::generate) fn awkward_logits(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut logits: Vec<f32> = (0..len)
            .map(|_| (rng.next_u64() % 41) as f32 / 4.0 - 5.0)
            .collect();
        if len > 500 {
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
        logits
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool")
    }

    #[test]
    fn ranked_equals_a_comparison_sort() {
        for (len, top_k) in [
            (500, 0),
            (500, 1),
            (500, 3),
            (500, 40),
            (500, 1000),
            (49_152, 0),
        ] {
            let logits = awkward_logits(len, 5);
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

    /// Split in 2 to 7 chunks on 1, 2 and 4 threads, the ranking is the
    /// one-thread ranking, key for key, including a row whose keys all
    /// share their top digit (a skipped pass) and rows shorter than the
    /// chunk count.
    #[test]
    fn split_ranking_equals_the_one_thread_ranking() {
        let mut rows: Vec<Vec<f32>> = [1usize, 3, 500, 4_099, 49_152]
            .iter()
            .map(|&len| awkward_logits(len, len as u64))
            .collect();
        rows.push((0..20_000).map(|i| 1.0 + (i % 977) as f32 * 1e-4).collect());
        rows.push(vec![2.5; 10_000]);
        for logits in &rows {
            let (mut want, mut spare) = (Vec::new(), Vec::new());
            rank_into(logits, 0, 1, &mut want, &mut spare);
            for threads in [1, 2, 4] {
                for split in 2..8 {
                    let (mut got, mut spare) = (vec![7; 3], Vec::new());
                    pool(threads).install(|| rank_into(logits, 0, split, &mut got, &mut spare));
                    assert!(
                        got == want,
                        "{} logits, {threads} threads, {split} chunks",
                        logits.len()
                    );
                }
            }
        }
    }

    #[test]
    fn a_key_gives_back_its_id_and_logit_bits() {
        for (i, &x) in awkward_logits(600, 9).iter().enumerate() {
            let k = key(i, x);
            assert_eq!(id(k), i as u32);
            assert_eq!(logit(k).to_bits(), x.to_bits(), "{x}");
        }
    }
}
