//! A port of CPython's `random.Random` (MT19937) for the parts simple-evals
//! uses: seeding from a non-negative int, `random()`, `getrandbits(k ≤ 32)`,
//! `_randbelow` and `sample(range(n), k)`.
//!
//! Written from CPython's `Modules/_randommodule.c` and `Lib/random.py`
//! (`docs/data-formats.md` §2.2): `seed(n)` splits `n` into 32-bit little-endian words
//! (`[0]` for zero) and runs `init_by_array`; `_randbelow(n)` draws
//! `getrandbits(n.bit_length())` until the value is below `n`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The generator state of one `random.Random` instance.
#[derive(Debug, Clone)]
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        let key: &[u32] = if high == 0 { &[low] } else { &[low, high] };
        let mut rng = Self {
            mt: [0; N],
            index: N,
        };
        rng.init_by_array(key);
        rng
    }

    fn init_genrand(&mut self, seed: u32) {
        self.mt[0] = seed;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
        }
        self.mt[0] = 0x8000_0000;
    }

    fn twist(&mut self) {
        for k in 0..N {
            let y = (self.mt[k] & UPPER_MASK) | (self.mt[(k + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// The next tempered 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `random()`: a float in [0, 1) with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = u64::from(self.next_u32() >> 5);
        let b = u64::from(self.next_u32() >> 6);
        ((a << 26) + b) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `getrandbits(k)` for `1 ≤ k ≤ 32`.
    ///
    /// # Panics
    /// If `k` is 0 or above 32 (a programming error, never user input).
    pub fn getrandbits(&mut self, k: u32) -> u32 {
        assert!(
            (1..=32).contains(&k),
            "getrandbits({k}) is only ported for 1..=32"
        );
        self.next_u32() >> (32 - k)
    }

    /// `_randbelow(n)` for `n ≥ 1`: uniform in `0..n` by rejection.
    pub fn randbelow(&mut self, n: u32) -> u32 {
        assert!(n >= 1, "randbelow(0)");
        let k = u32::BITS - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `sample(range(n), k)` for `k ≤ n ≤ 21`, the pool branch of Python's
    /// `sample` (used whenever `n` is at most its set-size threshold of 21,
    /// which holds for all `k ≤ 5` and every `n ≤ 21`).
    pub fn sample_range(&mut self, n: usize, k: usize) -> Vec<usize> {
        assert!(
            k <= n && n <= 21,
            "sample_range({n}, {k}) is only ported for k <= n <= 21"
        );
        let mut pool: Vec<usize> = (0..n).collect();
        let mut result = Vec::with_capacity(k);
        for i in 0..k {
            let j = self.randbelow((n - i) as u32) as usize;
            result.push(pool[j]);
            pool[j] = pool[n - i - 1];
        }
        result
    }

    /// `sample(range(4), 4)`: one simple-evals choice permutation.
    pub fn permutation4(&mut self) -> [usize; 4] {
        let p = self.sample_range(4, 4);
        [p[0], p[1], p[2], p[3]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden values printed by CPython 3.11: `random.Random(s).random()`,
    // `getrandbits(32)` and `sample(range(10), 5)`.
    #[test]
    fn matches_cpython_random() {
        // (seed, random(), getrandbits(32), sample(range(10), 5), sample(range(4), 4))
        type Golden = (u64, f64, u32, [usize; 5], [usize; 4]);
        let golden: [Golden; 5] = [
            (
                0,
                0.8444218515250481,
                3255389356,
                [6, 0, 4, 7, 3],
                [3, 1, 2, 0],
            ),
            (
                42,
                0.6394267984578837,
                107420369,
                [4, 3, 8, 1, 5],
                [0, 2, 3, 1],
            ),
            (
                1,
                0.13436424411240122,
                3639700191,
                [1, 4, 9, 3, 6],
                [3, 2, 1, 0],
            ),
            (
                4294967301,
                0.15727238718789782,
                1213270837,
                [9, 0, 5, 7, 1],
                [3, 2, 1, 0],
            ),
            (
                12345678901234,
                0.02504137575317178,
                624174316,
                [6, 8, 9, 5, 3],
                [3, 0, 2, 1],
            ),
        ];
        for (seed, random, bits, sample10, perm) in golden {
            let mut rng = PyRandom::new(seed);
            assert_eq!(rng.random(), random, "seed {seed}");
            assert_eq!(rng.getrandbits(32), bits, "seed {seed}");
            assert_eq!(rng.sample_range(10, 5), sample10, "seed {seed}");
            assert_eq!(rng.permutation4(), perm, "seed {seed}");
        }
    }

    #[test]
    fn first_simple_evals_permutations() {
        let mut rng = PyRandom::new(0);
        let got: Vec<[usize; 4]> = (0..5).map(|_| rng.permutation4()).collect();
        assert_eq!(
            got,
            [
                [3, 1, 0, 2],
                [3, 1, 2, 0],
                [2, 3, 0, 1],
                [2, 0, 3, 1],
                [1, 3, 0, 2]
            ]
        );
    }
}
