//! Decode step time vs resident entries per cache policy at SmolLM2-135M
//! attention shapes, W samples forked from one prompt.
//!
//! `cargo bench --bench kv_policy [-- CONTEXT BATCH CR]` (defaults: 4096, 8,
//! 8). Prints one table row per policy; the prefill of the prompt under the
//! policy (an O(T²) CPU attention for the scored policies) is not timed in
//! the step.

use hyperscale::bench::kv_policy::{PolicyBenchConfig, run_policy_bench};
use hyperscale::kv::{Budget, CachePolicy, QUEST_DENSE_LAYERS, QuestGranularity, TovaGranularity};

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (context, batch, cr) = match args.as_slice() {
        [c, b, r] => (*c as usize, *b as usize, *r),
        _ => (4096, 8, 8.0),
    };
    let budget = Budget::Ratio { cr, min_tokens: 64 };
    let policies = [
        CachePolicy::Dense {},
        CachePolicy::Dms {
            window: None,
            shifted: None,
        },
        CachePolicy::Window { sink: 4, budget },
        CachePolicy::Tova {
            budget,
            granularity: TovaGranularity::Layer,
        },
        CachePolicy::H2o { recent: 64, budget },
        CachePolicy::Quest {
            page_size: 16,
            budget,
            granularity: QuestGranularity::QueryHead,
            dense_layers: QUEST_DENSE_LAYERS,
        },
    ];
    println!("context {context}, W = {batch}, CR {cr}");
    println!(
        "| policy | step ms (median) | step ms (min) | entries/row | reads/step | store peak | Σ sample peaks | prefill s | threads |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for policy in policies {
        let cfg = PolicyBenchConfig::smollm2_135m(policy, cr, batch, context);
        let r = run_policy_bench(&cfg);
        println!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.0} | {} | {} | {:.1} | {} |",
            r.method,
            r.step_ms_median,
            r.step_ms_min,
            r.resident_per_row,
            r.reads_per_step,
            r.peak_resident,
            r.sample_peak_sum,
            r.prefill_seconds,
            r.threads
        );
    }
}
