//! GFLOP/s of the decode projection kernels per SmolLM2-135M shape and
//! batch: [`gemv`] on f32 weights and [`block_gemv`] on Q4_1 blocks (Q8_0
//! for the lm head, as the GGUF stores it), each shape run as all of one
//! step's layers (distinct weights, so the bytes streamed are a real step's).
//!
//! `cargo bench --bench projections [-- REPEATS] [q8act]` (default 15;
//! `q8act`: only the q8act table). Prints one
//! table row per shape × batch with the median pass time and GFLOP/s of
//! each kernel instruction set the CPU runs (AVX2, AVX-512; alternated
//! within each repeat, so the machine's drift hits them alike), and a total
//! per batch (the whole step's projections). Then the same shapes on the
//! q8act kernels (`--decode-weights q8act`), one column per integer path.

use std::time::Instant;

use hyperscale::bench::gemm::projection_shapes;
use hyperscale::bench::stats::median;
use hyperscale::model::ModelConfig;
use hyperscale::model::formats::gguf::GgmlType;
use hyperscale::model::kernels::block_gemv::{self, BlockWeight};
use hyperscale::model::kernels::gemv;
use hyperscale::model::kernels::isa::Isa;
use hyperscale::model::kernels::q8act::{self, IntPath};

fn main() {
    let repeats: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    // The vector instruction sets this CPU runs; the portable path is only
    // a reference (tests), not a contender.
    let isas: Vec<Isa> = Isa::supported()
        .into_iter()
        .filter(|i| *i != Isa::Portable)
        .collect();
    let isas = if isas.is_empty() {
        vec![Isa::Portable]
    } else {
        isas
    };
    let config = ModelConfig::smollm2_135m();
    let shapes = projection_shapes(&config);
    let mut kinds: Vec<(usize, usize)> = Vec::new();
    for s in &shapes {
        if !kinds.contains(s) {
            kinds.push(*s);
        }
    }
    if std::env::args().any(|a| a == "q8act") {
        q8act_table(&config, &shapes, &kinds, repeats);
        return;
    }
    let variants: Vec<(bool, Isa)> = [false, true]
        .into_iter()
        .flat_map(|q| isas.iter().map(move |i| (q, *i)))
        .collect();
    let names: Vec<String> = variants
        .iter()
        .map(|(q, i)| format!("{} {i}", if *q { "Q4_1" } else { "f32" }))
        .collect();
    println!(
        "Medians of {repeats}, ms per pass (GFLOP/s); the variants alternate within each repeat."
    );
    println!(
        "| shape (out × in) | layers | batch | {} |",
        names.join(" | ")
    );
    println!("|---|---:|---:|{}", "---:|".repeat(names.len()));
    for batch in [1usize, 2, 4, 8, 16] {
        let mut totals = vec![0.0f64; variants.len()];
        let mut flops_all = 0.0;
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
            let mut times = vec![Vec::with_capacity(repeats + 1); variants.len()];
            for _ in 0..repeats + 1 {
                for (v, &(quantized, isa)) in variants.iter().enumerate() {
                    let start = Instant::now();
                    for l in 0..count {
                        if quantized {
                            std::hint::black_box(block_gemv::gemv_blocks_with(
                                isa, &blocks[l], &x, batch, None,
                            ));
                        } else {
                            std::hint::black_box(gemv::gemv_with(
                                isa, &f32s[l], out, inp, &x, batch, None,
                            ));
                        }
                    }
                    times[v].push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            let flops = 2.0 * (batch * out * inp * count) as f64;
            let cells: Vec<String> = times
                .iter()
                .zip(&mut totals)
                .map(|(t, total)| {
                    // The first repeat warms caches and the pool.
                    let ms = median(&t[1..]);
                    *total += ms;
                    format!("{ms:.2} ({:.1})", flops / ms / 1e6)
                })
                .collect();
            println!(
                "| {out} × {inp} | {count} | {batch} | {} |",
                cells.join(" | ")
            );
            flops_all += flops;
        }
        let cells: Vec<String> = totals
            .iter()
            .map(|ms| format!("**{ms:.2}** ({:.1})", flops_all / ms / 1e6))
            .collect();
        println!("| **all** | | {batch} | {} |", cells.join(" | "));
    }
    q8act_table(&config, &shapes, &kinds, repeats);
}

/// The same shapes on `--decode-weights q8act`'s kernels (the interleaved
/// layout), one column per integer path this CPU runs, alternated.
fn q8act_table(
    config: &ModelConfig,
    shapes: &[(usize, usize)],
    kinds: &[(usize, usize)],
    repeats: usize,
) {
    let paths: Vec<IntPath> = IntPath::supported()
        .into_iter()
        .filter(|p| *p != IntPath::Portable)
        .collect();
    if paths.is_empty() {
        return;
    }
    let names: Vec<String> = paths.iter().map(|p| format!("q8act {p:?}")).collect();
    println!();
    println!(
        "| shape (out × in) | layers | batch | {} |",
        names.join(" | ")
    );
    println!("|---|---:|---:|{}", "---:|".repeat(names.len()));
    for batch in [1usize, 2, 4, 8, 16] {
        let mut totals = vec![0.0f64; paths.len()];
        for &(out, inp) in kinds {
            let count = shapes.iter().filter(|s| **s == (out, inp)).count();
            let kind = if out == config.vocab_size {
                GgmlType::Q8_0
            } else {
                GgmlType::Q4_1
            };
            let blocks: Vec<BlockWeight> = (0..count)
                .map(|l| {
                    let bytes = (0..out * inp / 32 * kind.type_size())
                        .map(|b| ((b + l) % 251) as u8 & 0x3B)
                        .collect();
                    BlockWeight::new(kind, out, inp, bytes)
                        .expect("whole blocks")
                        .with_int8_activations(true)
                })
                .collect();
            let x: Vec<f32> = (0..batch * inp).map(|k| (k % 7) as f32 * 0.1).collect();
            let mut times = vec![Vec::with_capacity(repeats + 1); paths.len()];
            for _ in 0..repeats + 1 {
                for (v, &path) in paths.iter().enumerate() {
                    let start = Instant::now();
                    for w in &blocks {
                        std::hint::black_box(q8act::gemv_q8act_with(path, w, &x, batch, None));
                    }
                    times[v].push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            let cells: Vec<String> = times
                .iter()
                .zip(&mut totals)
                .map(|(t, total)| {
                    let ms = median(&t[1..]);
                    *total += ms;
                    format!("{ms:.2}")
                })
                .collect();
            println!(
                "| {out} × {inp} | {count} | {batch} | {} |",
                cells.join(" | ")
            );
        }
        let cells: Vec<String> = totals.iter().map(|ms| format!("**{ms:.2}**")).collect();
        println!("| **all** | | {batch} | {} |", cells.join(" | "));
    }
}
