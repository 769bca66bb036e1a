//! `hyperscale bench throughput`: dense and one cache policy side by side at
//! equal KV memory ([`crate::bench::run_throughput_bench`]).

use crate::bench::{ThroughputConfig, ThroughputReport, run_throughput_bench};
use crate::cli::BenchThroughputArgs;
use crate::kv::CachePolicy;
use crate::model::synthetic::SyntheticSpec;
use crate::runtime::{BenchModel, SyntheticModel};

use super::{CommandError, inputs::load_model};

/// Runs `bench throughput`. `note` receives the setup line and progress
/// (for stderr); the report is returned for `main` to print.
pub fn bench_throughput(
    args: &BenchThroughputArgs,
    note: &mut dyn FnMut(&str),
) -> Result<ThroughputReport, CommandError> {
    let policy = args.policy.to_policy().map_err(CommandError::Usage)?;
    let config = ThroughputConfig {
        kv_memory: args.kv_memory,
        context: args.context,
        policy,
        rounds: args.rounds,
        steps: args.steps,
        warmup_steps: args.warmup,
        seed: 0,
        distinct_prompts: args.distinct_prompts,
    };
    match SyntheticSpec::parse(&args.model.model.to_string_lossy()) {
        Some(spec) => {
            let spec = spec.map_err(CommandError::Usage)?;
            args.model.device.probe()?;
            let model =
                SyntheticModel::load(spec, 0, args.model.device, args.model.decode_weights)?;
            measure(&model, &config, note)
        }
        None => measure(&load_model(&args.model)?, &config, note),
    }
}

fn measure<M: BenchModel>(
    model: &M,
    config: &ThroughputConfig,
    note: &mut dyn FnMut(&str),
) -> Result<ThroughputReport, CommandError> {
    note(&format!(
        "model {} ({:.0} MB of weights read per step, {}), device {}, {} threads; policy {}",
        model.name(),
        model.weight_bytes_per_step() as f64 / 1e6,
        model.weights_form(),
        model.device(),
        rayon::current_num_threads(),
        serde_json::to_string(&config.policy)?,
    ));
    let new_store = |p: &CachePolicy| model.policy_store(p);
    Ok(run_throughput_bench(
        model,
        model.weight_bytes_per_step(),
        config,
        &new_store,
        |line| note(&format!("{line}…")),
    )?)
}
