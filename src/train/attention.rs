//! Full-sequence causal attention with the DMS eviction mask of training
//! (`docs/method.md` §4.2): every key outside the sliding window gets an additive
//! term, `log(1 − p_{k+1})` under the relaxation or `−∞` for a hard
//! eviction, and the shifted convention (the decision of token k + 1 marks
//! token k; the last token is never marked).

use burn::prelude::*;
use burn::tensor::activation::softmax;

/// The additive score of a masked-out key. Large and finite so that
/// gradients stay finite; `exp` of it underflows to exactly 0 in f32.
pub const MASK_VALUE: f32 = -1.0e9;

/// Per-key mask terms from per-token ones: key k takes the term of token
/// k + 1, the last key takes 0 (keep).
///
/// # Shapes
/// `per_token`: `[kv_heads, t]`; returns `[kv_heads, t]`.
pub fn shift_to_keys<B: Backend>(per_token: Tensor<B, 2>) -> Tensor<B, 2> {
    let [kv, t] = per_token.dims();
    let zero = Tensor::zeros([kv, 1], &per_token.device());
    if t == 1 {
        return zero;
    }
    Tensor::cat(vec![per_token.narrow(1, 1, t - 1), zero], 1)
}

/// Constant masks of a length-`t` sequence: the causal bias (0 or
/// [`MASK_VALUE`]) and the out-of-window indicator (1 where `q − k > window`).
///
/// # Shapes
/// Both `[t, t]`, row = query, column = key.
pub fn masks<B: Backend>(
    t: usize,
    window: usize,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let mut causal = vec![0.0f32; t * t];
    let mut outside = vec![0.0f32; t * t];
    for q in 0..t {
        for k in 0..t {
            if k > q {
                causal[q * t + k] = MASK_VALUE;
            } else if q - k > window {
                outside[q * t + k] = 1.0;
            }
        }
    }
    (
        Tensor::from_data(TensorData::new(causal, [t, t]), device),
        Tensor::from_data(TensorData::new(outside, [t, t]), device),
    )
}

/// Grouped-query attention of one sequence with an optional per-key DMS
/// term, shared by the `G` query heads of each KV head.
///
/// # Shapes
/// `q`: `[t, n_heads, d]`; `k`, `v`: `[t, kv_heads, d]` (post-RoPE);
/// `causal`, `outside`: `[t, t]` from [`masks`]; `key_term`: `[kv_heads, t]`
/// (already shifted to keys); returns `[t, n_heads · d]`.
pub fn attend<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    causal: &Tensor<B, 2>,
    outside: &Tensor<B, 2>,
    key_term: Option<Tensor<B, 2>>,
) -> Tensor<B, 2> {
    let [t, n_heads, d] = q.dims();
    let [_, kv_heads, _] = k.dims();
    let group = n_heads / kv_heads;
    let repeat = |x: Tensor<B, 3>| {
        x.swap_dims(0, 1)
            .unsqueeze_dim::<4>(1)
            .expand([kv_heads, group, t, d])
            .reshape([n_heads, t, d])
    };
    let q = q.swap_dims(0, 1);
    let scale = (d as f64).powf(-0.5);
    let scores = q.matmul(repeat(k).swap_dims(1, 2)).mul_scalar(scale);
    let bias = match key_term {
        None => causal.clone().unsqueeze::<3>(),
        Some(term) => {
            let per_kv = term.unsqueeze_dim::<3>(1) * outside.clone().unsqueeze::<3>()
                + causal.clone().unsqueeze::<3>();
            per_kv
                .unsqueeze_dim::<4>(1)
                .expand([kv_heads, group, t, t])
                .reshape([n_heads, t, t])
        }
    };
    let weights = softmax(scores + bias, 2);
    weights
        .matmul(repeat(v))
        .swap_dims(0, 1)
        .reshape([t, n_heads * d])
}
