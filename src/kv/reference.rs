//! The naive attention the paged kernels are tested against: one query, one
//! contiguous row, scores materialised, exact `exp`. Slow on purpose; kept as
//! the oracle.

/// Softmax attention of one query over one contiguous row. An empty row
/// yields zeros.
///
/// # Shapes
/// `q`, `out`: `[d]`; `keys`, `values`: `[len, d]`, row-major.
pub fn attend_row(q: &[f32], keys: &[f32], values: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    out.fill(0.0);
    if keys.is_empty() {
        return;
    }
    let scores: Vec<f32> = keys
        .chunks_exact(d)
        .map(|k| q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale)
        .collect();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    for (w, v) in weights.iter().zip(values.chunks_exact(d)) {
        for (o, x) in out.iter_mut().zip(v) {
            *o += w / total * x;
        }
    }
}
