//! The CPU prefill attention of cache policies: a chunk's queries attend
//! over one row's kept entries and the chunk's own keys, each key visible in
//! a window of query positions (`pos ≤ p < until`: the causal mask, and
//! DMS's closed-form `visible_until`), with the attention weights a scorer
//! needs (column sums for H2O, the last query's row for TOVA).
//!
//! Work items are (row, tile of [`TILE`] queries): each key is loaded once
//! for the tile's queries and the row's G query heads, keys no query of the
//! tile sees are skipped, and the three passes (scores, exponentials, values)
//! follow the decode kernel's, with the same AVX2 + FMA dispatch.

use std::cell::RefCell;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::simd::Avx2;
#[cfg(target_arch = "aarch64")]
use super::simd::Fused;
use super::simd::{Madd, Plain, axpy, dot, exp_fast};

/// Queries per work item.
const TILE: usize = 16;

/// The keys one row's prefill queries may attend over, in any order.
///
/// # Shapes
/// `keys`, `values`: `[n, head_dim]`; `pos`, `until`: `[n]`. Key `j` is
/// visible to the query at position `p` iff `pos[j] ≤ p < until[j]`.
#[derive(Debug, Clone, Copy)]
pub struct PrefillKeys<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub pos: &'a [u32],
    pub until: &'a [u32],
}

/// The chunk's queries.
///
/// # Shapes
/// `q`: `[t, kv_heads * group, head_dim]`; query `i` sits at position
/// `first_pos + i`; row `h` owns query heads `h * group .. (h + 1) * group`.
#[derive(Debug, Clone, Copy)]
pub struct PrefillQueries<'a> {
    pub q: &'a [f32],
    pub first_pos: u32,
    pub group: usize,
    pub head_dim: usize,
    pub scale: f32,
}

/// Attention weights to return per key, each averaged over the row's G
/// query heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    None,
    /// Σ over the chunk's queries of each key's weight (H2O).
    ColumnSums,
    /// The last query's weight of each key (TOVA).
    LastQuery,
}

/// One row's result besides the output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefillRowResult {
    /// Σ over queries of the keys each one sees.
    pub reads: u64,
    /// `[n]` per key, as asked by [`Weights`] (empty for `None`).
    pub weights: Vec<f32>,
}

/// Prefill attention of every row of one layer.
///
/// # Shapes
/// `rows`: `[kv_heads]`; `out`: like `qs.q`, `[t, kv_heads * group,
/// head_dim]`.
///
/// # Panics
/// If `out` or `qs.q` are misshapen.
pub fn prefill_attention(
    rows: &[PrefillKeys<'_>],
    qs: PrefillQueries<'_>,
    want: Weights,
    out: &mut [f32],
) -> Vec<PrefillRowResult> {
    let (g_n, d) = (qs.group, qs.head_dim);
    let n_heads = rows.len() * g_n;
    let t = qs.q.len() / (n_heads * d).max(1);
    assert_eq!(
        qs.q.len(),
        t * n_heads * d,
        "q is not [t, n_heads, head_dim]"
    );
    assert_eq!(out.len(), qs.q.len(), "out is not shaped like q");
    let items: Vec<(usize, usize)> = (0..rows.len())
        .flat_map(|h| (0..t.div_ceil(TILE)).map(move |i| (h, i * TILE)))
        .collect();
    let done: Vec<TileOut> = items
        .par_iter()
        .map(|&(h, a)| {
            Tile {
                keys: rows[h],
                qs,
                h,
                n_heads,
                a,
                b: (a + TILE).min(t),
                t,
                want,
            }
            .run()
        })
        .collect();
    let mut results: Vec<PrefillRowResult> = rows
        .iter()
        .map(|r| PrefillRowResult {
            reads: 0,
            weights: match want {
                Weights::None => Vec::new(),
                _ => vec![0.0; r.pos.len()],
            },
        })
        .collect();
    for (&(h, a), tile) in items.iter().zip(&done) {
        let res = &mut results[h];
        res.reads += tile.reads;
        for (w, x) in res.weights.iter_mut().zip(&tile.weights) {
            *w += x;
        }
        for (qi, acc) in tile.out.chunks_exact(g_n * d).enumerate() {
            let at = ((a + qi) * n_heads + h * g_n) * d;
            out[at..at + g_n * d].copy_from_slice(acc);
        }
    }
    results
}

/// What one tile produced.
struct TileOut {
    /// `[b - a, G, d]`
    out: Vec<f32>,
    reads: u64,
    /// `[n]`, or empty when the tile adds nothing.
    weights: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<(Vec<u32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Queries `a..b` of row `h`.
struct Tile<'a> {
    keys: PrefillKeys<'a>,
    qs: PrefillQueries<'a>,
    h: usize,
    n_heads: usize,
    a: usize,
    b: usize,
    t: usize,
    want: Weights,
}

impl Tile<'_> {
    fn run(&self) -> TileOut {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { self.run_avx2() };
        }
        #[cfg(target_arch = "aarch64")]
        return self.run_with::<Fused>();
        #[cfg_attr(
            target_arch = "aarch64",
            expect(unreachable_code, reason = "aarch64 always has FMA")
        )]
        self.run_with::<Plain>()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self) -> TileOut {
        self.run_with::<Avx2>()
    }

    #[inline(always)]
    fn run_with<M: Madd>(&self) -> TileOut {
        let (g_n, d) = (self.qs.group, self.qs.head_dim);
        let nq = self.b - self.a;
        let pa = self.qs.first_pos + self.a as u32;
        let pb = self.qs.first_pos + self.b as u32 - 1;
        let PrefillKeys {
            keys,
            values,
            pos,
            until,
        } = self.keys;
        let (mut cand, mut scratch) = SCRATCH.take();
        cand.clear();
        cand.extend(
            (0..pos.len() as u32).filter(|&j| pos[j as usize] <= pb && until[j as usize] > pa),
        );
        let nc = cand.len();
        let rows = nq * g_n;
        scratch.clear();
        scratch.resize(rows * (d + nc + 1), 0.0);
        let (qbuf, rest) = scratch.split_at_mut(rows * d);
        let (scores, ls) = rest.split_at_mut(rows * nc);
        for qi in 0..nq {
            let src = ((self.a + qi) * self.n_heads + self.h * g_n) * d;
            for (x, y) in qbuf[qi * g_n * d..(qi + 1) * g_n * d]
                .iter_mut()
                .zip(&self.qs.q[src..src + g_n * d])
            {
                *x = y * self.qs.scale;
            }
        }
        // Pass 1: scores of visible (query, key) pairs, -inf elsewhere.
        let mut reads = 0u64;
        for (c, &j) in cand.iter().enumerate() {
            let j = j as usize;
            let k = &keys[j * d..(j + 1) * d];
            for qi in 0..nq {
                let p = pa + qi as u32;
                let visible = pos[j] <= p && p < until[j];
                reads += u64::from(visible);
                for g in 0..g_n {
                    let r = qi * g_n + g;
                    scores[r * nc + c] = if visible {
                        dot::<M>(&qbuf[r * d..(r + 1) * d], k)
                    } else {
                        f32::NEG_INFINITY
                    };
                }
            }
        }
        // Pass 2: exponentials (exactly 0 where masked) and their sums.
        for r in 0..rows {
            let s = &mut scores[r * nc..(r + 1) * nc];
            let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut l = 0.0f32;
            for x in s.iter_mut() {
                let e = exp_fast(*x - m);
                *x = if *x == f32::NEG_INFINITY { 0.0 } else { e };
                l += *x;
            }
            ls[r] = l;
        }
        // Pass 3: weighted values.
        let mut out = vec![0.0f32; rows * d];
        for (c, &j) in cand.iter().enumerate() {
            let j = j as usize;
            let v = &values[j * d..(j + 1) * d];
            for r in 0..rows {
                let w = scores[r * nc + c];
                if w != 0.0 {
                    axpy::<M>(&mut out[r * d..(r + 1) * d], w, v);
                }
            }
        }
        for r in 0..rows {
            let inv = 1.0 / ls[r];
            out[r * d..(r + 1) * d].iter_mut().for_each(|x| *x *= inv);
        }
        let weights = self.weights(&cand, scores, ls);
        SCRATCH.set((cand, scratch));
        TileOut {
            out,
            reads,
            weights,
        }
    }

    /// The tile's contribution to the asked weights, per key.
    fn weights(&self, cand: &[u32], scores: &[f32], ls: &[f32]) -> Vec<f32> {
        let g_n = self.qs.group;
        let nc = cand.len();
        let queries = match self.want {
            Weights::None => return Vec::new(),
            Weights::ColumnSums => 0..self.b - self.a,
            Weights::LastQuery if (self.a..self.b).contains(&(self.t - 1)) => {
                self.t - 1 - self.a..self.t - self.a
            }
            Weights::LastQuery => return Vec::new(),
        };
        let mut w = vec![0.0f32; self.keys.pos.len()];
        for qi in queries {
            for g in 0..g_n {
                let r = qi * g_n + g;
                let inv = 1.0 / (ls[r] * g_n as f32);
                for (c, &j) in cand.iter().enumerate() {
                    w[j as usize] += scores[r * nc + c] * inv;
                }
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::reference::attend_row;

    fn data(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * 0.37 + seed).sin()).collect()
    }

    /// A causal prefill over 3 old keys and 37 new ones equals per-query
    /// naive attention over the keys each query sees, and the weights sum
    /// as they should.
    #[test]
    fn matches_naive_attention_with_windows() {
        let (d, g_n, kvh) = (8, 2, 2);
        let (old, t) = (3usize, 37usize);
        let p0 = 5u32;
        let n = old + t;
        let keys: Vec<Vec<f32>> = (0..kvh).map(|h| data(n * d, h as f32)).collect();
        let values: Vec<Vec<f32>> = (0..kvh).map(|h| data(n * d, 7.0 + h as f32)).collect();
        let mut pos: Vec<u32> = vec![0, 2, 4];
        pos.extend((0..t as u32).map(|i| p0 + i));
        // Old key 1 expires at query 9; new key 4 (position 9) at 12.
        let mut until = vec![u32::MAX; n];
        until[1] = 9;
        until[old + 4] = 12;
        let q = data(t * kvh * g_n * d, 3.0);
        let rows: Vec<PrefillKeys> = (0..kvh)
            .map(|h| PrefillKeys {
                keys: &keys[h],
                values: &values[h],
                pos: &pos,
                until: &until,
            })
            .collect();
        let qs = PrefillQueries {
            q: &q,
            first_pos: p0,
            group: g_n,
            head_dim: d,
            scale: 0.4,
        };
        for want in [Weights::None, Weights::ColumnSums, Weights::LastQuery] {
            let mut out = vec![0.0; q.len()];
            let res = prefill_attention(&rows, qs, want, &mut out);
            for h in 0..kvh {
                let mut reads = 0;
                for i in 0..t {
                    let p = p0 + i as u32;
                    let seen: Vec<usize> =
                        (0..n).filter(|&j| pos[j] <= p && p < until[j]).collect();
                    reads += seen.len() as u64;
                    let ks: Vec<f32> = seen
                        .iter()
                        .flat_map(|&j| keys[h][j * d..(j + 1) * d].to_vec())
                        .collect();
                    let vs: Vec<f32> = seen
                        .iter()
                        .flat_map(|&j| values[h][j * d..(j + 1) * d].to_vec())
                        .collect();
                    for g in 0..g_n {
                        let at = ((i * kvh + h) * g_n + g) * d;
                        let mut want_out = vec![0.0; d];
                        attend_row(&q[at..at + d], &ks, &vs, d, 0.4, &mut want_out);
                        for (a, b) in out[at..at + d].iter().zip(&want_out) {
                            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
                        }
                    }
                }
                assert_eq!(res[h].reads, reads);
                match want {
                    Weights::None => assert!(res[h].weights.is_empty()),
                    Weights::ColumnSums => {
                        let total: f32 = res[h].weights.iter().sum();
                        assert!((total - t as f32).abs() < 1e-3, "{total}");
                        assert_eq!(res[h].weights[1], res[h].weights[1].min(4.0));
                    }
                    Weights::LastQuery => {
                        let total: f32 = res[h].weights.iter().sum();
                        assert!((total - 1.0).abs() < 1e-5);
                        assert_eq!(res[h].weights[1], 0.0, "expired key has no weight");
                        assert_eq!(res[h].weights[old + 4], 0.0);
                    }
                }
            }
        }
    }
}
