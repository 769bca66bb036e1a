//! The whole model on burn's wgpu backend (Mesa's software Vulkan here, a
//! GPU elsewhere) against the CPU: the device path — cube backend, the
//! device-resident KV store and the cubecl decode kernel — must produce the
//! CPU's logits and tokens.
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use hyperscale::device::DeviceKind;
use hyperscale::generate::{self, Decoder, Request, SamplingParams, StopCriteria};
use hyperscale::runtime::LoadedModel;

/// The profile's transfer counters are process-wide: the tests here, the
/// only ones of this binary that decode on a device, run one at a time so
/// the count of one sees no other's reads.
static DEVICE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Largest |a − b| over two equally long slices of logits.
pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub(crate) fn device_lock() -> std::sync::MutexGuard<'static, ()> {
    DEVICE.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

#[test]
fn wgpu_matches_cpu_logits_and_tokens() {
    let _device = device_lock();
    for name in ["tiny-llama", "tiny-qwen2", "tiny-qwen3"] {
        let cpu = LoadedModel::load(&fixture(name), DeviceKind::Cpu).expect("cpu model");
        let gpu = LoadedModel::load(&fixture(name), DeviceKind::Wgpu).expect("wgpu model");
        let prompt: Vec<u32> = (1..20).map(|i| (i * 37 % 300) as u32).collect();

        let mut s_cpu = cpu.new_store();
        let mut s_gpu = gpu.new_store();
        let (a, b) = (s_cpu.add_sequence(), s_gpu.add_sequence());
        let lc = cpu.prefill(&mut s_cpu, a, &prompt);
        let lg = gpu.prefill(&mut s_gpu, b, &prompt);
        let err = lc
            .iter()
            .zip(&lg)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "{name}: prefill logits differ by {err}");
        let mut tok = 5u32;
        for step in 0..6 {
            let lc = cpu.decode(&mut s_cpu, &[a], &[tok]);
            let lg = gpu.decode(&mut s_gpu, &[b], &[tok]);
            let err = lc
                .iter()
                .zip(&lg)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                err < 1e-3,
                "{name}: decode step {step} logits differ by {err}"
            );
            tok = generate::sampling::argmax(&lc);
        }

        let request = Request {
            prompt: prompt.clone(),
            samples: 3,
            first_sample: 0,
            max_tokens: 8,
            sampling: SamplingParams {
                temperature: 0.0,
                ..SamplingParams::default()
            },
            stop: StopCriteria::default(),
        };
        let on_cpu = generate::generate(
            &cpu,
            &cpu.tokenizer,
            &mut cpu.new_store(),
            std::slice::from_ref(&request),
            |_| {},
        );
        let on_gpu = generate::generate(
            &gpu,
            &gpu.tokenizer,
            &mut gpu.new_store(),
            &[request],
            |_| {},
        );
        for (c, g) in on_cpu.iter().zip(&on_gpu) {
            assert_eq!(c.token_ids, g.token_ids, "{name}: sample {}", c.sample);
            assert_eq!(
                c.kv.decode_reads, g.kv.decode_reads,
                "{name}: reads are counted the same"
            );
        }
    }
}

/// Half-precision weights on a cubecl backend: burn's cast kernels and a
/// half-precision matmul with f32 accumulation, the path `--decode-weights
/// bf16` takes on CUDA (WGSL has f16 but no bf16, so f16 stands in here).
/// The result must equal Flex's f16 path, which rounds the same operands.
#[test]
fn wgpu_half_precision_projection_matches_flex() {
    let _device = device_lock();
    use burn::backend::flex::Flex;
    use burn::prelude::*;
    use burn::tensor::{DType, FloatDType};
    use hyperscale::kv::WgpuBackend;
    use hyperscale::model::HostTensor;
    use hyperscale::model::layers::linear::Linear;

    let (out, inp, rows) = (48, 64, 3);
    let w = HostTensor {
        shape: vec![out, inp],
        data: (0..out * inp)
            .map(|i| ((i * 7919 % 251) as f32 - 125.0) / 64.0)
            .collect(),
    };
    let b = HostTensor {
        shape: vec![out],
        data: (0..out).map(|i| i as f32 / 8.0).collect(),
    };
    let x: Vec<f32> = (0..rows * inp)
        .map(|i| ((i * 104729 % 97) as f32 - 48.0) / 32.0)
        .collect();
    fn run<B: Backend>(w: &HostTensor, b: &HostTensor, x: &[f32], rows: usize) -> Vec<f32> {
        let device = Default::default();
        let lin =
            Linear::<B>::from_hf(w.clone(), Some(b.clone()), &device).with_dtype(FloatDType::F16);
        assert_eq!(lin.weight_dtype(), DType::F16);
        let x =
            Tensor::<B, 2>::from_data(TensorData::new(x.to_vec(), [rows, x.len() / rows]), &device);
        let y = lin.forward(x);
        assert_eq!(y.dtype(), DType::F32);
        y.into_data().into_vec::<f32>().unwrap()
    }
    let on_wgpu = run::<WgpuBackend>(&w, &b, &x, rows);
    let on_flex = run::<Flex>(&w, &b, &x, rows);
    // Operands are exact in f16 and sums of multiples of 2⁻¹¹ stay exact in
    // f32, so only the f16 rounding of each output can differ: ≤ 1 ulp.
    for (i, (g, c)) in on_wgpu.iter().zip(&on_flex).enumerate() {
        let ulp = half::f16::from_f32(*c).to_f32().abs() / 1024.0;
        assert!(
            (g - c).abs() <= ulp.max(1e-3),
            "output {i}: wgpu {g}, flex {c}"
        );
    }
}

/// Half-precision projections end to end on wgpu (`--decode-weights f16`,
/// the stand-in for CUDA's bf16): the fused kernels read and write the
/// projections' f16 where the composition casts, so the logits stay those
/// of the CPU's f16 weights (Flex casts, multiplies in f16 and casts back)
/// up to the f16 rounding of differently ordered sums, dense and DMS.
#[test]
fn wgpu_f16_projections_match_flex_f16() {
    let _device = device_lock();
    use hyperscale::kv::CachePolicy;
    use hyperscale::model::DecodeWeights;

    let prompt: Vec<u32> = (1..20).map(|i| (i * 37 % 300) as u32).collect();
    for (name, dms) in [
        ("tiny-qwen2", false),
        ("tiny-qwen3", false),
        ("tiny-qwen3-dms-adapter", true),
    ] {
        let load = |d| LoadedModel::load_with(&fixture(name), d, DecodeWeights::F16).unwrap();
        let (cpu, gpu) = (load(DeviceKind::Cpu), load(DeviceKind::Wgpu));
        assert_eq!(gpu.weights_form(), DecodeWeights::F16);
        let store = |m: &LoadedModel| {
            if dms {
                let policy = CachePolicy::Dms {
                    window: None,
                    shifted: None,
                };
                m.policy_store(&policy).expect("dms store")
            } else {
                m.new_store()
            }
        };
        let (mut sc, mut sg) = (store(&cpu), store(&gpu));
        let (a, b) = (sc.add_sequence(), sg.add_sequence());
        let mut lc = cpu.prefill(&mut sc, a, &prompt);
        let mut lg = gpu.prefill(&mut sg, b, &prompt);
        let v = cpu.vocab_size();
        for step in 0..6u32 {
            let (c, g) = (&lc[lc.len() - v..], &lg[lg.len() - v..]);
            let scale = c.iter().fold(1.0f32, |m, x| m.max(x.abs()));
            let err = max_diff(c, g);
            assert!(
                err <= 2e-2 * scale,
                "{name} step {step}: f16 logits differ by {err} (scale {scale})"
            );
            let tok = 5 + step * 31;
            lc = cpu.decode(&mut sc, &[a], &[tok]);
            lg = gpu.decode(&mut sg, &[b], &[tok]);
        }
        let (c, g) = (sc.stats(a), sg.stats(b));
        assert_eq!(c.row_len, g.row_len, "{name}: rows kept");
    }
}

/// DMS on the device store: the fresh prefill (burn ops under DMS's mask,
/// kept entries scattered into the pools) and batched decode with slot
/// reuse (the store places, the cubecl kernel writes and attends) give the
/// CPU's logits, row lengths, counted reads and peak; W samples forked from
/// one prompt included. A prompt continued in a second chunk runs token by
/// token on the device: the same logits, rows and reads (counted as decode
/// there; a row may hold for one step an entry no query sees any more, so
/// peaks are compared for one-shot prompts only).
#[test]
fn wgpu_dms_matches_cpu_logits_rows_and_reads() {
    let _device = device_lock();
    use hyperscale::kv::{CachePolicy, KvError, KvStore, RowId};

    let policy = CachePolicy::Dms {
        window: None,
        shifted: None,
    };
    let prompt: Vec<u32> = (0..30).map(|i| (i * 37 % 500 + 3) as u32).collect();
    for name in ["tiny-qwen3-dms-adapter", "tiny-qwen3-dms-neuron"] {
        let cpu = LoadedModel::load(&fixture(name), DeviceKind::Cpu).expect("cpu model");
        let gpu = LoadedModel::load(&fixture(name), DeviceKind::Wgpu).expect("wgpu model");
        // (chunks of the prompt) × samples forked after it.
        for (chunks, samples) in [(vec![30], 3), (vec![18, 12], 2)] {
            let mut stores: Vec<KvStore> = [&cpu, &gpu]
                .iter()
                .map(|m| m.policy_store(&policy).expect("dms store"))
                .collect();
            let mut logits = Vec::new();
            let mut seqs = Vec::new();
            let mut parents = Vec::new();
            for (m, store) in [&cpu, &gpu].into_iter().zip(&mut stores) {
                let seq = store.add_sequence();
                let mut at = 0;
                let mut last = Vec::new();
                for &c in &chunks {
                    last = m.prefill(store, seq, &prompt[at..at + c]);
                    at += c;
                }
                logits.push(last);
                parents.push(store.stats(seq));
                seqs.push(store.fork(seq, samples));
            }
            // A continued prompt is decode on the device (reads counted as
            // decode, which each forked sample starts afresh, as for dense
            // continuations): compare the parent's total.
            let total = |s: &hyperscale::kv::KvStats| s.prefill_reads + s.decode_reads;
            assert_eq!(
                total(&parents[0]),
                total(&parents[1]),
                "{name} {chunks:?}: prompt reads"
            );
            let v = cpu.vocab_size();
            let (lc, lg) = (&logits[0], &logits[1]);
            let err = max_diff(&lc[lc.len() - v..], &lg[lg.len() - v..]);
            assert!(
                err < 1e-3,
                "{name} {chunks:?}: prefill logits differ by {err}"
            );
            for step in 0..12u32 {
                let tokens: Vec<u32> = (0..samples as u32)
                    .map(|s| 5 + (step * 31 + s * 101) % 500)
                    .collect();
                let lc = cpu.decode(&mut stores[0], &seqs[0], &tokens);
                let lg = gpu.decode(&mut stores[1], &seqs[1], &tokens);
                let err = max_diff(&lc, &lg);
                assert!(
                    err < 1e-3,
                    "{name} {chunks:?}: decode step {step} differs by {err}"
                );
            }
            // The device store kept its entries in device memory.
            let row = RowId {
                seq: seqs[1][0],
                layer: 0,
                head: 0,
            };
            assert!(matches!(
                stores[1].read_row(row),
                Err(KvError::PayloadOnDevice)
            ));
            for (a, b) in seqs[0].iter().zip(&seqs[1]) {
                let (sc, sg) = (stores[0].stats(*a), stores[1].stats(*b));
                assert_eq!(sc.row_len, sg.row_len, "{name} {chunks:?}: rows kept");
                assert!(
                    sc.compression_ratio() > 1.1,
                    "{name}: DMS evicted (CR {})",
                    sc.compression_ratio()
                );
                assert_eq!(sc.decode_reads, sg.decode_reads, "{name} {chunks:?}: reads");
                if chunks.len() == 1 {
                    assert_eq!(
                        (sc.prefill_reads, sc.peak_resident),
                        (sg.prefill_reads, sg.peak_resident),
                        "{name}: prefill reads and peak"
                    );
                }
            }
        }
    }
}

/// A DMS decode step on wgpu synchronises with the host once: every
/// layer's decisions come back in the read of the logits (the store places
/// each new entry with earlier tokens' flags and takes the step's own
/// decisions after it), and the logits, rows and reads stay the CPU's. The
/// step uploads its slot tables once, every layer's placed before the
/// first layer runs.
#[test]
fn wgpu_dms_decode_reads_back_once_per_step() {
    let _device = device_lock();
    use hyperscale::kv::CachePolicy;
    use hyperscale::profile;

    let policy = CachePolicy::Dms {
        window: None,
        shifted: None,
    };
    let prompt: Vec<u32> = (0..24).map(|i| (i * 53 % 500 + 3) as u32).collect();
    for name in ["tiny-qwen3-dms-adapter", "tiny-qwen3-dms-neuron"] {
        let cpu = LoadedModel::load(&fixture(name), DeviceKind::Cpu).expect("cpu model");
        let gpu = LoadedModel::load(&fixture(name), DeviceKind::Wgpu).expect("wgpu model");
        let mut sc = cpu.policy_store(&policy).expect("dms store");
        let mut sg = gpu.policy_store(&policy).expect("dms store");
        let (a, b) = (sc.add_sequence(), sg.add_sequence());
        cpu.prefill(&mut sc, a, &prompt);
        gpu.prefill(&mut sg, b, &prompt);
        let (a, b) = (sc.fork(a, 2), sg.fork(b, 2));
        for step in 0..10u32 {
            let tokens = [5 + step * 31 % 500, 7 + step * 17 % 500];
            let lc = cpu.decode(&mut sc, &a, &tokens);
            profile::take_transfers();
            profile::set_enabled(true);
            let lg = gpu.decode(&mut sg, &b, &tokens);
            profile::set_enabled(false);
            let t = profile::take_transfers();
            assert_eq!(t.reads, 1, "{name} step {step}: host syncs");
            // The ids, the two RoPE tables, and every layer's slots, row
            // tables and slot copies in one buffer.
            assert_eq!(t.uploads, 4, "{name} step {step}: uploads");
            let err = lc
                .iter()
                .zip(&lg)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-3, "{name} step {step}: logits differ by {err}");
        }
        for (x, y) in a.iter().zip(&b) {
            let (c, g) = (sc.stats(*x), sg.stats(*y));
            assert!(c.compression_ratio() > 1.1, "{name}: DMS evicted");
            assert_eq!(
                (c.row_len, c.decode_reads),
                (g.row_len, g.decode_reads),
                "{name}: rows and reads"
            );
        }
    }
}

/// The continuous-batching scheduler on the wgpu device store: several
/// requests of different prompts and widths, fewer sequences in flight than
/// they have samples in all (so requests join and leave a running batch),
/// give the CPU's tokens and counted reads, dense and DMS.
#[test]
fn wgpu_continuous_batch_matches_cpu_tokens() {
    let _device = device_lock();
    use hyperscale::generate::{Completion, SchedulerOptions, generate_continuous};
    use hyperscale::kv::{CachePolicy, KvStore};

    fn run(m: &LoadedModel, mut store: KvStore, requests: &[Request]) -> Vec<Completion> {
        let mut done = Vec::new();
        generate_continuous(
            m,
            &m.tokenizer,
            &mut store,
            requests.to_vec(),
            SchedulerOptions {
                max_sequences: 4,
                kv_memory: None,
                keep_prior: None,
                prefill_chunk: None,
            },
            |_| {},
            |c| done.extend(c),
        );
        done.sort_by_key(|c| (c.request, c.sample));
        done
    }
    // Three prompts, W = 1, 3, 2 (6 samples for 4 places), and their
    // lengths differ so the samples end at different steps.
    let requests: Vec<Request> = [(7usize, 1usize, 9usize), (19, 3, 14), (12, 2, 11)]
        .iter()
        .enumerate()
        .map(|(r, &(len, samples, max_tokens))| Request {
            prompt: (0..len)
                .map(|i| ((i * 41 + r * 97) % 450 + 3) as u32)
                .collect(),
            samples,
            first_sample: 0,
            max_tokens,
            sampling: SamplingParams {
                temperature: 0.0,
                ..SamplingParams::default()
            },
            stop: StopCriteria::default(),
        })
        .collect();
    let dms = CachePolicy::Dms {
        window: None,
        shifted: None,
    };
    for (name, policy) in [
        ("tiny-qwen3", None),
        ("tiny-qwen3-dms-adapter", Some(&dms)),
        ("tiny-qwen3-dms-neuron", Some(&dms)),
    ] {
        let cpu = LoadedModel::load(&fixture(name), DeviceKind::Cpu).expect("cpu model");
        let gpu = LoadedModel::load(&fixture(name), DeviceKind::Wgpu).expect("wgpu model");
        let store = |m: &LoadedModel| match policy {
            Some(p) => m.policy_store(p).expect("dms store"),
            None => m.new_store(),
        };
        let on_cpu = run(&cpu, store(&cpu), &requests);
        let on_gpu = run(&gpu, store(&gpu), &requests);
        assert_eq!(on_cpu.len(), 6, "{name}: every sample completes");
        assert_eq!(on_gpu.len(), 6, "{name}: every sample completes");
        for (c, g) in on_cpu.iter().zip(&on_gpu) {
            let id = (c.request, c.sample);
            assert_eq!(id, (g.request, g.sample), "{name}: same samples");
            assert_eq!(c.token_ids, g.token_ids, "{name}: tokens of {id:?}");
            assert_eq!(
                (c.kv.decode_reads, &c.kv.row_len),
                (g.kv.decode_reads, &g.kv.row_len),
                "{name}: reads and rows of {id:?}"
            );
        }
    }
}
