//! The CPU decode-attention kernel over the paged layout: one query step of
//! G grouped query heads per (sequence, KV head) row, attending over the
//! row's blocks.
//!
//! Work is split across rayon into (row, span) items: whole rows when there
//! are enough rows to keep every thread busy, otherwise spans of a few
//! blocks (split-K), merged afterwards with the log-sum-exp rule. Each item
//! reads every key and value of its span once for all G query heads, keeps
//! the scores in a thread-local scratch (three passes: scores, max-subtracted
//! exponentials, weighted values) and accumulates in f32. The inner loops run
//! over `head_dim` with eight independent accumulators; on x86-64 with AVX2 +
//! FMA (detected at run time) they are compiled with those features.

use std::cell::RefCell;

use rayon::prelude::*;

/// One layer's pool of keys and values, borrowed.
///
/// # Shapes
/// `keys`, `values`: `[slots, head_dim]`; slot `s` of a row lives at global
/// slot `blocks[s / block_size] * block_size + s % block_size`.
#[derive(Debug, Clone, Copy)]
pub struct PagedKv<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub block_size: usize,
    pub head_dim: usize,
}

/// One row to attend over: its block table and its length (slots
/// `0..len` are live).
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub blocks: &'a [u32],
    pub len: usize,
}

/// Fewest entries a split-K span holds.
const MIN_SPAN: usize = 256;

/// Decode attention of `rows.len()` rows, each with `group` query heads.
/// An empty row yields zeros.
///
/// # Shapes
/// `q`, `out`: `[rows, group, head_dim]` (that is `[batch, n_heads,
/// head_dim]` with row `b * kv_heads + h` owning query heads `h * group ..
/// (h + 1) * group`).
pub fn decode_attention(
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
) {
    attend(kv, rows, q, group, scale, out, None);
}

/// [`decode_attention`] that also writes each entry's attention weight,
/// averaged over the row's G query heads (what TOVA and H2O score by).
/// Rows are not split across threads.
///
/// # Shapes
/// As [`decode_attention`]; `weights`: `[Σ rows' len]`, row after row, each
/// row's entries in slot order.
pub fn decode_attention_weights(
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
    weights: &mut [f32],
) {
    attend(kv, rows, q, group, scale, out, Some(weights));
}

fn attend(
    kv: PagedKv<'_>,
    rows: &[RowRef<'_>],
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
    weights: Option<&mut [f32]>,
) {
    let d = kv.head_dim;
    assert_eq!(
        q.len(),
        rows.len() * group * d,
        "q is not [rows, group, head_dim]"
    );
    assert_eq!(out.len(), q.len(), "out is not [rows, group, head_dim]");
    let mut row_weights: Vec<Option<&mut [f32]>> = match weights {
        Some(w) => {
            let total: usize = rows.iter().map(|r| r.len).sum();
            assert_eq!(w.len(), total, "weights is not [Σ row lengths]");
            let mut rest = w;
            rows.iter()
                .map(|r| {
                    let (mine, tail) = std::mem::take(&mut rest).split_at_mut(r.len);
                    rest = tail;
                    Some(mine)
                })
                .collect()
        }
        None => Vec::new(),
    };
    let span = if row_weights.is_empty() {
        span_len(rows, kv.block_size)
    } else {
        usize::MAX
    };
    let mut items = Vec::with_capacity(rows.len());
    let mut first_item = Vec::with_capacity(rows.len() + 1);
    for (r, row) in rows.iter().enumerate() {
        first_item.push(items.len());
        let mut start = 0;
        loop {
            let end = (start + span).min(row.len);
            items.push((r, start, end));
            start = end;
            if start >= row.len {
                break;
            }
        }
    }
    first_item.push(items.len());
    let stride = group * (d + 2);
    let mut partials = vec![0.0f32; items.len() * stride];
    // With weights, items are the rows one to one (no split).
    if row_weights.is_empty() {
        row_weights.resize_with(items.len(), || None);
    }
    partials
        .par_chunks_mut(stride)
        .zip(items.par_iter())
        .zip(row_weights.par_iter_mut())
        .for_each(|((part, &(r, start, end)), w)| {
            let job = Span {
                kv,
                blocks: rows[r].blocks,
                start,
                end,
                q: &q[r * group * d..(r + 1) * group * d],
                group,
                scale,
            };
            job.run(part, w.take());
        });
    out.par_chunks_mut(group * d)
        .enumerate()
        .for_each(|(r, o)| {
            let parts = &partials[first_item[r] * stride..first_item[r + 1] * stride];
            merge(parts, group, d, o);
        });
}

/// Entries per work item: whole rows when rows outnumber threads twice,
/// else about a quarter of each thread's share, in whole blocks.
fn span_len(rows: &[RowRef<'_>], block_size: usize) -> usize {
    let threads = rayon::current_num_threads();
    if rows.len() >= 2 * threads {
        return usize::MAX;
    }
    let total: usize = rows.iter().map(|r| r.len).sum();
    let share = total.div_ceil(4 * threads).max(MIN_SPAN);
    share.div_ceil(block_size) * block_size
}

/// Combine per-span partials `[m; G] [l; G] [acc; G × d]` into the output.
fn merge(parts: &[f32], group: usize, d: usize, out: &mut [f32]) {
    let stride = group * (d + 2);
    for g in 0..group {
        let o = &mut out[g * d..(g + 1) * d];
        o.fill(0.0);
        let m = parts
            .chunks_exact(stride)
            .map(|p| p[g])
            .fold(f32::NEG_INFINITY, f32::max);
        if m == f32::NEG_INFINITY {
            continue;
        }
        let mut l = 0.0f32;
        for p in parts.chunks_exact(stride) {
            let w = (p[g] - m).exp();
            l += w * p[group + g];
            let acc = &p[2 * group + g * d..2 * group + (g + 1) * d];
            for (x, a) in o.iter_mut().zip(acc) {
                *x += w * a;
            }
        }
        let inv = 1.0 / l;
        o.iter_mut().for_each(|x| *x *= inv);
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Slots `start..end` of one row, attended by the row's G query heads.
struct Span<'a> {
    kv: PagedKv<'a>,
    blocks: &'a [u32],
    start: usize,
    end: usize,
    q: &'a [f32],
    group: usize,
    scale: f32,
}

impl Span<'_> {
    /// Write the partial `[m; G] [l; G] [acc; G × d]` of this span and, if
    /// asked, the mean attention weight of each entry.
    fn run(&self, part: &mut [f32], weights: Option<&mut [f32]>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { self.run_avx2(part, weights) };
            return;
        }
        #[cfg(target_arch = "aarch64")]
        return self.run_with::<Fused>(part, weights);
        #[cfg_attr(
            target_arch = "aarch64",
            expect(unreachable_code, reason = "aarch64 always has FMA")
        )]
        self.run_with::<Plain>(part, weights)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, part: &mut [f32], weights: Option<&mut [f32]>) {
        self.run_with::<Fused>(part, weights)
    }

    #[inline(always)]
    fn run_with<M: Madd>(&self, part: &mut [f32], weights: Option<&mut [f32]>) {
        let (g_n, d) = (self.group, self.kv.head_dim);
        let n = self.end - self.start;
        let (ms, rest) = part.split_at_mut(g_n);
        let (ls, accs) = rest.split_at_mut(g_n);
        accs.fill(0.0);
        if n == 0 {
            ms.fill(f32::NEG_INFINITY);
            ls.fill(0.0);
            return;
        }
        // Taken out of the thread-local rather than borrowed in a closure
        // (see pass 1 on closures and target features).
        let mut scratch = SCRATCH.take();
        scratch.clear();
        scratch.resize(g_n * (d + n), 0.0);
        let (qs, scores) = scratch.split_at_mut(g_n * d);
        for (s, x) in qs.iter_mut().zip(self.q) {
            *s = x * self.scale;
        }
        // Pass 1: scores, one key load for all G heads. (Plain loops, no
        // closures: a closure would not inherit the caller's target
        // features and `mul_add` would become a libm call.)
        let mut j = 0;
        for (slot, count) in self.runs() {
            let keys = &self.kv.keys[slot * d..(slot + count) * d];
            for k in keys.chunks_exact(d) {
                for g in 0..g_n {
                    scores[g * n + j] = dot::<M>(&qs[g * d..(g + 1) * d], k);
                }
                j += 1;
            }
        }
        // Pass 2: max-subtracted exponentials and their sums.
        for g in 0..g_n {
            let s = &mut scores[g * n..(g + 1) * n];
            let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for x in s.iter_mut() {
                *x = exp_fast(*x - m);
            }
            ms[g] = m;
            ls[g] = sum(s);
        }
        if let Some(w) = weights {
            w.fill(0.0);
            for g in 0..g_n {
                let k = 1.0 / (ls[g] * g_n as f32);
                for (x, e) in w.iter_mut().zip(&scores[g * n..(g + 1) * n]) {
                    *x += e * k;
                }
            }
        }
        // Pass 3: weighted values, one value load for all G heads.
        let mut j = 0;
        for (slot, count) in self.runs() {
            let values = &self.kv.values[slot * d..(slot + count) * d];
            for v in values.chunks_exact(d) {
                for g in 0..g_n {
                    axpy::<M>(&mut accs[g * d..(g + 1) * d], scores[g * n + j], v);
                }
                j += 1;
            }
        }
        SCRATCH.set(scratch);
    }

    /// The span's contiguous runs as (first global slot, count).
    fn runs(&self) -> Runs<'_> {
        Runs {
            blocks: self.blocks,
            bs: self.kv.block_size,
            at: self.start,
            end: self.end,
        }
    }
}

/// Contiguous runs of slots `at..end` of a row: one per block touched.
struct Runs<'a> {
    blocks: &'a [u32],
    bs: usize,
    at: usize,
    end: usize,
}

impl Iterator for Runs<'_> {
    type Item = (usize, usize);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.at >= self.end {
            return None;
        }
        let off = self.at % self.bs;
        let count = (self.bs - off).min(self.end - self.at);
        let slot = self.blocks[self.at / self.bs] as usize * self.bs + off;
        self.at += count;
        Some((slot, count))
    }
}

/// `a * b + c`, fused where the target has FMA.
trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

struct Fused;
impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

struct Plain;
impl Madd for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[inline(always)]
fn dot<M: Madd>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] = M::madd(x[i], y[i], acc[i]);
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail = M::madd(*x, *y, tail);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Σ x in eight interleaved partial sums (vectorizes; order is fixed).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let c = x.chunks_exact(8);
    let tail: f32 = c.remainder().iter().sum();
    for y in c {
        for i in 0..8 {
            acc[i] += y[i];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[inline(always)]
fn axpy<M: Madd>(acc: &mut [f32], w: f32, v: &[f32]) {
    for (a, x) in acc.iter_mut().zip(v) {
        *a = M::madd(w, *x, *a);
    }
}

/// `e^x` to about 2 ulp for the softmax range (Cephes `expf`: range
/// reduction by ln 2, degree-5 polynomial), written to vectorize.
#[inline(always)]
pub(crate) fn exp_fast(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((k as i32 + 127) << 23) as u32)
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

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let want: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot::<Plain>(&a, &a), want);
        assert_eq!(dot::<Fused>(&a, &a), want);
    }
}
