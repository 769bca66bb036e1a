//! The machine's f32 GEMM throughput on a model's decode shapes: every
//! projection of one decode step (all layers' fused QKV, output, fused
//! gate/up and down projections, and the lm head) run standalone on
//! `[batch, in]` activations, with distinct weights per layer so the pass
//! streams the same bytes a real step does. Timed twice — burn-flex's GEMM
//! and the project's decode kernel (≤ 16 rows: [`crate::model::kernels::gemv`] on f32
//! weights, or [`crate::model::kernels::block_gemv`] on Q4_1 blocks with a Q8_0 lm
//! head when the model decodes from blocks) — so `bench decode --profile`
//! can state the step's throughput as a fraction of the best this machine
//! does on exactly those products.

use std::time::Instant;

use burn::backend::flex::Flex;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::stats::median;
use crate::model::ModelConfig;
use crate::model::formats::gguf::GgmlType;
use crate::model::kernels::block_gemv::{self, BlockWeight};
use crate::model::kernels::gemv;

/// One batch size's standalone projection pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GemmPoint {
    pub batch: usize,
    /// `2 · batch · Σ out·in` over the step's projections.
    pub flops: f64,
    /// Median pass time through burn-flex's matmul.
    pub burn_ms: f64,
    /// Median pass time through the project kernel (`None` above its rows).
    pub project_ms: Option<f64>,
    /// Whether the project kernel read Q4_1/Q8_0 blocks rather than f32.
    #[serde(default)]
    pub blocks: bool,
}

impl GemmPoint {
    /// The faster of the two, in GFLOP/s.
    pub fn best_gflops(&self) -> f64 {
        let ms = self
            .project_ms
            .map_or(self.burn_ms, |p| p.min(self.burn_ms));
        self.flops / ms / 1e6
    }
}

/// `(out, in)` of every projection of one decode step, in execution order.
pub fn projection_shapes(c: &ModelConfig) -> Vec<(usize, usize)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let (q, kv) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
    let mut shapes = Vec::with_capacity(4 * c.num_layers + 1);
    for _ in 0..c.num_layers {
        shapes.extend([(q + 2 * kv, h), (h, q), (2 * i, h), (h, i)]);
    }
    shapes.push((c.vocab_size, h));
    shapes
}

/// Time the standalone projection pass of `config` at `batch` rows,
/// `repeats` times after one warm-up pass; with `blocks`, the project
/// kernel reads Q4_1 blocks (Q8_0 for the lm head), as SmolLM2's GGUF
/// stores them.
pub fn measure(config: &ModelConfig, batch: usize, repeats: usize, blocks: bool) -> GemmPoint {
    let device = Default::default();
    let shapes = projection_shapes(config);
    // `[in, out]` transposed views of `[out, in]` storage, as the model
    // keeps its weights; small non-zero values.
    let weights: Vec<Tensor<Flex, 2>> = shapes
        .iter()
        .map(|&(out, inp)| {
            let data: Vec<f32> = (0..out * inp)
                .map(|k| ((k % 13) as f32 - 6.0) * 1e-3)
                .collect();
            Tensor::<Flex, 2>::from_data(TensorData::new(data, [out, inp]), &device).transpose()
        })
        .collect();
    let inputs: Vec<Tensor<Flex, 2>> = shapes
        .iter()
        .map(|&(_, inp)| Tensor::<Flex, 2>::ones([batch, inp], &device))
        .collect();
    /// One way of computing `x · wᵀ`: (x [batch, in], w [out, in]) → [batch, out].
    type Product = dyn Fn(&Tensor<Flex, 2>, &Tensor<Flex, 2>) -> Tensor<Flex, 2>;
    let time = |f: &Product| {
        let mut times = Vec::with_capacity(repeats + 1);
        for _ in 0..repeats.max(1) + 1 {
            let start = Instant::now();
            for (x, w) in inputs.iter().zip(&weights) {
                std::hint::black_box(f(x, w));
            }
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        median(&times[1..])
    };
    let burn_ms = time(&|x, w| x.clone().matmul(w.clone()));
    let project_ms = match (batch <= gemv::MAX_ROWS, blocks) {
        (false, _) => None,
        (true, false) => Some(time(&|x, w| {
            gemv::flex_linear(x, w, None).expect("Flex, ≤ MAX_ROWS rows, model layout")
        })),
        (true, true) => {
            let last = shapes.len() - 1;
            let quantized: Vec<BlockWeight> = shapes
                .iter()
                .enumerate()
                .map(|(k, &(out, inp))| {
                    let kind = if k == last {
                        GgmlType::Q8_0
                    } else {
                        GgmlType::Q4_1
                    };
                    let bytes = (0..out * inp / 32 * kind.type_size())
                        .map(|b| (b % 251) as u8 & 0x3B)
                        .collect();
                    BlockWeight::new(kind, out, inp, bytes).expect("whole blocks")
                })
                .collect();
            let xs: Vec<Vec<f32>> = shapes
                .iter()
                .map(|&(_, inp)| vec![1.0; batch * inp])
                .collect();
            let mut times = Vec::with_capacity(repeats + 1);
            for _ in 0..repeats.max(1) + 1 {
                let start = Instant::now();
                for (x, w) in xs.iter().zip(&quantized) {
                    std::hint::black_box(block_gemv::gemv_blocks(w, x, batch, None));
                }
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
            Some(median(&times[1..]))
        }
    };
    let macs: usize = shapes.iter().map(|(o, i)| o * i).sum();
    GemmPoint {
        batch,
        flops: 2.0 * (batch * macs) as f64,
        burn_ms,
        project_ms,
        blocks: blocks && project_ms.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_cover_the_step_weights() {
        let c = ModelConfig::smollm2_135m();
        let macs: u64 = projection_shapes(&c)
            .iter()
            .map(|&(o, i)| (o * i) as u64)
            .sum();
        // Everything but the norms (tied head counted once, as the step reads it).
        let norms = (c.hidden_size * (2 * c.num_layers + 1)) as u64;
        assert_eq!(4 * (macs + norms), c.f32_weight_bytes());
    }

    #[test]
    fn measures_both_paths_on_a_small_model() {
        let mut c = ModelConfig::smollm2_135m();
        c.num_layers = 1;
        c.vocab_size = 64;
        for blocks in [false, true] {
            let p = measure(&c, 2, 1, blocks);
            assert!(p.burn_ms > 0.0 && p.project_ms.is_some_and(|ms| ms > 0.0));
            assert_eq!(p.blocks, blocks);
            assert!(
                measure(&c, gemv::MAX_ROWS + 1, 1, blocks)
                    .project_ms
                    .is_none()
            );
        }
    }
}
