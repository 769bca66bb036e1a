//! `hyperscale bench decode`: prefill and decode speed per batch × context
//! next to the machine's read bandwidth, with `--profile` a breakdown of a
//! step (and on the CPU the projections measured standalone).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::bench::gemm::{self, GemmPoint};
use crate::bench::{DecodeBenchConfig, DecodePoint, bandwidth, fma_peak, run_decode_bench};
use crate::cli::BenchDecodeArgs;
use crate::device::DeviceKind;
use crate::kv::CachePolicy;
use crate::limits::{
    BatchAsk, LimitError, ModelLimits, available_memory, kept_at_least, policy_fits,
};
use crate::model::DecodeWeights;
use crate::model::kernels::isa::Isa;
use crate::model::synthetic::SyntheticSpec;
use crate::runtime::{
    BenchModel, SyntheticModel, device_max_buffer_bytes, device_read_bandwidth_gbs,
};

use super::{CommandError, as_display, inputs::load_model};

/// What was measured, and on what: the header of the tables.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeBenchSetup {
    pub model: String,
    #[serde(serialize_with = "as_display")]
    pub device: DeviceKind,
    pub threads: usize,
    /// The CPU projection kernels' instruction set (none on a GPU).
    pub cpu_kernels: Option<String>,
    pub read_bandwidth_gbs: f64,
    /// The weights' form as printed (`quantized blocks`, `f32`, `bf16`).
    pub weights: String,
    pub weight_bytes_per_step: u64,
    /// Batch 1's weight-streaming bound: bandwidth / weight bytes.
    pub roofline_tokens_per_second: f64,
    /// The CPU's f32 multiply-add peak with the same threads and the
    /// kernels' instruction set (GFLOP/s; none on a GPU): the bound of a
    /// step with many rows.
    pub fma_peak_gflops: Option<f64>,
    pub policy: CachePolicy,
}

/// `bench decode`'s result; its JSON is `--json`'s file, its `Display` the
/// printed tables (the text `bench_decode` emits piece by piece).
#[derive(Debug, Clone, Serialize)]
pub struct DecodeBenchReport {
    #[serde(flatten)]
    pub setup: DecodeBenchSetup,
    pub points: Vec<DecodePoint>,
    /// `--profile` on the CPU: the projections of each batch size measured
    /// standalone (not in the JSON).
    #[serde(skip)]
    pub gemm: BTreeMap<usize, GemmPoint>,
    #[serde(skip)]
    profile: bool,
}

impl fmt::Display for DecodeBenchSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "model {} ({:.0} MB of weights read per step, {}), device {}{}, {} threads; read bandwidth {:.1} GB/s ⇒ weight-streaming roofline {:.1} tok/s (batch 1){}",
            self.model,
            self.weight_bytes_per_step as f64 / 1e6,
            self.weights,
            self.device,
            self.cpu_kernels
                .as_ref()
                .map_or(String::new(), |i| format!(" ({i} kernels)")),
            self.threads,
            self.read_bandwidth_gbs,
            self.roofline_tokens_per_second,
            self.fma_peak_gflops.map_or(String::new(), |g| format!(
                "; f32 FMA peak {g:.0} GFLOP/s (compute roofline)"
            )),
        )?;
        writeln!(
            f,
            "| batch | context | prefill tok/s | step ms | decode tok/s | MB/token | GB/s | vs roofline | sampling ms (after the step) |"
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        let policy = serde_json::to_string(&self.policy).map_err(|_| fmt::Error)?;
        writeln!(f, "policy: {policy}")
    }
}

/// One measured point as a table row.
struct Row<'a> {
    point: &'a DecodePoint,
    gbs: f64,
}

impl fmt::Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.point;
        writeln!(
            f,
            "| {} | {} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2}× | {:.2} |",
            p.batch,
            p.context,
            p.prefill_tokens_per_second,
            p.step_ms,
            p.decode_tokens_per_second,
            p.bytes_per_token as f64 / 1e6,
            p.implied_gbs,
            p.implied_gbs / self.gbs,
            p.sampling_ms
        )
    }
}

/// `--profile`'s tables: the step broken down, then (CPU) the projections
/// against their standalone speed.
struct ProfileTables<'a>(&'a DecodeBenchReport);

impl fmt::Display for ProfileTables<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if !r.profile {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "| batch | context | step ms | projections | attention | other | sampling ms (after the step) | kernel launches/step | uploads/step (bytes) | reads = host syncs/step (bytes) |"
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for p in &r.points {
            let Some(s) = p.profile else { continue };
            let step = s.projection_ms + s.attention_ms + s.other_ms;
            let pct = |ms: f64| format!("{ms:.2} ({:.0}%)", 100.0 * ms / step);
            writeln!(
                f,
                "| {} | {} | {step:.2} | {} | {} | {} | {:.2} | {} | {} | {} |",
                p.batch,
                p.context,
                pct(s.projection_ms),
                pct(s.attention_ms),
                pct(s.other_ms),
                s.sampling_ms,
                s.launches_per_step
                    .map_or("–".into(), |n| format!("{n:.0}")),
                s.transfers_per_step.map_or("–".into(), |t| format!(
                    "{:.1} ({:.0})",
                    t.uploads, t.upload_bytes
                )),
                s.transfers_per_step.map_or("–".into(), |t| format!(
                    "{:.1} ({:.0})",
                    t.reads, t.read_bytes
                )),
            )?;
        }
        if r.setup.device != DeviceKind::Cpu {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "| batch | context | standalone projections: burn ms | project kernel ms ({}) | best GFLOP/s | decode step GFLOP/s | step / best | step / FMA peak |",
            r.setup.weights
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for p in &r.points {
            let Some(g) = r.gemm.get(&p.batch) else {
                continue;
            };
            let step_gflops = g.flops / p.step_ms / 1e6;
            writeln!(
                f,
                "| {} | {} | {:.2} | {} | {:.1} | {step_gflops:.1} | {:.0}% | {} |",
                p.batch,
                p.context,
                g.burn_ms,
                g.project_ms.map_or("–".into(), |ms| format!("{ms:.2}")),
                g.best_gflops(),
                100.0 * step_gflops / g.best_gflops(),
                r.setup.fma_peak_gflops.map_or("–".into(), |peak| format!(
                    "{:.0}%",
                    100.0 * step_gflops / peak
                )),
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for DecodeBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.setup)?;
        for point in &self.points {
            write!(
                f,
                "{}",
                Row {
                    point,
                    gbs: self.setup.read_bandwidth_gbs
                }
            )?;
        }
        write!(f, "{}", ProfileTables(self))
    }
}

/// Runs `bench decode`. `note` receives progress notes (for stderr);
/// `emit` the report's text as it is measured (the header, each row, the
/// profile tables), the same text as the report's `Display`.
pub fn bench_decode(
    args: &BenchDecodeArgs,
    note: &mut dyn FnMut(&str),
    emit: &mut dyn FnMut(&dyn fmt::Display),
) -> Result<DecodeBenchReport, CommandError> {
    if args.profile {
        // Before any device opens: cubecl reads its configuration once.
        crate::bench::launches::request();
    }
    if let Some(i) = args.batch.iter().position(|&b| b == 0) {
        return Err(CommandError::usage(format!(
            "--batch: entry {i} is 0; a batch decodes at least 1 sequence"
        )));
    }
    let policy = args.policy.to_policy().map_err(CommandError::Usage)?;
    match SyntheticSpec::parse(&args.model.model.to_string_lossy()) {
        Some(spec) => {
            let spec = spec.map_err(CommandError::Usage)?;
            args.model.device.probe()?;
            note(&format!(
                "generating seeded random weights ({:.0} MB f32)…",
                spec.config.f32_weight_bytes() as f64 / 1e6
            ));
            let model =
                SyntheticModel::load(spec, 0, args.model.device, args.model.decode_weights)?;
            measure(&model, args, policy, note, emit)
        }
        None => measure(&load_model(&args.model)?, args, policy, note, emit),
    }
}

fn measure<M: BenchModel>(
    model: &M,
    args: &BenchDecodeArgs,
    policy: CachePolicy,
    note: &mut dyn FnMut(&str),
    emit: &mut dyn FnMut(&dyn fmt::Display),
) -> Result<DecodeBenchReport, CommandError> {
    check_points(model, args, &policy)?;
    model.policy_store(&policy)?;
    let threads = rayon::current_num_threads();
    let gbs = if model.device() == DeviceKind::Cpu {
        note(&format!(
            "measuring read bandwidth (1 GiB buffer, {threads} threads)…"
        ));
        bandwidth::read_bandwidth_gbs(1 << 30, 5)
    } else {
        // 4 GiB, or the largest buffer the device allocates in one piece
        // (wgpu: 128 MiB), whichever is smaller.
        let bytes = device_max_buffer_bytes(model.device()).map_or(4 << 30, |max| max.min(4 << 30))
            as usize
            & !3;
        note(&format!(
            "measuring {} read bandwidth ({:.2} GiB buffer, sum reduction)…",
            model.device(),
            bytes as f64 / f64::from(1u32 << 30)
        ));
        device_read_bandwidth_gbs(model.device(), bytes, 5)?
    };
    let fma_peak = (model.device() == DeviceKind::Cpu).then(|| {
        note(&format!("measuring the f32 FMA peak ({threads} threads)…"));
        fma_peak::fma_peak_gflops(10_000_000, 5)
    });
    let weights = model.weight_bytes_per_step();
    let blocks = model.weights_form() == DecodeWeights::Quantized;
    let setup = DecodeBenchSetup {
        model: model.name(),
        device: model.device(),
        threads,
        // Results are bit-identical across instruction sets, the speed is
        // not (HYPERSCALE_CPU_KERNELS caps the choice).
        cpu_kernels: (model.device() == DeviceKind::Cpu).then(|| Isa::active().to_string()),
        read_bandwidth_gbs: gbs,
        weights: if blocks {
            "quantized blocks".to_string()
        } else {
            model.weights_form().to_string()
        },
        weight_bytes_per_step: weights,
        roofline_tokens_per_second: gbs * 1e9 / weights as f64,
        fma_peak_gflops: fma_peak,
        policy: policy.clone(),
    };
    emit(&setup);
    let config = DecodeBenchConfig {
        batches: args.batch.clone(),
        contexts: args.context.clone(),
        warmup_steps: args.warmup,
        steps: args.steps,
        seed: 0,
        profile: args.profile,
        distinct_prompts: args.distinct_prompts,
    };
    let new_store = || model.policy_store(&policy).expect("policy checked above");
    let points = run_decode_bench(model, weights, &config, &new_store, |point| {
        emit(&Row { point, gbs })
    });
    let mut gemm = BTreeMap::new();
    if args.profile && model.device() == DeviceKind::Cpu {
        for p in &points {
            gemm.entry(p.batch)
                .or_insert_with(|| gemm::measure(model.model_config(), p.batch, 5, blocks));
        }
    }
    let report = DecodeBenchReport {
        setup,
        points,
        gemm,
        profile: args.profile,
    };
    emit(&ProfileTables(&report));
    Ok(report)
}

/// The batches × contexts against the model's context and this machine's
/// memory, before anything is measured.
fn check_points<M: BenchModel>(
    model: &M,
    args: &BenchDecodeArgs,
    policy: &CachePolicy,
) -> Result<(), CommandError> {
    let limits = ModelLimits::of(model.model_config());
    policy_fits(policy, limits.context).map_err(|(p, e)| {
        CommandError::usage(format!("--{}: {e}", p.replace("page_size", "page-size")))
    })?;
    let decoded = (args.warmup as u64).saturating_add(args.steps.max(1) as u64);
    for &batch in &args.batch {
        for &context in &args.context {
            let context = context.max(1) as u64;
            let prompts = if args.distinct_prompts {
                batch as u64
            } else {
                1
            };
            let ask = BatchAsk {
                sequences: batch as u64,
                positions: context.saturating_add(decoded),
                kv_tokens_per_sequence: kept_at_least(policy, None, decoded),
                shared_kv_tokens: prompts.saturating_mul(kept_at_least(policy, None, context)),
                kv_on_host: model.device() == DeviceKind::Cpu,
            };
            let what = format!(
                "batch {batch} at context {context} + {decoded} decode steps (--warmup + --steps)"
            );
            limits
                .check(&ask, available_memory(), &what)
                .map_err(|e| match e {
                    LimitError::Memory { .. } if batch > 1 => {
                        CommandError::usage(format!("--batch: {e}"))
                    }
                    _ => CommandError::usage(format!("--context: {e}")),
                })?;
        }
    }
    Ok(())
}
