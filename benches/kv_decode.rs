//! Decode attention over the KV store at SmolLM2-135M shapes (30 layers,
//! 9 query / 3 KV heads, head_dim 64): time per step and GB/s of KV read.
//!
//! `cargo bench --bench kv_decode [-- BATCH CONTEXT [shared]]` (defaults:
//! W = 8 and 1, context 4096; both a shared-prefix fork and independent
//! contexts, or only the fork with `shared`).

use hyperscale::bench::kv_store::{AttentionBenchConfig, run_attention_bench};

fn main() {
    let only_shared = std::env::args().any(|a| a == "shared");
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cases: Vec<(usize, usize)> = match args.as_slice() {
        [b, c] => vec![(*b, *c)],
        _ => vec![(1, 4096), (8, 4096)],
    };
    println!(
        "| batch | context | prefix | step ms (median) | step ms (min) | KV MB read/step | GB/s | threads |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (batch, context) in cases {
        for shared in [true, false] {
            if (batch == 1 || only_shared) && !shared {
                continue;
            }
            let cfg = AttentionBenchConfig::smollm2_135m(batch, context, shared);
            let r = run_attention_bench(&cfg);
            println!(
                "| {batch} | {context} | {} | {:.2} | {:.2} | {:.1} | {:.2} | {} |",
                if shared { "shared" } else { "own" },
                r.step_ms_median,
                r.step_ms_min,
                r.kv_bytes_per_step / 1e6,
                r.gb_per_s,
                r.threads
            );
        }
    }
}
