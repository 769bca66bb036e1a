//! `--kv-dtype` on wgpu (Mesa lavapipe here): K and V stored in f16 in the
//! device pools (the stand-in for CUDA's bf16: WGSL has no bf16) give the
//! CPU's logits within f16's tolerance, dense and DMS, and every byte
//! figure of the same run — `entry_bytes`, the store's and each sequence's
//! `peak_bytes`, the bytes behind KV reads — is exactly half the f32 one.
#![cfg(feature = "wgpu")]

use hyperscale::device::DeviceKind;
use hyperscale::generate::Decoder;
use hyperscale::kv::{CachePolicy, KvDtype, KvDtypeChoice, KvError, KvStats, KvStore, SeqId};
use hyperscale::runtime::{LoadedModel, RuntimeError};

use super::device_parity::{device_lock, fixture, max_diff};

/// Largest |logit difference| between f16 KV on wgpu and f32 KV on the
/// CPU that the tests accept (measured on the tiny fixtures: docs/gpu.md).
const F16_LOGIT_TOL: f32 = 2e-2;

/// One run: a prompt prefilled into one sequence, forked into 2 samples,
/// 8 decode steps; the last logits of each call, the samples' stats, the
/// store.
struct Run {
    logits: Vec<Vec<f32>>,
    stats: Vec<KvStats>,
    store: KvStore,
}

fn run(model: &LoadedModel, policy: &CachePolicy, prompt: &[u32]) -> Run {
    let mut store = model.policy_store(policy).expect("store");
    let seq = store.add_sequence();
    let mut logits = vec![model.prefill(&mut store, seq, prompt)];
    let seqs: Vec<SeqId> = store.fork(seq, 2);
    for step in 0..8u32 {
        let tokens = [5 + step * 31 % 500, 7 + step * 17 % 500];
        logits.push(model.decode(&mut store, &seqs, &tokens));
    }
    let stats = seqs.iter().map(|&s| store.stats(s)).collect();
    Run {
        logits,
        stats,
        store,
    }
}

#[test]
fn wgpu_f16_kv_matches_cpu_within_tolerance_at_half_the_bytes() {
    let _device = device_lock();
    let dense = CachePolicy::Dense {};
    let dms = CachePolicy::Dms {
        window: None,
        shifted: None,
    };
    let prompt: Vec<u32> = (0..28).map(|i| (i * 41 % 500 + 3) as u32).collect();
    for (name, policy) in [
        ("tiny-llama", &dense),
        ("tiny-qwen3", &dense),
        ("tiny-qwen3-dms-adapter", &dms),
        ("tiny-qwen3-dms-neuron", &dms),
    ] {
        let cpu = LoadedModel::load(&fixture(name), DeviceKind::Cpu).expect("cpu model");
        let f32s = LoadedModel::load(&fixture(name), DeviceKind::Wgpu).expect("wgpu model");
        let f16s = LoadedModel::load(&fixture(name), DeviceKind::Wgpu)
            .expect("wgpu model")
            .with_kv_dtype(KvDtypeChoice::F16)
            .expect("lavapipe has shader-f16");
        assert_eq!(cpu.kv_dtype(), KvDtype::F32);
        assert_eq!(f32s.kv_dtype(), KvDtype::F32, "auto is f32 on wgpu");
        assert_eq!(f16s.kv_dtype(), KvDtype::F16);
        let (c, w32, w16) = (
            run(&cpu, policy, &prompt),
            run(&f32s, policy, &prompt),
            run(&f16s, policy, &prompt),
        );
        let mut worst = 0.0f32;
        for (step, (a, b)) in c.logits.iter().zip(&w16.logits).enumerate() {
            let err = max_diff(a, b);
            assert!(
                err <= F16_LOGIT_TOL,
                "{name}: call {step}: f16 KV logits differ from the CPU's by {err}"
            );
            worst = worst.max(err);
        }
        let f32_err = c
            .logits
            .iter()
            .zip(&w32.logits)
            .map(|(a, b)| max_diff(a, b))
            .fold(0.0, f32::max);
        eprintln!(
            "{name}: max |logit(wgpu f16 KV) - logit(cpu)| = {worst:e} (f32 KV: {f32_err:e})"
        );

        // The same entries, counted in the stored width.
        assert_eq!(w16.store.kv_dtype(), KvDtype::F16);
        assert_eq!(2 * w16.store.entry_bytes(), w32.store.entry_bytes());
        assert_eq!(w32.store.entry_bytes(), c.store.entry_bytes());
        let (s32, s16) = (w32.store.store_stats(), w16.store.store_stats());
        assert_eq!(s16.peak_blocks, s32.peak_blocks, "{name}: same blocks");
        assert_eq!(s16.peak_resident, s32.peak_resident, "{name}: same entries");
        assert_eq!(
            2 * s16.peak_bytes,
            s32.peak_bytes,
            "{name}: store peak bytes"
        );
        assert!(s16.peak_bytes > 0);
        for (a, b) in w32.stats.iter().zip(&w16.stats) {
            assert_eq!(a.decode_reads, b.decode_reads, "{name}: reads");
            assert_eq!(a.row_len, b.row_len, "{name}: rows kept");
            assert_eq!(
                2 * b.peak_bytes,
                a.peak_bytes,
                "{name}: sequence peak bytes"
            );
            let read_bytes = |s: &KvStats, store: &KvStore| s.decode_reads * store.entry_bytes();
            assert_eq!(
                2 * read_bytes(b, &w16.store),
                read_bytes(a, &w32.store),
                "{name}: KV read bytes"
            );
        }
        if policy == &dms {
            assert!(
                w16.stats[0].compression_ratio() > 1.1,
                "{name}: DMS evicted"
            );
        }
    }
}

#[test]
fn kv_dtype_the_device_cannot_store_is_refused() {
    let _device = device_lock();
    let cpu = LoadedModel::load(&fixture("tiny-llama"), DeviceKind::Cpu).expect("cpu model");
    let err = cpu
        .with_kv_dtype(KvDtypeChoice::F16)
        .err()
        .expect("f16 on the CPU");
    assert!(matches!(err, RuntimeError::KvDtype(_)), "{err}");
    assert!(err.to_string().contains("--kv-dtype f16"), "{err}");
    let gpu = LoadedModel::load(&fixture("tiny-llama"), DeviceKind::Wgpu).expect("wgpu model");
    let err = gpu
        .with_kv_dtype(KvDtypeChoice::Bf16)
        .err()
        .expect("bf16 on wgpu");
    assert!(err.to_string().contains("no bf16"), "{err}");

    // A policy the host serves (in f32) refuses a narrower dtype it was
    // asked for, and keeps f32 under auto.
    let tova = CachePolicy::Tova {
        budget: hyperscale::kv::Budget::Tokens { tokens: 8 },
        granularity: Default::default(),
    };
    let gpu = LoadedModel::load(&fixture("tiny-llama"), DeviceKind::Wgpu).expect("wgpu model");
    assert_eq!(
        gpu.policy_store(&tova).expect("auto").kv_dtype(),
        KvDtype::F32
    );
    let gpu = gpu.with_kv_dtype(KvDtypeChoice::F16).expect("f16");
    assert!(matches!(
        gpu.policy_store(&tova),
        Err(KvError::KvDtypeOnHost { .. })
    ));
}
