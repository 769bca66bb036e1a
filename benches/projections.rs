//! GFLOP/s of the decode projection kernels per SmolLM2-135M shape and
//! batch: [`gemv`] on f32 weights and [`block_gemv`] on Q4_1 blocks (Q8_0
//! for the lm head, as the GGUF stores it), each shape run as all of one
//! step's layers (distinct weights, so the bytes streamed are a real step's).
//!
//! `cargo bench --bench projections [-- REPEATS]` (default 15). Prints one
//! table row per shape × batch with the median pass time and GFLOP/s, and a
//! total per batch (the whole step's projections).

use std::time::Instant;

use hyperscale::bench::gemm::projection_shapes;
use hyperscale::bench::stats::median;
use hyperscale::model::ModelConfig;
use hyperscale::model::block_gemv::{self, BlockWeight};
use hyperscale::model::gemv;
use hyperscale::model::gguf::GgmlType;

fn main() {
    let repeats: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let config = ModelConfig::smollm2_135m();
    let shapes = projection_shapes(&config);
    let mut kinds: Vec<(usize, usize)> = Vec::new();
    for s in &shapes {
        if !kinds.contains(s) {
            kinds.push(*s);
        }
    }
    println!(
        "| shape (out × in) | layers | batch | f32 ms | f32 GFLOP/s | Q4_1 ms | Q4_1 GFLOP/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for batch in [1usize, 2, 4, 8, 16] {
        let (mut t32, mut tq, mut flops_all) = (0.0, 0.0, 0.0);
        for &(out, inp) in &kinds {
            let count = shapes.iter().filter(|s| **s == (out, inp)).count();
            let lm_head = out == config.vocab_size;
            let kind = if lm_head {
                GgmlType::Q8_0
            } else {
                GgmlType::Q4_1
            };
            let f32s: Vec<Vec<f32>> = (0..count)
                .map(|l| {
                    (0..out * inp)
                        .map(|k| (((k + l) % 13) as f32 - 6.0) * 1e-3)
                        .collect()
                })
                .collect();
            let blocks: Vec<BlockWeight> = (0..count)
                .map(|l| {
                    let bytes = (0..out * inp / 32 * kind.type_size())
                        .map(|b| ((b + l) % 251) as u8 & 0x3B)
                        .collect();
                    BlockWeight::new(kind, out, inp, bytes).expect("whole blocks")
                })
                .collect();
            let x: Vec<f32> = (0..batch * inp).map(|k| (k % 7) as f32 * 0.1).collect();
            let time = |f: &dyn Fn(usize)| {
                let mut times = Vec::with_capacity(repeats + 1);
                for _ in 0..repeats + 1 {
                    let start = Instant::now();
                    for l in 0..count {
                        f(l);
                    }
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                }
                median(&times[1..])
            };
            let a = time(&|l| {
                std::hint::black_box(gemv::gemv(&f32s[l], out, inp, &x, batch, None));
            });
            let b = time(&|l| {
                std::hint::black_box(block_gemv::gemv_blocks(&blocks[l], &x, batch, None));
            });
            let flops = 2.0 * (batch * out * inp * count) as f64;
            println!(
                "| {out} × {inp} | {count} | {batch} | {a:.2} | {:.1} | {b:.2} | {:.1} |",
                flops / a / 1e6,
                flops / b / 1e6
            );
            t32 += a;
            tq += b;
            flops_all += flops;
        }
        println!(
            "| **all** | | {batch} | {t32:.2} | {:.1} | {tq:.2} | {:.1} |",
            flops_all / t32 / 1e6,
            flops_all / tq / 1e6
        );
    }
}
