//! The `hyperscale` binary: parse the command line, call the library, map
//! errors to a one-line message and a non-zero exit code.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;

use cli::{
    BenchCommand, BenchDecodeArgs, BenchParityArgs, Cli, Command, DataArgs, DataCommand,
    DataFetchArgs, EvalDmsArgs, GenerateArgs, GradeArgs, MergeArgs, SweepArgs, TasksCommand,
    TrainDataArgs, TrainDmsArgs,
};
use hyperscale::bench::{DecodeBenchConfig, bandwidth, gemm, parity, run_decode_bench};
use hyperscale::device::DeviceKind;
use hyperscale::generate::{self, Request, SamplingParams, StopCriteria, check_sampling};
use hyperscale::grade::{Grader, Regrade, Sandbox, SandboxConfig};
use hyperscale::hub;
use hyperscale::kv::CachePolicy;
use hyperscale::limits::{
    BatchAsk, LimitError, ModelLimits, available_memory, kept_at_least, policy_fits,
};
use hyperscale::model::DecodeWeights;
use hyperscale::model::isa::Isa;
use hyperscale::model::synthetic::SyntheticSpec;
use hyperscale::prompt::template::answer_region;
use hyperscale::report::{BootstrapConfig, GradeFormat, grade_report_with};
use hyperscale::runtime::{BenchModel, LoadedModel, SyntheticModel, device_read_bandwidth_gbs};
use hyperscale::sweep::{Filters, SweepOptions, wiring};
use hyperscale::task::{LoadOptions, SampleCtx, cli as task_cli};
use hyperscale::train::command::{DataSource, eval_dms, train_dms};
use hyperscale::train::distill::DistillPlan;
use hyperscale::train::{DmsTrainConfig, TrainConfig};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    init_logging();
    let result = match cli.command {
        Command::Generate(args) => run_generate(args),
        Command::Bench(BenchCommand::Decode(args)) => run_bench_decode(args),
        Command::Bench(BenchCommand::Parity(args)) => match run_bench_parity(args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Tasks(TasksCommand::List) => {
            print!("{}", task_cli::list());
            Ok(())
        }
        Command::Grade(args) => run_grade(args),
        Command::Data(DataCommand::Fetch(args)) => run_data_fetch(args),
        Command::Sweep(args) => run_sweep(args),
        Command::TrainDms(args) => run_train_dms(args),
        Command::EvalDms(args) => run_eval_dms(args),
        Command::Merge(args) => run_merge(args),
        #[cfg(feature = "report")]
        Command::Report(args) => run_report(args),
        #[cfg(feature = "report")]
        Command::Compare(args) => match run_compare(args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => {
                eprintln!("error: {}", one_line(&e));
                return ExitCode::from(2);
            }
        },
        Command::Tasks(TasksCommand::Show(args)) => (|| {
            let task = task_cli::resolve(&args.task)?;
            print!(
                "{}",
                task_cli::show(&task, &load_options(&args.data), args.limit)?
            );
            Ok(())
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the
/// message already carries (most of the library's errors print their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

fn load_options(args: &DataArgs) -> LoadOptions {
    let mut opts = LoadOptions::from_env();
    opts.data = args.data.clone();
    opts.lenient = args.lenient;
    opts.zip_password = args.password.clone();
    opts
}

/// Loads a model argument: a path, or `hf:ORG/NAME[@REV]` resolved through
/// the Hugging Face cache (downloading what is missing).
fn load_model(
    arg: &std::path::Path,
    device: DeviceKind,
    decode: DecodeWeights,
) -> Result<LoadedModel> {
    let path = match arg.to_str() {
        Some(text) => hub::resolve_model_arg(text)?,
        None => arg.to_path_buf(),
    };
    Ok(LoadedModel::load_with(&path, device, decode)?)
}

fn run_data_fetch(args: DataFetchArgs) -> Result<()> {
    let task = task_cli::resolve(&args.task)?;
    let client = hub::HubClient::from_env()?;
    let fetched = hub::block_on(hub::fetch_task_data(
        &client,
        &task,
        args.revision.as_deref(),
        args.out.as_deref(),
    ))?;
    println!(
        "{} at `{}` (commit {}):",
        fetched.repo.id,
        fetched.repo.revision,
        fetched.commit.as_deref().unwrap_or("unknown")
    );
    for path in &fetched.files {
        println!("  {}", path.display());
    }
    for path in &fetched.copies {
        println!("  copied to {}", path.display());
    }
    println!("`hyperscale tasks show {}` now finds it", task.name);
    Ok(())
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    if args.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    // The flags the user gave, before the model loads; defaults from the
    // model's generation_config.json are checked once merged.
    if args.temperature.is_some() || args.top_p.is_some() {
        check_sampling(
            args.temperature.map_or(0.0, f64::from),
            args.top_p.map_or(1.0, f64::from),
        )
        .map_err(|e| anyhow::anyhow!("--{}: {e}", e.param().replace('_', "-")))?;
    }
    let user = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("failed to read prompt file `{}`", f.display()))?,
        (None, None) => bail!("give --prompt or --prompt-file"),
    };
    let model = load_model(
        &args.model.model,
        args.model.device,
        args.model.decode_weights,
    )?;
    let prompt = model.prompt_ids(&user, args.system.as_deref(), args.raw)?;
    if prompt.is_empty() {
        bail!("--prompt: the prompt has no tokens (with --raw, give some text)");
    }
    let defaults = &model.generation;
    let sampled = defaults.do_sample.unwrap_or(false);
    let sampling = SamplingParams {
        temperature: args.temperature.unwrap_or(if sampled {
            defaults.temperature.unwrap_or(1.0) as f32
        } else {
            0.0
        }),
        top_p: args.top_p.unwrap_or(defaults.top_p.unwrap_or(1.0) as f32),
        top_k: args.top_k.unwrap_or(defaults.top_k.unwrap_or(0)),
        seed: args.seed,
    };
    check_sampling(f64::from(sampling.temperature), f64::from(sampling.top_p)).map_err(|e| {
        anyhow::anyhow!("`{}` of the model's generation_config.json: {e}", e.param())
    })?;
    check_generate_batch(&model, &args, prompt.len())?;
    let request = Request {
        prompt,
        samples: args.samples,
        first_sample: 0,
        max_tokens: args.max_tokens,
        sampling,
        stop: StopCriteria {
            eos_ids: model.tokenizer.eos_ids().to_vec(),
            stop_strings: args.stop.clone(),
        },
    };
    let policy = args.policy.to_policy().map_err(anyhow::Error::msg)?;
    let mut store = model.policy_store(&policy)?;
    let mut stdout = std::io::stdout().lock();
    let mut stream = model.tokenizer.incremental_decoder(true);
    let completions = generate::generate(&model, &model.tokenizer, &mut store, &[request], |ev| {
        if !args.json
            && ev.sample == 0
            && !model.tokenizer.eos_ids().contains(&ev.token)
            && let Ok(Some(text)) = stream.step(ev.token)
        {
            let _ = write!(stdout, "{text}");
            let _ = stdout.flush();
        }
    });
    if args.json {
        for c in &completions {
            writeln!(stdout, "{}", serde_json::to_string(c)?)?;
        }
        return Ok(());
    }
    if let Ok(rest) = stream.finish() {
        write!(stdout, "{rest}")?;
    }
    writeln!(stdout)?;
    for c in completions.iter().skip(1) {
        writeln!(stdout, "--- sample {} ---\n{}", c.sample, c.text)?;
    }
    if let Some(c) = completions.first() {
        eprintln!(
            "[{} prompt + {} generated tokens, {:?}; {:.1} tok/s decode; KV reads {}, peak resident {}]",
            c.prompt_tokens,
            c.generated_tokens,
            c.finish_reason,
            c.timing.decode_tokens_per_second,
            c.kv.decode_reads,
            c.batch_peak_resident
        );
    }
    Ok(())
}

/// `generate`'s W × L against the model's context and this machine's
/// memory, before decoding starts.
fn check_generate_batch(model: &LoadedModel, args: &GenerateArgs, prompt: usize) -> Result<()> {
    let limits = ModelLimits::of(&model.config);
    let policy = args.policy.to_policy().map_err(anyhow::Error::msg)?;
    policy_fits(&policy, limits.context)
        .map_err(|(p, e)| anyhow::anyhow!("--{}: {e}", p.replace("page_size", "page-size")))?;
    let positions = (prompt as u64).saturating_add(args.max_tokens as u64);
    let ask = BatchAsk {
        sequences: args.samples as u64,
        positions,
        kv_tokens_per_sequence: kept_at_least(&policy, None, positions)
            .saturating_sub(prompt as u64),
        shared_kv_tokens: prompt as u64,
        kv_on_host: model.device() == DeviceKind::Cpu,
    };
    let what = format!(
        "{} sample(s) of a {prompt}-token prompt + {} new tokens",
        args.samples, args.max_tokens
    );
    limits
        .check(&ask, available_memory(), &what)
        .map_err(|e| match e {
            LimitError::Memory { .. } if args.samples > 1 => anyhow::anyhow!("--samples: {e}"),
            _ => anyhow::anyhow!("--max-tokens: {e}"),
        })
}

/// `bench decode`'s batches × contexts against the model's context and this
/// machine's memory, before anything is measured.
fn check_bench_points<M: BenchModel>(model: &M, args: &BenchDecodeArgs) -> Result<()> {
    let limits = ModelLimits::of(model.model_config());
    let policy = args.policy.to_policy().map_err(anyhow::Error::msg)?;
    policy_fits(&policy, limits.context)
        .map_err(|(p, e)| anyhow::anyhow!("--{}: {e}", p.replace("page_size", "page-size")))?;
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
                kv_tokens_per_sequence: kept_at_least(&policy, None, decoded),
                shared_kv_tokens: prompts.saturating_mul(kept_at_least(&policy, None, context)),
                kv_on_host: model.device() == DeviceKind::Cpu,
            };
            let what = format!(
                "batch {batch} at context {context} + {decoded} decode steps (--warmup + --steps)"
            );
            limits
                .check(&ask, available_memory(), &what)
                .map_err(|e| match e {
                    LimitError::Memory { .. } if batch > 1 => anyhow::anyhow!("--batch: {e}"),
                    _ => anyhow::anyhow!("--context: {e}"),
                })?;
        }
    }
    Ok(())
}

fn run_bench_decode(args: BenchDecodeArgs) -> Result<()> {
    if let Some(i) = args.batch.iter().position(|&b| b == 0) {
        bail!("--batch: entry {i} is 0; a batch decodes at least 1 sequence");
    }
    let policy = args.policy.to_policy().map_err(anyhow::Error::msg)?;
    match SyntheticSpec::parse(&args.model.model.to_string_lossy()) {
        Some(spec) => {
            let spec = spec.map_err(anyhow::Error::msg)?;
            let device = args.model.device;
            device.probe()?;
            eprintln!(
                "generating seeded random weights ({:.0} MB f32)…",
                spec.config.f32_weight_bytes() as f64 / 1e6
            );
            let model = SyntheticModel::load(spec, 0, device, args.model.decode_weights)?;
            bench_decode(&model, &args, &policy)
        }
        None => {
            let model = load_model(
                &args.model.model,
                args.model.device,
                args.model.decode_weights,
            )?;
            bench_decode(&model, &args, &policy)
        }
    }
}

/// Default `bench parity` tolerance when both sides compute in f32.
const F32_PARITY_TOLERANCE: f64 = 1e-3;
/// Default tolerance for bf16 weights: both sides round the same weights and
/// activations, but a different f32 accumulation order can round a
/// projection's output to the neighbouring bf16 value (2⁻⁸ relative), and
/// that compounds over the layers.
const BF16_PARITY_TOLERANCE: f64 = 3e-2;

fn run_bench_parity(args: BenchParityArgs) -> Result<ExitCode> {
    // A NaN tolerance made every comparison pass.
    if let Some(t) = args.tolerance.filter(|t| !(t.is_finite() && *t >= 0.0)) {
        bail!("--tolerance {t}: must be a finite number >= 0");
    }
    let device = args.model.device;
    let reference_device = args.reference_device;
    // Refuse an unusable device before loading anything on the other.
    device.probe()?;
    reference_device.probe()?;
    let spec_text = args.model.model.to_string_lossy().into_owned();
    // The reference runs the candidate's resolved weight form, so the
    // comparison isolates the device (`auto` is bf16 on CUDA, blocks on CPU).
    let form;
    let report = match SyntheticSpec::parse(&spec_text) {
        Some(spec) => {
            let spec = spec.map_err(anyhow::Error::msg)?;
            let prompt: Vec<u32> = (0..args.prompt.len().max(1) as u32)
                .map(|i| 1 + (i * 7919) % (spec.config.vocab_size as u32 - 1))
                .collect();
            let candidate =
                SyntheticModel::load(spec.clone(), 0, device, args.model.decode_weights)?;
            form = candidate.weights_form();
            let reference = SyntheticModel::load(
                spec,
                0,
                reference_device,
                args.reference_weights.unwrap_or(form),
            )?;
            parity::compare_logits(&reference, &candidate, &prompt, args.steps)
        }
        None => {
            let candidate = load_model(
                &args.model.model,
                args.model.device,
                args.model.decode_weights,
            )?;
            form = candidate.weights_form();
            let reference = load_model(
                &args.model.model,
                args.reference_device,
                args.reference_weights.unwrap_or(form),
            )?;
            let prompt = reference.prompt_ids(&args.prompt, None, true)?;
            if prompt.is_empty() {
                bail!("--prompt: the prompt has no tokens");
            }
            parity::compare_logits(&reference, &candidate, &prompt, args.steps)
        }
    };
    let bf16 = form == DecodeWeights::Bf16 || args.reference_weights == Some(DecodeWeights::Bf16);
    let tolerance = args.tolerance.unwrap_or(if bf16 {
        BF16_PARITY_TOLERANCE
    } else {
        F32_PARITY_TOLERANCE
    });
    let reference_form = args
        .reference_weights
        .map_or(form.to_string(), |r| r.to_string());
    println!(
        "{spec_text}: {device} ({form} weights) against {reference_device} ({reference_form} weights), {} positions",
        report.steps.len()
    );
    println!("| step | max abs Δlogit | max abs logit | relative | argmax ref | argmax {device} |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut worst = 0.0f64;
    for s in &report.steps {
        let rel = s.max_abs_diff / s.max_abs_logit.max(1.0);
        worst = worst.max(rel);
        println!(
            "| {} | {:.3e} | {:.2} | {rel:.2e} | {} | {} |",
            s.step, s.max_abs_diff, s.max_abs_logit, s.reference_argmax, s.candidate_argmax
        );
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "model": spec_text,
            "device": device.to_string(),
            "reference_device": reference_device.to_string(),
            "weights": form.to_string(),
            "reference_weights": reference_form,
            "tolerance": tolerance,
            "worst_relative": worst,
            "report": report,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    if worst > tolerance {
        eprintln!(
            "parity FAILED: worst relative logit difference {worst:.2e} > tolerance {tolerance:.1e}"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "parity ok: worst relative difference {worst:.2e} ≤ {tolerance:.1e}; argmax agrees at {}/{} positions",
        report.argmax_agree,
        report.steps.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_decode<M: BenchModel>(
    model: &M,
    args: &BenchDecodeArgs,
    policy: &CachePolicy,
) -> Result<()> {
    let policy = policy.clone();
    check_bench_points(model, args)?;
    model.policy_store(&policy)?;
    let threads = rayon::current_num_threads();
    let gbs = if model.device() == DeviceKind::Cpu {
        eprintln!("measuring read bandwidth (1 GiB buffer, {threads} threads)…");
        bandwidth::read_bandwidth_gbs(1 << 30, 5)
    } else {
        eprintln!(
            "measuring {} read bandwidth (4 GiB buffer, sum reduction)…",
            model.device()
        );
        device_read_bandwidth_gbs(model.device(), 4 << 30, 5)?
    };
    let weights = model.weight_bytes_per_step();
    let roofline = gbs * 1e9 / weights as f64;
    let form = model.weights_form();
    let blocks = form == DecodeWeights::Quantized;
    let form = if blocks {
        "quantized blocks".to_string()
    } else {
        form.to_string()
    };
    // The CPU projection kernels' instruction set (HYPERSCALE_CPU_KERNELS
    // caps it); results are bit-identical across them, the speed is not.
    let cpu_kernels = (model.device() == DeviceKind::Cpu).then(Isa::active);
    println!(
        "model {} ({:.0} MB of weights read per step, {form}), device {}{}, {threads} threads; read bandwidth {gbs:.1} GB/s ⇒ weight-streaming roofline {roofline:.1} tok/s (batch 1)",
        model.name(),
        weights as f64 / 1e6,
        model.device(),
        cpu_kernels.map_or(String::new(), |i| format!(" ({i} kernels)")),
    );
    println!(
        "| batch | context | prefill tok/s | step ms | decode tok/s | MB/token | GB/s | vs roofline |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let config = DecodeBenchConfig {
        batches: args.batch.clone(),
        contexts: args.context.clone(),
        warmup_steps: args.warmup,
        steps: args.steps,
        seed: 0,
        profile: args.profile,
        distinct_prompts: args.distinct_prompts,
    };
    println!("policy: {}", serde_json::to_string(&policy)?);
    let new_store = || model.policy_store(&policy).expect("policy checked above");
    let points = run_decode_bench(model, weights, &config, &new_store, |p| {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2}× |",
            p.batch,
            p.context,
            p.prefill_tokens_per_second,
            p.step_ms,
            p.decode_tokens_per_second,
            p.bytes_per_token as f64 / 1e6,
            p.implied_gbs,
            p.implied_gbs / gbs
        );
    });
    if args.profile {
        println!();
        println!(
            "| batch | context | step ms | projections | attention | other | sampling ms (after the step) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        for p in &points {
            let Some(f) = p.profile else { continue };
            let step = f.projection_ms + f.attention_ms + f.other_ms;
            let pct = |ms: f64| format!("{ms:.2} ({:.0}%)", 100.0 * ms / step);
            println!(
                "| {} | {} | {step:.2} | {} | {} | {} | {:.2} |",
                p.batch,
                p.context,
                pct(f.projection_ms),
                pct(f.attention_ms),
                pct(f.other_ms),
                f.sampling_ms
            );
        }
        if model.device() == DeviceKind::Cpu {
            let config = model.model_config();
            println!();
            println!(
                "| batch | context | standalone projections: burn ms | project kernel ms ({form}) | best GFLOP/s | decode step GFLOP/s | step / best |"
            );
            println!("|---:|---:|---:|---:|---:|---:|---:|");
            let mut gemm = std::collections::BTreeMap::new();
            for p in &points {
                let g = *gemm
                    .entry(p.batch)
                    .or_insert_with(|| gemm::measure(config, p.batch, 5, blocks));
                let step_gflops = g.flops / p.step_ms / 1e6;
                println!(
                    "| {} | {} | {:.2} | {} | {:.1} | {step_gflops:.1} | {:.0}% |",
                    p.batch,
                    p.context,
                    g.burn_ms,
                    g.project_ms.map_or("–".into(), |ms| format!("{ms:.2}")),
                    g.best_gflops(),
                    100.0 * step_gflops / g.best_gflops()
                );
            }
        }
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "model": model.name(),
            "device": model.device().to_string(),
            "threads": threads,
            "cpu_kernels": cpu_kernels.map(|i| i.to_string()),
            "read_bandwidth_gbs": gbs,
            "weights": form,
            "weight_bytes_per_step": weights,
            "roofline_tokens_per_second": roofline,
            "policy": policy,
            "points": points,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    Ok(())
}

fn run_sweep(args: SweepArgs) -> Result<()> {
    let options = SweepOptions {
        filters: Filters {
            tasks: args.tasks,
            methods: args.methods,
            limit: args.limit,
        },
        dry_run: args.dry_run,
        new_run: args.new_run,
        results_dir: args.results,
        progress: args.progress.into(),
        shard: args.shard,
        keep_errors: args.keep_errors,
        unsafe_no_sandbox: args.unsafe_no_sandbox,
        ..SweepOptions::default()
    };
    let summary = wiring::run(&args.config, &options)?;
    if let Some(plan) = &summary.plan {
        print!("{plan}");
        return Ok(());
    }
    eprint!("{}", summary.describe());
    if summary.trials == 0 && !summary.skipped_groups.is_empty() {
        bail!("nothing could run: every trial of the plan was skipped");
    }
    Ok(())
}

fn run_merge(args: MergeArgs) -> Result<()> {
    let summary = hyperscale::record::merge_runs(&args.dirs, &args.out)?;
    eprint!("{}", summary.describe());
    Ok(())
}

#[cfg(feature = "report")]
fn bootstrap(args: &cli::BootstrapArgs) -> Result<BootstrapConfig> {
    if !(0.0 < args.level && args.level < 1.0) {
        bail!("--level {}: expected a value in (0, 1)", args.level);
    }
    Ok(BootstrapConfig {
        resamples: args.resamples,
        level: args.level,
        seed: args.seed,
    })
}

#[cfg(feature = "report")]
fn run_report(args: cli::ReportArgs) -> Result<()> {
    use hyperscale::report::{ReportOptions, write_report};
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let name = args
                .run
                .file_name()
                .context("the run directory has no name; give --out")?;
            std::path::Path::new("reports").join(name)
        }
    };
    let options = ReportOptions {
        bootstrap: bootstrap(&args.bootstrap)?,
        no_plots: args.no_plots,
        vote: args.vote.into(),
    };
    let files = write_report(&args.run, &out, &options)?;
    for w in &files.report.analysis.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "wrote {} files under `{}` ({} configurations, {} gains)",
        files.files.len(),
        out.display(),
        files.report.analysis.points.len(),
        files.report.analysis.gains.len()
    );
    Ok(())
}

/// Exit code: 0 pass, 1 regression, 2 incomparable (or an error).
#[cfg(feature = "report")]
fn run_compare(args: cli::CompareArgs) -> Result<u8> {
    use hyperscale::report::{Tolerances, compare_json, compare_markdown, compare_runs_with};
    let tolerances = Tolerances {
        accuracy: args.tolerance,
        budget: args.budget_tolerance,
        runtime: args.runtime_tolerance,
    };
    let c = compare_runs_with(
        &args.baseline,
        &args.candidate,
        &tolerances,
        &bootstrap(&args.bootstrap)?,
        args.vote.into(),
    )?;
    if args.format == cli::CompareFormatArg::Json {
        println!("{}", compare_json(&c));
    } else {
        print!("{}", compare_markdown(&c, false));
    }
    Ok(c.verdict.exit_code())
}

fn run_grade(args: GradeArgs) -> Result<()> {
    let task = task_cli::resolve(&args.task)?;
    let report = task.load_problems(&load_options(&args.data))?;
    let region = args.region.unwrap_or(task.answer_region);
    let problems: std::collections::HashMap<&str, &hyperscale::task::Problem> =
        report.problems.iter().map(|p| (p.id.as_str(), p)).collect();
    // Each sample against its own repeat's rendering (GPQA choice order).
    let expected = |id: &str, repeat: u32, _sample: u64| {
        problems
            .get(id)
            .and_then(|p| task.render(p, SampleCtx { repeat }).ok())
            .map(|r| r.expected)
    };
    let grader = Grader::for_task(&task.grader);
    let sandbox = match grader {
        Grader::Code { .. } => Some(Sandbox::new(SandboxConfig {
            allow_unsandboxed: args.unsafe_no_sandbox,
            ..SandboxConfig::default()
        })?),
        _ => None,
    };
    let regrade = Regrade {
        grader: &grader,
        sandbox: sandbox.as_ref(),
        expected: &expected,
        default_repeat: args.repeat,
        answer_region: &|text| answer_region(text, region),
    };
    let format = if args.json {
        GradeFormat::Json
    } else {
        GradeFormat::Text
    };
    print!(
        "{}",
        grade_report_with(
            &args.completions,
            &regrade,
            format,
            &BootstrapConfig::default(),
            args.vote.into(),
        )?
    );
    Ok(())
}

fn data_source(args: &TrainDataArgs, seed: u64) -> Result<DataSource> {
    match (&args.data, &args.self_distill) {
        (Some(path), _) => Ok(DataSource::File(path.clone())),
        (None, Some(tasks)) => Ok(DataSource::SelfDistill(DistillPlan {
            tasks: tasks.clone(),
            prompts: args.distill_prompts,
            max_tokens: args.distill_max_tokens,
            temperature: args.distill_temperature,
            seed,
        })),
        (None, None) => bail!("give --data FILE or --self-distill TASKS"),
    }
}

fn run_train_dms(args: TrainDmsArgs) -> Result<()> {
    let device = args.model.device;
    let config = TrainConfig {
        dms: DmsTrainConfig {
            variant: args.variant,
            window: args.window,
            ..DmsTrainConfig::default()
        },
        target_cr: args.target_cr,
        steps_per_cr: args.steps_per_cr,
        hold_steps: args.hold_steps,
        seq_len: args.seq_len,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        save_every: args.save_every,
        ..TrainConfig::default()
    };
    let total = config.total_steps();
    let data = data_source(&args.data, args.seed)?;
    let saved = train_dms(
        &args.model.model,
        &args.out,
        config,
        &data,
        device,
        |s| {
            eprintln!(
                "step {}/{total}  target CR {:.2}  achieved {:.2}  KL {:.4}  compression {:.4}  {:.0} tok/s",
                s.step, s.target_cr, s.achieved_cr, s.kl, s.compression_loss, s.tokens_per_second
            );
        },
        |note| eprintln!("{note}"),
    )?;
    for dir in saved {
        println!("{}", dir.display());
    }
    Ok(())
}

fn run_eval_dms(args: EvalDmsArgs) -> Result<()> {
    let data = data_source(&args.data, args.seed)?;
    let report = eval_dms(&args.model, &data, args.seq_len, args.limit, |note| {
        eprintln!("{note}")
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} sequences, {} tokens; KL to dense {:.4} nats/token; decision CR {:.2}; cache CR {:.2}",
            args.model.display(),
            report.sequences,
            report.tokens,
            report.kl,
            report.decision_cr,
            report.cache_cr
        );
    }
    Ok(())
}

/// The library logs through `tracing`; this prints it on stderr. Warnings and
/// notes carry time and level (`RUST_LOG` overrides the default `info`); a
/// sweep's `--progress log` lines are printed as they are, whatever `RUST_LOG`.
fn init_logging() {
    use tracing_subscriber::filter::{EnvFilter, filter_fn};
    use tracing_subscriber::prelude::*;
    let is_progress =
        |m: &tracing::Metadata<'_>| m.target() == hyperscale::sweep::progress::PROGRESS_TARGET;
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let notes = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(env)
        .with_filter(filter_fn(move |m| !is_progress(m)));
    let progress = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter_fn(is_progress));
    tracing_subscriber::registry()
        .with(notes)
        .with(progress)
        .init();
}
