//! The fused cubecl kernels (`model::kernels::cube_ops`) on wgpu against the
//! burn compositions they replace, run on the same wgpu device: equal within
//! 1e-5 relative (they differ only in the order of the f32 additions of the
//! norms' sums of squares), on shapes that are not multiples of the cube
//! sizes.
#![cfg(feature = "wgpu")]

use burn::prelude::*;
use burn::tensor::activation::silu;
use hyperscale::kv::WgpuBackend;
use hyperscale::model::kernels::cube_ops::{self, QkvExtras};
use hyperscale::model::layers::norm::RmsNorm;
use hyperscale::model::layers::rope::RopeTables;

type B = WgpuBackend;

/// Deterministic values in about [-2, 2].
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i + seed) * 7919 % 1009) as f32 - 504.0) / 250.0)
        .collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: usize) -> Tensor<B, D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), shape), &Default::default())
}

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().unwrap()
}

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{what} [{i}]: fused {g}, composition {w}"
        );
    }
}

fn rope_tables(n: usize, d: usize) -> RopeTables<B> {
    let angle = |r: usize, c: usize| (r as f32 + 1.0) * 0.37 / (1.0 + (c % (d / 2)) as f32);
    let cos = (0..n * d).map(|i| angle(i / d, i % d).cos()).collect();
    let sin = (0..n * d)
        .map(|i| {
            let s = angle(i / d, i % d).sin();
            if i % d < d / 2 { -s } else { s }
        })
        .collect();
    let dev = Default::default();
    RopeTables {
        cos: Tensor::from_data(TensorData::new(cos, [n, d]), &dev),
        sin: Tensor::from_data(TensorData::new(sin, [n, d]), &dev),
    }
}

#[test]
fn fused_rms_norm_and_residual_add_match_the_composition() {
    // 576 = SmolLM2's hidden size: more than the 256 units of a cube.
    for (rows, dim) in [(3, 576), (2, 64), (1, 1000)] {
        let norm = RmsNorm::new(tensor([dim], 1), 1e-5);
        let x = tensor([rows, dim], 2);
        let a = tensor([rows, dim], 3);
        let fused = cube_ops::rms_norm(&x, norm.weight(), norm.eps()).expect("wgpu is cubecl");
        assert_close(&host(fused), &host(norm.forward_ops(x.clone())), "rms_norm");
        let (sum, normed) =
            cube_ops::add_rms_norm(&x, &a, norm.weight(), norm.eps()).expect("wgpu is cubecl");
        let want_sum = x.clone() + a.clone();
        assert_close(&host(sum), &host(want_sum.clone()), "add");
        assert_close(
            &host(normed),
            &host(norm.forward_ops(want_sum)),
            "add_rms_norm",
        );
        // A non-contiguous 3-d input (per-head norms of a narrowed q).
        let x3 = tensor([rows, 2 * dim], 4)
            .narrow(1, dim, dim)
            .reshape([rows, 1, dim]);
        let fused = cube_ops::rms_norm(&x3, norm.weight(), norm.eps()).unwrap();
        assert_close(&host(fused), &host(norm.forward_ops(x3)), "rms_norm 3-d");
    }
}

#[test]
fn fused_swiglu_matches_the_composition() {
    for (rows, inter) in [(1, 1536), (5, 100)] {
        let gu = tensor([rows, 2 * inter], 5);
        let fused = cube_ops::swiglu(&gu, inter).expect("wgpu is cubecl");
        let want = silu(gu.clone().narrow(1, 0, inter)) * gu.narrow(1, inter, inter);
        assert_close(&host(fused), &host(want), "swiglu");
    }
}

#[test]
fn fused_rope_matches_the_composition() {
    for (n, heads, d) in [(3, 5, 64), (2, 2, 32), (1, 3, 96)] {
        let rope = rope_tables(n, d);
        let x = tensor([n, heads, d], 6);
        let fused = cube_ops::rope(&x, &rope.cos, &rope.sin).expect("wgpu is cubecl");
        assert_close(&host(fused), &host(rope.apply_ops(x)), "rope");
    }
}

/// The fused q/k/v step (bias, split, per-head q/k norm, RoPE) against the
/// attention layer's composition: `+ bias`, narrow, reshape, RmsNorm, RoPE.
#[test]
fn fused_qkv_rope_matches_the_composition() {
    for (n, n_heads, kv_heads, d, bias, norm) in [
        (3, 4, 2, 32, false, true),  // Qwen3: q/k norm
        (2, 6, 2, 64, true, false),  // Qwen2: bias
        (1, 9, 3, 64, false, false), // Llama / SmolLM2
    ] {
        let width = (n_heads + 2 * kv_heads) * d;
        let qkv = tensor([n, width], 7);
        let b = tensor([width], 8);
        let (qn, kn) = (
            RmsNorm::new(tensor([d], 9), 1e-6),
            RmsNorm::new(tensor([d], 10), 1e-6),
        );
        let rope = rope_tables(n, d);
        let extras = QkvExtras {
            bias: bias.then_some(&b),
            norms: norm.then(|| (qn.weight(), kn.weight(), qn.eps())),
        };
        let (q, k, v) =
            cube_ops::qkv_rope(&qkv, [n_heads, kv_heads, d], extras, &rope.cos, &rope.sin)
                .expect("wgpu is cubecl");
        let x = if bias { qkv + b.unsqueeze::<2>() } else { qkv };
        let wq = x.clone().narrow(1, 0, n_heads * d).reshape([n, n_heads, d]);
        let wk = x
            .clone()
            .narrow(1, n_heads * d, kv_heads * d)
            .reshape([n, kv_heads, d]);
        let wv = x
            .narrow(1, (n_heads + kv_heads) * d, kv_heads * d)
            .reshape([n, kv_heads, d]);
        let (wq, wk) = if norm {
            (qn.forward_ops(wq), kn.forward_ops(wk))
        } else {
            (wq, wk)
        };
        let what = format!("qkv_rope n={n} heads={n_heads}/{kv_heads} d={d}");
        assert_close(&host(q), &host(rope.apply_ops(wq)), &format!("{what} q"));
        assert_close(&host(k), &host(rope.apply_ops(wk)), &format!("{what} k"));
        assert_close(&host(v), &host(wv), &format!("{what} v"));
    }
}

/// The fused step of a query-neuron DMS layer against its composition
/// (`DmsHead::logits` then RoPE then `after_rope`): the logits come from
/// the last channel of each group's first q head, normed and not rotated,
/// and that channel of q is zero before and after RoPE.
#[test]
fn fused_qkv_rope_with_the_query_neuron_matches_the_composition() {
    for (n, n_heads, kv_heads, d, bias, norm) in [
        (3, 4, 2, 32, false, true), // Qwen3 with q/k norm
        (2, 6, 2, 64, true, false), // Qwen2 with bias
    ] {
        let group = n_heads / kv_heads;
        let neuron = cube_ops::QueryNeuron {
            group,
            scale: 1.5,
            offset: 0.25,
        };
        let width = (n_heads + 2 * kv_heads) * d;
        let qkv = tensor([n, width], 11);
        let b = tensor([width], 12);
        let (qn, kn) = (
            RmsNorm::new(tensor([d], 13), 1e-6),
            RmsNorm::new(tensor([d], 14), 1e-6),
        );
        let rope = rope_tables(n, d);
        let extras = QkvExtras {
            bias: bias.then_some(&b),
            norms: norm.then(|| (qn.weight(), kn.weight(), qn.eps())),
        };
        let (q, k, v, logits) = cube_ops::qkv_rope_neuron(
            &qkv,
            [n_heads, kv_heads, d],
            extras,
            neuron,
            &rope.cos,
            &rope.sin,
        )
        .expect("wgpu is cubecl");
        let x = if bias {
            qkv + b.clone().unsqueeze::<2>()
        } else {
            qkv
        };
        let wq = x.clone().narrow(1, 0, n_heads * d).reshape([n, n_heads, d]);
        let wq = if norm { qn.forward_ops(wq) } else { wq };
        let mut keep = vec![1.0f32; n_heads * d];
        for h in (0..n_heads).step_by(group) {
            keep[h * d + d - 1] = 0.0;
        }
        let keep =
            Tensor::<B, 3>::from_data(TensorData::new(keep, [1, n_heads, d]), &Default::default());
        let want_logits = wq
            .clone()
            .narrow(2, d - 1, 1)
            .reshape([n, kv_heads, group])
            .narrow(2, 0, 1)
            .reshape([n, kv_heads])
            .mul_scalar(neuron.scale)
            .sub_scalar(neuron.offset);
        let want_q = rope.apply_ops(wq.mul(keep.clone())).mul(keep);
        let what = format!("qkv_rope_neuron n={n} heads={n_heads}/{kv_heads} d={d}");
        assert_close(&host(logits), &host(want_logits), &format!("{what} logits"));
        let qh = host(q);
        assert_close(&qh, &host(want_q), &format!("{what} q"));
        let (q0, k0, v0) = cube_ops::qkv_rope(
            &x_again(n, width, bias, &b),
            [n_heads, kv_heads, d],
            QkvExtras {
                bias: None,
                norms: norm.then(|| (qn.weight(), kn.weight(), qn.eps())),
            },
            &rope.cos,
            &rope.sin,
        )
        .expect("wgpu is cubecl");
        // k and v are those of the step without the neuron.
        assert_close(&host(k), &host(k0), &format!("{what} k"));
        assert_close(&host(v), &host(v0), &format!("{what} v"));
        // The neuron zeroes one channel per group, and only there.
        let q0h = host(q0);
        for (i, (a, b)) in qh.iter().zip(&q0h).enumerate() {
            let (h, c) = ((i / d) % n_heads, i % d);
            if h % group == 0 && c == d - 1 {
                assert_eq!(*a, 0.0, "{what} q[{i}] borrowed");
            } else if c != d / 2 - 1 || h % group != 0 {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{what} q[{i}]");
            }
        }
    }
}

/// The same q/k/v input as the neuron test's, its bias already added.
fn x_again(n: usize, width: usize, bias: bool, b: &Tensor<B, 1>) -> Tensor<B, 2> {
    let qkv = tensor([n, width], 11);
    if bias {
        qkv + b.clone().unsqueeze::<2>()
    } else {
        qkv
    }
}

/// The DMS adapter's decision in one launch against its composition
/// (`DmsHead::logits`: the adapter's RMSNorm, the projection with its bias,
/// the scale and the offset), with and without a bias, hidden sizes above
/// and below the cube's 256 units.
#[test]
fn fused_dms_adapter_matches_the_composition() {
    use hyperscale::model::HostTensor;
    use hyperscale::model::layers::linear::Linear;
    for (n, hidden, kv_heads, bias) in [(3, 576, 3, false), (2, 64, 2, true), (1, 1000, 5, true)] {
        let norm = RmsNorm::new(tensor([hidden], 15), 1e-6);
        let host_w = HostTensor {
            shape: vec![kv_heads, hidden],
            data: values(kv_heads * hidden, 16),
        };
        let host_b = HostTensor {
            shape: vec![kv_heads],
            data: values(kv_heads, 17),
        };
        let proj = Linear::<B>::from_hf(host_w, bias.then_some(host_b), &Default::default());
        let h = tensor([n, hidden], 18);
        let (scale, offset) = (2.5, 0.75);
        let w = proj.weight_out_in().expect("no blocks");
        let fused = cube_ops::dms_adapter(
            &h,
            cube_ops::DmsAdapter {
                norm: norm.weight(),
                eps: norm.eps(),
                proj: &w,
                bias: proj.bias(),
                scale,
                offset,
            },
        )
        .expect("wgpu is cubecl");
        let want = proj
            .forward(norm.forward_ops(h))
            .mul_scalar(scale)
            .sub_scalar(offset);
        let what = format!("dms_adapter n={n} hidden={hidden} kv_heads={kv_heads} bias={bias}");
        assert_close(&host(fused), &host(want), &what);
    }
}

/// `x` rounded to f16 and widened back: what a cast to f16 leaves.
fn f16_round(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect()
}

/// Within one f16 rounding of each other (the fused kernel and the
/// composition round f32 values that differ in the last f32 bits).
#[track_caller]
fn assert_close_f16(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= w.abs() / 1024.0 + 1e-6,
            "{what} [{i}]: fused {g}, composition {w}"
        );
    }
}

fn f32_of<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// The fused kernels around half-precision projections (f16 here, WGSL's
/// half type; bf16 on CUDA) read the projections' f16 outputs and write
/// the f16 inputs of the next, where the composition casts in launches of
/// their own: the residual add reads `a` in f16, the norm is written in
/// f16, SwiGLU reads and writes f16, and the q/k/v step reads f16.
#[test]
fn fused_kernels_read_and_write_f16_as_the_casts_would() {
    use burn::tensor::{DType, FloatDType};
    let (rows, dim) = (3, 576);
    let norm = RmsNorm::new(tensor([dim], 19), 1e-5);
    let x = tensor([rows, dim], 20);
    let a = tensor([rows, dim], 21).cast(FloatDType::F16);
    let (sum, normed) = cube_ops::add_rms_norm_as(&x, &a, norm.weight(), norm.eps(), DType::F16)
        .expect("wgpu is cubecl");
    assert_eq!((sum.dtype(), normed.dtype()), (DType::F32, DType::F16));
    let want_sum = x.clone() + a.clone().cast(FloatDType::F32);
    assert_close(&host(sum), &host(want_sum.clone()), "add of an f16 a");
    let want = f16_round(&host(norm.forward_ops(want_sum)));
    assert_close_f16(&f32_of(normed), &want, "add_rms_norm into f16");
    let first = cube_ops::rms_norm_as(&x, norm.weight(), norm.eps(), DType::F16).unwrap();
    let want = f16_round(&host(norm.forward_ops(x.clone())));
    assert_close_f16(&f32_of(first), &want, "rms_norm into f16");

    let inter = 100;
    let gu = tensor([2, 2 * inter], 22).cast(FloatDType::F16);
    let h = cube_ops::swiglu(&gu, inter).expect("wgpu is cubecl");
    assert_eq!(h.dtype(), DType::F16);
    let g32 = gu.cast(FloatDType::F32);
    let want = silu(g32.clone().narrow(1, 0, inter)) * g32.narrow(1, inter, inter);
    assert_close_f16(&f32_of(h), &f16_round(&host(want)), "swiglu in f16");

    let (n, n_heads, kv_heads, d) = (2, 4, 2, 32);
    let width = (n_heads + 2 * kv_heads) * d;
    let qkv = tensor([n, width], 23).cast(FloatDType::F16);
    let (qn, kn) = (
        RmsNorm::new(tensor([d], 24), 1e-6),
        RmsNorm::new(tensor([d], 25), 1e-6),
    );
    let rope = rope_tables(n, d);
    let norms = Some((qn.weight(), kn.weight(), qn.eps()));
    let heads = [n_heads, kv_heads, d];
    let extras = QkvExtras { bias: None, norms };
    let half =
        cube_ops::qkv_rope(&qkv, heads, extras, &rope.cos, &rope.sin).expect("wgpu is cubecl");
    let widened = qkv.cast(FloatDType::F32);
    let extras = QkvExtras { bias: None, norms };
    let full = cube_ops::qkv_rope(&widened, heads, extras, &rope.cos, &rope.sin).unwrap();
    // Reading f16 is widening it exactly: the same f32 results.
    assert_eq!(host(half.0), host(full.0), "q");
    assert_eq!(host(half.1), host(full.1), "k");
    assert_eq!(host(half.2), host(full.2), "v");
}

/// Decode attention writes the output projection's half-precision input
/// in its last launch (the split-K merge), where the composition casts the
/// f32 output in a launch of its own: a planned step's f16 output equals
/// burn's cast of the f32 output bit for bit, over rows of several spans;
/// an unplanned step takes the cast.
#[test]
fn decode_attention_writes_f16_as_the_cast_would() {
    use burn::tensor::{DType, FloatDType};
    use hyperscale::kv::{AttentionBackend, KvShape, KvStore, SeqId};
    let shape = KvShape {
        layers: 1,
        kv_heads: 2,
        head_dim: 32,
    };
    let (n_heads, prompt, w) = (6, 300, 3);
    let d = shape.head_dim;
    let device = Default::default();
    let dims = [shape.kv_heads, prompt, d];
    let (k, v) = (tensor(dims, 30), tensor(dims, 31));
    let start = || {
        let mut store = KvStore::with_block_size(shape, 16).unwrap();
        let s = store.add_sequence();
        B::prefill_write(&mut store, 0, s, k.clone(), v.clone());
        store.advance(s, prompt);
        let seqs = store.fork(s, w);
        store.release(s);
        (store, seqs)
    };
    let (mut half, half_seqs) = start();
    let (mut full, full_seqs) = start();
    let advance = |store: &mut KvStore, seqs: &[SeqId]| {
        for &s in seqs {
            store.advance(s, 1);
        }
    };
    for step in 0..3 {
        let q = tensor([w, n_heads, d], 40 + step);
        let (k, v) = (
            tensor([w, shape.kv_heads, d], 50 + step),
            tensor([w, shape.kv_heads, d], 60 + step),
        );
        // Steps 0 and 1 planned as a model's are; step 2 not (the cast).
        if step < 2 {
            B::plan_decode_step(&mut half, &half_seqs, &device, false);
            B::plan_decode_step(&mut full, &full_seqs, &device, false);
        }
        let got = B::policy_decode(
            &mut half,
            0,
            &half_seqs,
            q.clone(),
            k.clone(),
            v.clone(),
            0.2,
            &[],
            DType::F16,
        );
        assert_eq!(got.dtype(), DType::F16, "step {step}");
        let want = B::policy_decode(&mut full, 0, &full_seqs, q, k, v, 0.2, &[], DType::F32);
        assert_eq!(want.dtype(), DType::F32, "step {step}");
        assert_eq!(
            f32_of(got),
            f32_of(want.cast(FloatDType::F16)),
            "step {step}"
        );
        advance(&mut half, &half_seqs);
        advance(&mut full, &full_seqs);
    }
}
