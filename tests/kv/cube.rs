//! The cubecl decode kernel and the device-resident store, run on burn's
//! wgpu backend (Mesa lavapipe on a CPU-only machine), against the CPU
//! kernel and the host store: ragged rows (empty, length 1, several block
//! boundaries), GQA groups, one and many spans per row; fork, copy-on-write,
//! slot reuse and eviction on the device.
#![cfg(feature = "wgpu")]

use burn::backend::flex::Flex;
use burn::backend::wgpu::{WgpuDevice, WgpuRuntime};
use burn::prelude::*;
use cubecl::Runtime;
use hyperscale::kv::cpu_kernel::{self, PagedKv, RowRef};
use hyperscale::kv::cube_kernel::decode_attention_roundtrip;
use hyperscale::kv::{AttentionBackend, KvShape, KvStore, RowId, SeqId, SlotChoice};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Gpu = hyperscale::kv::WgpuBackend;

const TOL: f32 = 1e-4;

fn random(rng: &mut ChaCha8Rng, n: usize, amp: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-amp..amp)).collect()
}

/// Rows over a pool in shuffled block order; unused slots are poisoned
/// (NaN values) so a kernel reading past a row shows.
fn layout(
    rng: &mut ChaCha8Rng,
    lens: &[usize],
    bs: usize,
    d: usize,
) -> (Vec<f32>, Vec<f32>, Vec<Vec<u32>>) {
    let blocks: usize = lens.iter().map(|l| l.div_ceil(bs)).sum::<usize>() + 2;
    let mut order: Vec<u32> = (0..blocks as u32).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut keys = random(rng, blocks * bs * d, 3.0);
    let mut values = random(rng, blocks * bs * d, 1.0);
    let mut used = vec![false; blocks * bs];
    let mut next = order.into_iter();
    let tables: Vec<Vec<u32>> = lens
        .iter()
        .map(|&len| {
            let t: Vec<u32> = (0..len.div_ceil(bs))
                .map(|_| next.next().unwrap())
                .collect();
            for s in 0..len {
                used[t[s / bs] as usize * bs + s % bs] = true;
            }
            t
        })
        .collect();
    for (slot, u) in used.iter().enumerate() {
        if !u {
            keys[slot * d..(slot + 1) * d].fill(1e3);
            values[slot * d..(slot + 1) * d].fill(f32::NAN);
        }
    }
    (keys, values, tables)
}

fn check_kernel(
    seed: u64,
    lens: &[usize],
    bs: usize,
    d: usize,
    group: usize,
    span: Option<usize>,
) -> f32 {
    let client = WgpuRuntime::client(&WgpuDevice::default());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (keys, values, tables) = layout(&mut rng, lens, bs, d);
    let q = random(&mut rng, lens.len() * group * d, 1.0);
    let rows: Vec<RowRef> = tables
        .iter()
        .zip(lens)
        .map(|(t, &len)| RowRef { blocks: t, len })
        .collect();
    let kv = PagedKv {
        keys: &keys,
        values: &values,
        block_size: bs,
        head_dim: d,
    };
    let scale = 1.0 / (d as f32).sqrt();
    let mut want = vec![0.0; q.len()];
    cpu_kernel::decode_attention(kv, &rows, &q, group, scale, &mut want);
    let got = decode_attention_roundtrip(&client, kv, &rows, &q, group, scale, span);
    let mut worst = 0.0f32;
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        let err = (a - b).abs();
        assert!(
            err <= TOL,
            "seed {seed} bs {bs} d {d} G {group} span {span:?}: element {i} (row {}): {a} vs {b}",
            i / (group * d)
        );
        worst = worst.max(err);
    }
    worst
}

#[test]
fn cube_kernel_matches_cpu_kernel_on_ragged_rows() {
    let client = WgpuRuntime::client(&WgpuDevice::default());
    eprintln!(
        "wgpu plane features: {:?} (the kernels use none)",
        client.features().plane
    );
    let lens = [0, 1, 2, 15, 16, 17, 40, 129, 1, 0];
    let mut worst = 0.0f32;
    for (i, &(bs, d, group, span)) in [
        (16, 16, 1, None),
        (16, 16, 3, Some(16)),
        (4, 16, 2, Some(32)),
        (32, 64, 3, None),
        (32, 64, 3, Some(64)),
        (5, 32, 4, Some(32)),
        (1, 16, 2, None),
    ]
    .iter()
    .enumerate()
    {
        worst = worst.max(check_kernel(i as u64, &lens, bs, d, group, span));
    }
    eprintln!("worst |cube - cpu| = {worst:e}");
}

#[test]
fn cube_kernel_handles_long_rows_in_many_spans() {
    check_kernel(21, &[3000, 1, 777], 32, 64, 3, None);
    check_kernel(22, &[1000], 16, 32, 2, Some(32));
}

/// Drives a host (Flex) store and a device (wgpu) store through the same
/// prefill, fork, decode (append and slot reuse), eviction and truncation,
/// and compares every attention output.
#[test]
fn device_store_matches_host_store() {
    let shape = KvShape {
        layers: 2,
        kv_heads: 2,
        head_dim: 16,
    };
    let (n_heads, prompt, w) = (6, 37, 3);
    let d = shape.head_dim;
    let gpu = WgpuDevice::default();
    let cpu = Default::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut host = KvStore::with_block_size(shape, 8).unwrap();
    let mut dev = KvStore::with_block_size(shape, 8).unwrap();
    let (ph, pd) = (host.add_sequence(), dev.add_sequence());
    for layer in 0..shape.layers {
        let k = random(&mut rng, shape.kv_heads * prompt * d, 1.0);
        let v = random(&mut rng, k.len(), 1.0);
        let dims = [shape.kv_heads, prompt, d];
        Flex::prefill_write(
            &mut host,
            layer,
            ph,
            Tensor::from_data(TensorData::new(k.clone(), dims), &cpu),
            Tensor::from_data(TensorData::new(v.clone(), dims), &cpu),
        );
        Gpu::prefill_write(
            &mut dev,
            layer,
            pd,
            Tensor::from_data(TensorData::new(k, dims), &gpu),
            Tensor::from_data(TensorData::new(v, dims), &gpu),
        );
    }
    host.advance(ph, prompt);
    dev.advance(pd, prompt);
    let sh = host.fork(ph, w);
    let sd = dev.fork(pd, w);
    host.release(ph);
    dev.release(pd);
    let mut worst = 0.0f32;
    for step in 0..12 {
        if step == 5 {
            // Evict and truncate through shared and owned blocks.
            for (store, seqs) in [(&mut host, &sh), (&mut dev, &sd)] {
                let row = |s: SeqId, layer, head| RowId {
                    seq: s,
                    layer,
                    head,
                };
                store.evict(row(seqs[0], 0, 1), 3).unwrap();
                store.evict(row(seqs[1], 1, 0), 20).unwrap();
                store.truncate(row(seqs[2], 1, 0), 9).unwrap();
            }
        }
        for layer in 0..shape.layers {
            let q = random(&mut rng, w * n_heads * d, 1.0);
            let k = random(&mut rng, w * shape.kv_heads * d, 1.0);
            let v = random(&mut rng, k.len(), 1.0);
            // Odd steps reuse slots (one inside the shared prompt blocks).
            let slots: Vec<SlotChoice> = if step % 2 == 1 {
                (0..w * shape.kv_heads)
                    .map(|i| match i % 3 {
                        0 => SlotChoice::Append,
                        1 => SlotChoice::Reuse(2 + step),
                        _ => SlotChoice::Reuse(30),
                    })
                    // (sequence 2, head 0) was truncated to 9 entries.
                    .enumerate()
                    .map(|(i, c)| {
                        if i == 2 * shape.kv_heads && step > 5 {
                            SlotChoice::Reuse(8)
                        } else {
                            c
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let dims_q = [w, n_heads, d];
            let dims_kv = [w, shape.kv_heads, d];
            let want = Flex::decode_attention_placed(
                &mut host,
                layer,
                &sh,
                &slots,
                Tensor::from_data(TensorData::new(q.clone(), dims_q), &cpu),
                Tensor::from_data(TensorData::new(k.clone(), dims_kv), &cpu),
                Tensor::from_data(TensorData::new(v.clone(), dims_kv), &cpu),
                0.25,
            )
            .into_data()
            .into_vec::<f32>()
            .unwrap();
            let got = Gpu::decode_attention_placed(
                &mut dev,
                layer,
                &sd,
                &slots,
                Tensor::from_data(TensorData::new(q, dims_q), &gpu),
                Tensor::from_data(TensorData::new(k, dims_kv), &gpu),
                Tensor::from_data(TensorData::new(v, dims_kv), &gpu),
                0.25,
            )
            .into_data()
            .into_vec::<f32>()
            .unwrap();
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                let err = (a - b).abs();
                assert!(
                    err <= TOL,
                    "step {step} layer {layer} element {i}: {a} vs {b}"
                );
                worst = worst.max(err);
            }
        }
        for (&a, &b) in sh.iter().zip(&sd) {
            host.advance(a, 1);
            dev.advance(b, 1);
        }
    }
    eprintln!("worst |device - host| = {worst:e}");
    for (&a, &b) in sh.iter().zip(&sd) {
        assert_eq!(host.stats(a), dev.stats(b));
        assert_eq!(host.row_stats(a), dev.row_stats(b));
    }
    assert_eq!(host.store_stats(), dev.store_stats());
    assert!(
        host.store_stats().cow_copies > 0,
        "the run exercised copy-on-write"
    );
    dev.audit().unwrap();
    assert!(
        dev.read_row(RowId {
            seq: sd[0],
            layer: 0,
            head: 0
        })
        .is_err(),
        "payload is on the device"
    );
}

/// The kernel over pools stored in f16: the same output as the CPU kernel
/// over the same keys and values rounded to f16 on the host (storage
/// rounds once; scores, softmax and accumulation stay f32), and within
/// f16's rounding of the f32 result.
#[test]
fn cube_kernel_reads_f16_pools_with_f32_accumulation() {
    use hyperscale::kv::KvDtype;
    use hyperscale::kv::cube_kernel::{decode_attention_roundtrip_as, supports};
    let client = WgpuRuntime::client(&WgpuDevice::default());
    assert!(
        supports(&client, KvDtype::F16),
        "this wgpu adapter lacks shader-f16"
    );
    assert!(!supports(&client, KvDtype::Bf16), "WGSL has no bf16");
    let (bs, d, group) = (16, 32, 3);
    let lens = [0, 1, 17, 40, 129];
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (keys, values, tables) = layout(&mut rng, &lens, bs, d);
    let q = random(&mut rng, lens.len() * group * d, 1.0);
    let rows: Vec<RowRef> = tables
        .iter()
        .zip(&lens)
        .map(|(t, &len)| RowRef { blocks: t, len })
        .collect();
    let round =
        |x: &[f32]| -> Vec<f32> { x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect() };
    let (k16, v16) = (round(&keys), round(&values));
    let kv = |keys: &'_ [f32], values: &'_ [f32]| -> Vec<f32> {
        let kv = PagedKv {
            keys,
            values,
            block_size: bs,
            head_dim: d,
        };
        let mut out = vec![0.0; q.len()];
        cpu_kernel::decode_attention(kv, &rows, &q, group, 1.0 / (d as f32).sqrt(), &mut out);
        out
    };
    let (want_rounded, want_f32) = (kv(&k16, &v16), kv(&keys, &values));
    let paged = PagedKv {
        keys: &keys,
        values: &values,
        block_size: bs,
        head_dim: d,
    };
    let scale = 1.0 / (d as f32).sqrt();
    for span in [None, Some(32)] {
        let got = decode_attention_roundtrip_as(
            &client,
            paged,
            &rows,
            &q,
            group,
            scale,
            span,
            KvDtype::F16,
        );
        let max = |w: &[f32]| {
            got.iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max)
        };
        let (exact, rounding) = (max(&want_rounded), max(&want_f32));
        assert!(
            exact <= TOL,
            "span {span:?}: {exact} off the rounded-KV CPU result"
        );
        // Values in ±1 rounded to f16 (11 significant bits) move a convex
        // combination of them by ≤ 2^-11, scores a little more.
        assert!(
            rounding <= 2e-3,
            "span {span:?}: {rounding} off the f32 result"
        );
        eprintln!(
            "f16 pools, span {span:?}: |cube - cpu(f16 KV)| = {exact:e}, |cube - cpu(f32)| = {rounding:e}"
        );
    }
}
