//! The whole model on burn's wgpu backend (Mesa's software Vulkan here, a
//! GPU elsewhere) against the CPU: the device path — cube backend, the
//! device-resident KV store and the cubecl decode kernel — must produce the
//! CPU's logits and tokens.
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use hyperscale::device::DeviceKind;
use hyperscale::generate::{self, Decoder, Request, SamplingParams, StopCriteria};
use hyperscale::runtime::LoadedModel;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

#[test]
fn wgpu_matches_cpu_logits_and_tokens() {
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
            &[request.clone()],
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
