//! Fused elementwise steps of a layer on Flex, bit-identical to the burn
//! compositions they replace (the same f32 operations in the same order).
//! The compositions iterate strided, broadcast views element by element:
//! at W = 16 on SmolLM2 they were most of the step's non-projection,
//! non-attention time (`bench decode --profile`, "other": 19.8 → 6.9 ms
//! per step). Each returns `None` off Flex (autodiff included), and the
//! caller runs the burn ops.

use std::any::TypeId;

use burn::backend::flex::{Flex, FlexTensor};
use burn::prelude::*;
use rayon::prelude::*;

use crate::model::kernels::gemv::{flex, from_flex_vec};

/// Rows per rayon task: below this a row loop is cheaper than the split.
const ROWS_PER_TASK: usize = 4;

/// `x * cos + swap_halves(x) * sin` per row (rotate-half RoPE, `sin` signed
/// as [`crate::model::layers::rope::RopeTables`] holds it).
///
/// # Shapes
/// `x`: `[n, heads, head_dim]` (any layout); `cos`, `sin`: `[n, head_dim]`;
/// returns `[n, heads, head_dim]`.
pub fn rope<B: Backend>(
    x: &Tensor<B, 3>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> Option<Tensor<B, 3>> {
    if TypeId::of::<B>() != TypeId::of::<Flex>() {
        return None;
    }
    let [n, heads, d] = x.dims();
    if cos.dims() != [n, d] || sin.dims() != [n, d] || d % 2 != 0 {
        return None;
    }
    let (xs, cs, ss) = (contiguous(x)?, contiguous(cos)?, contiguous(sin)?);
    let (xs, cs, ss) = (
        xs.as_slice::<f32>()?,
        cs.as_slice::<f32>()?,
        ss.as_slice::<f32>()?,
    );
    let half = d / 2;
    let mut out = vec![0.0f32; n * heads * d];
    let row = |r: usize, o: &mut [f32]| {
        let (c, s) = (&cs[r * d..(r + 1) * d], &ss[r * d..(r + 1) * d]);
        for h in 0..heads {
            let base = (r * heads + h) * d;
            let x = &xs[base..base + d];
            let o = &mut o[h * d..(h + 1) * d];
            // The two halves as separate loops (the same operations per
            // element), so each vectorizes.
            let (x0, x1) = x.split_at(half);
            let (o0, o1) = o.split_at_mut(half);
            let (c0, c1) = c.split_at(half);
            let (s0, s1) = s.split_at(half);
            for i in 0..half {
                o0[i] = x0[i] * c0[i] + x1[i] * s0[i];
                o1[i] = x1[i] * c1[i] + x0[i] * s1[i];
            }
        }
    };
    rows(&mut out, heads * d, row);
    from_flex_vec(out, [n, heads, d])
}

/// `silu(gate) * up` over a fused `[n, 2 * inter]` gate/up output (gate
/// columns first), with Flex's sigmoid: `(g · σ(g)) · u`
/// ([`crate::model::kernels::silu`], sixteen values at a time).
///
/// # Shapes
/// `gu`: `[n, 2 * inter]`; returns `[n, inter]`.
pub fn swiglu<B: Backend>(gu: &Tensor<B, 2>, inter: usize) -> Option<Tensor<B, 2>> {
    if TypeId::of::<B>() != TypeId::of::<Flex>() {
        return None;
    }
    let [n, width] = gu.dims();
    if width != 2 * inter {
        return None;
    }
    let gt = contiguous(gu)?;
    let g = gt.as_slice::<f32>()?;
    let mut out = vec![0.0f32; n * inter];
    rows(&mut out, inter, |r, o| {
        let (gate, up) = g[r * width..(r + 1) * width].split_at(inter);
        crate::model::kernels::silu::silu_times(gate, up, o);
    });
    from_flex_vec(out, [n, inter])
}

/// `s = x + a` and RMSNorm of `s`, `s · (1 / sqrt(mean(s²) + eps)) ·
/// weight`, as [`crate::model::layers::norm::RmsNorm::forward_ops`]
/// composes it: the same f32 operations, the mean of the squares taken by
/// burn's own `mean_dim` (so its reduction order is burn's); the rest in
/// two passes over each row instead of eight burn ops.
///
/// # Shapes
/// `x`, `a`: `[n, dim]`; `weight`: `[dim]`; returns (`s`, the norm), both
/// `[n, dim]`.
pub fn add_rms_norm<B: Backend>(
    x: &Tensor<B, 2>,
    a: &Tensor<B, 2>,
    weight: &Tensor<B, 1>,
    eps: f64,
) -> Option<(Tensor<B, 2>, Tensor<B, 2>)> {
    if TypeId::of::<B>() != TypeId::of::<Flex>() {
        return None;
    }
    let [n, dim] = x.dims();
    if a.dims() != [n, dim] || weight.dims() != [dim] {
        return None;
    }
    let (xt, at, wt) = (contiguous(x)?, contiguous(a)?, contiguous(weight)?);
    let (xs, as_, w) = (
        xt.as_slice::<f32>()?,
        at.as_slice::<f32>()?,
        wt.as_slice::<f32>()?,
    );
    let sum: Vec<f32> = xs.iter().zip(as_).map(|(x, a)| x + a).collect();
    let squares: Vec<f32> = sum.iter().map(|s| s * s).collect();
    let mean = from_flex_vec::<B, 2>(squares, [n, dim])?.mean_dim(1);
    let mt = contiguous(&mean)?;
    let mean = mt.as_slice::<f32>()?;
    // burn's `add_scalar` rounds the f64 scalar to the element type.
    let eps = eps as f32;
    let mut out = vec![0.0f32; n * dim];
    for ((o, s), &m) in out
        .chunks_exact_mut(dim)
        .zip(sum.chunks_exact(dim))
        .zip(mean)
    {
        let inv = 1.0 / (m + eps).sqrt();
        for ((o, &s), &w) in o.iter_mut().zip(s).zip(w) {
            *o = s * inv * w;
        }
    }
    Some((from_flex_vec(sum, [n, dim])?, from_flex_vec(out, [n, dim])?))
}

/// Fill `out` row by row (`width` values each), in parallel for several rows.
fn rows(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() <= ROWS_PER_TASK * width {
        for (r, o) in out.chunks_mut(width).enumerate() {
            f(r, o);
        }
    } else {
        out.par_chunks_mut(width)
            .enumerate()
            .with_min_len(ROWS_PER_TASK)
            .for_each(|(r, o)| f(r, o));
    }
}

/// The Flex tensor behind `t`, contiguous f32 (a copy when it is a view).
fn contiguous<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<FlexTensor> {
    let p = flex(t.clone().into_primitive())?;
    if p.dtype() != burn::tensor::DType::F32 {
        return None;
    }
    Some(if p.as_slice::<f32>().is_some() {
        p
    } else {
        p.to_contiguous()
    })
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::silu;

    use super::*;

    fn random(n: usize, seed: u32, amp: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                amp * ((s % 20001) as f32 / 10000.0 - 1.0)
            })
            .collect()
    }

    fn bits<const D: usize>(t: Tensor<Flex, D>) -> Vec<u32> {
        let v = t.into_data().into_vec::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn rope_equals_the_burn_composition_bit_for_bit() {
        let device = Default::default();
        let (heads, d) = (3, 8);
        for n in [1, 2, 7] {
            // A view, as the model passes it: q of a fused qkv row.
            let qkv = Tensor::<Flex, 2>::from_data(
                TensorData::new(
                    random(n * (heads + 2) * d, n as u32, 3.0),
                    [n, (heads + 2) * d],
                ),
                &device,
            );
            let x = qkv.narrow(1, d, heads * d).reshape([n, heads, d]);
            let table = |seed| {
                Tensor::<Flex, 2>::from_data(
                    TensorData::new(random(n * d, seed, 1.0), [n, d]),
                    &device,
                )
            };
            let (cos, sin) = (table(11), table(12));
            let half = d / 2;
            let swapped = Tensor::cat(
                vec![
                    x.clone().narrow(2, half, half),
                    x.clone().narrow(2, 0, half),
                ],
                2,
            );
            let want =
                x.clone() * cos.clone().unsqueeze_dim(1) + swapped * sin.clone().unsqueeze_dim(1);
            let got = rope(&x, &cos, &sin).expect("flex");
            assert_eq!(bits(got), bits(want), "n = {n}");
        }
    }

    #[test]
    fn add_rms_norm_equals_the_burn_composition_bit_for_bit() {
        use crate::model::layers::norm::RmsNorm;
        let device = Default::default();
        for (n, dim) in [(1, 8), (3, 37), (16, 576)] {
            let t = |seed, amp| {
                Tensor::<Flex, 2>::from_data(
                    TensorData::new(random(n * dim, seed, amp), [n, dim]),
                    &device,
                )
            };
            let (x, a) = (t(n as u32, 20.0), t(dim as u32, 3.0));
            let weight =
                Tensor::<Flex, 1>::from_data(TensorData::new(random(dim, 9, 2.0), [dim]), &device);
            for eps in [1e-5, 1e-6, 0.3] {
                let norm = RmsNorm::new(weight.clone(), eps);
                let want_sum = x.clone() + a.clone();
                let want = norm.forward_ops(want_sum.clone());
                let (sum, got) = add_rms_norm(&x, &a, &weight, eps).expect("flex");
                assert_eq!(bits(sum), bits(want_sum), "{n}x{dim}");
                assert_eq!(bits(got), bits(want), "{n}x{dim} eps {eps}");
            }
        }
    }

    #[test]
    fn swiglu_equals_silu_times_up_bit_for_bit() {
        let device = Default::default();
        let inter = 37;
        for n in [1, 3, 16] {
            // Wide enough to reach both branches of the sigmoid and exp's
            // extremes.
            let gu = Tensor::<Flex, 2>::from_data(
                TensorData::new(random(n * 2 * inter, n as u32 + 5, 30.0), [n, 2 * inter]),
                &device,
            );
            let want = silu(gu.clone().narrow(1, 0, inter)) * gu.clone().narrow(1, inter, inter);
            let got = swiglu(&gu, inter).expect("flex");
            assert_eq!(bits(got), bits(want), "n = {n}");
        }
    }
}
