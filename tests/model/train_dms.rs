//! DMS retrofitting on the tiny fixtures (tests/fixtures/models, written by
//! scripts/make_dms_fixtures.py): gradients reach only the decision
//! parameters; at a target CR of 1 the loss stays ~0 and decisions keep;
//! the training-time attention with hard decisions equals the inference
//! path under the DMS policy; a few seeded steps lower the loss; an adapter
//! checkpoint loads back through `open_model` with no other flags.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::backend::flex::Flex;
use burn::prelude::*;
use hyperscale::kv::{CachePolicy, KvStore};
use hyperscale::model::{DmsDecision, ModelConfig, Transformer, open_model};
use hyperscale::train::checkpoint::{BaseModel, CheckpointInfo, save_checkpoint};
use hyperscale::train::forward::{Mode, forward};
use hyperscale::train::loss::{compression_loss, evicted_fraction, kl_student_teacher};
use hyperscale::train::noise::{logistic_noise, sample_seed, step_seed};
use hyperscale::train::{
    DecisionParams, DmsTrainConfig, FrozenModel, TrainConfig, Trainer, Variant,
};

type A = Autodiff<Flex>;

const PROMPT: [u32; 24] = [
    1, 17, 99, 240, 3, 45, 311, 8, 77, 5, 130, 64, 12, 400, 256, 31, 7, 88, 190, 2, 46, 301, 11, 95,
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn dms_config(window: usize, variant: Variant) -> DmsTrainConfig {
    DmsTrainConfig {
        variant,
        window,
        ..DmsTrainConfig::default()
    }
}

fn values<const D: usize, B: Backend>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn tiny(variant: Variant) -> (ModelConfig, FrozenModel<A>, DecisionParams<A>) {
    let source = open_model(&fixture("tiny-qwen3")).expect("fixture");
    let dev = Default::default();
    let base = FrozenModel::<A>::load(&source.config, source.weights.as_ref(), &dev).expect("base");
    let params =
        DecisionParams::<A>::load_or_init(variant, &source.config, source.weights.as_ref(), &dev)
            .expect("params");
    (source.config, base, params)
}

/// Backward through the relaxed student reaches every decision parameter
/// (with a non-zero gradient on the projections) and no base weight.
#[test]
fn gradients_reach_only_the_decision_parameters() {
    for variant in [Variant::Adapter, Variant::Neuron] {
        let (cfg, base, params) = tiny(variant);
        let dms = dms_config(4, variant);
        let noise = logistic_noise::<A>(
            step_seed(0, 0),
            cfg.num_layers,
            PROMPT.len(),
            cfg.num_kv_heads,
            &base.device,
        );
        let teacher = forward(&base, &params, &dms, &PROMPT, &Mode::Teacher);
        let student = forward(
            &base,
            &params,
            &dms,
            &PROMPT,
            &Mode::Relaxed { noise, tau: 0.1 },
        );
        let mask = vec![true; PROMPT.len()];
        let loss = kl_student_teacher(student.logits, teacher.logits, &mask)
            + compression_loss(evicted_fraction(&student.z), 0.5);
        let grads = loss.backward();
        assert!(
            base.embed.grad(&grads).is_none(),
            "{variant:?}: embedding got a gradient"
        );
        assert!(!base.embed.is_require_grad());
        for (i, p) in params.proj.iter().enumerate() {
            let g = values(p.val().grad(&grads).expect("projection gradient"));
            let norm: f32 = g.iter().map(|x| x * x).sum();
            println!("{variant:?} layer {i}: |grad proj|² = {norm:.3e}");
            assert!(norm > 0.0, "{variant:?} layer {i}: zero gradient");
        }
        for p in &params.norm {
            assert!(p.val().grad(&grads).is_some(), "adapter norm gradient");
        }
    }
}

/// Target CR 1: the compression loss is 0, the KL ~0 (only a rare noise
/// sample above the offset, P = σ(−5) ≈ 0.7% per decision, masks a key),
/// and after a few steps every inference decision is still "keep"
/// (hard-mode logits equal the teacher's).
#[test]
fn target_cr_one_keeps_everything() {
    let source = open_model(&fixture("tiny-qwen3")).expect("fixture");
    let config = TrainConfig {
        dms: dms_config(4, Variant::Adapter),
        target_cr: 1.0,
        hold_steps: 4,
        seq_len: PROMPT.len(),
        lr: 3e-5,
        ..TrainConfig::default()
    };
    let mut t = Trainer::<A>::new(
        config,
        &source.config,
        source.weights.as_ref(),
        &Default::default(),
    )
    .expect("trainer");
    let mut total = 0.0;
    for _ in 0..4 {
        let log = t.step(&PROMPT, &vec![true; PROMPT.len()]);
        println!("{log:?}");
        assert_eq!(log.compression_loss, 0.0);
        assert!(log.loss < 0.1, "loss {}", log.loss);
        total += log.loss;
    }
    assert!(total / 4.0 < 0.02, "mean loss {}", total / 4.0);
    let hard = forward(&t.base, &t.params, &t.config.dms, &PROMPT, &Mode::Hard);
    let teacher = forward(&t.base, &t.params, &t.config.dms, &PROMPT, &Mode::Teacher);
    for z in &hard.z {
        assert!(
            values(z.clone()).iter().all(|&l| l < 0.0),
            "a decision evicts"
        );
    }
    let err = max_abs_diff(&values(hard.logits), &values(teacher.logits));
    assert_eq!(err, 0.0, "all-keep student equals the teacher");
}

/// With hard 0/1 decisions the training attention gives the inference
/// path's logits (prefill under the DMS policy) on the conformance data,
/// both variants, with real evictions.
#[test]
fn hard_decisions_equal_the_inference_path() {
    const TOL: f32 = 1e-4;
    for (name, variant) in [
        ("tiny-qwen3-dms-adapter", Variant::Adapter),
        ("tiny-qwen3-dms-neuron", Variant::Neuron),
    ] {
        let source = open_model(&fixture(name)).expect("fixture");
        let dms_cfg = source.config.dms.clone().expect("dms");
        assert_eq!(
            dms_cfg.decision == DmsDecision::Adapter,
            variant == Variant::Adapter
        );
        let dev = Default::default();
        let model = Transformer::<Flex>::load(&source.config, source.weights.as_ref(), &dev)
            .expect("inference model");
        let policy = CachePolicy::Dms {
            window: None,
            shifted: None,
        };
        let mut store =
            KvStore::with_policy(model.kv_shape(), &policy, model.dms_params()).expect("dms store");
        let seq = store.add_sequence();
        let want = values(model.prefill(&mut store, seq, &PROMPT));

        let base =
            FrozenModel::<Flex>::load(&source.config, source.weights.as_ref(), &dev).expect("base");
        let params = DecisionParams::<Flex>::load_or_init(
            variant,
            &source.config,
            source.weights.as_ref(),
            &dev,
        )
        .expect("params");
        let dms = DmsTrainConfig {
            variant,
            window: dms_cfg.window,
            alpha_scale: dms_cfg.alpha_scale,
            alpha_offset: dms_cfg.alpha_offset,
            ..DmsTrainConfig::default()
        };
        let out = forward(&base, &params, &dms, &PROMPT, &Mode::Hard);
        let evicts: usize = out
            .z
            .iter()
            .map(|z| values(z.clone()).iter().filter(|&&l| l > 0.0).count())
            .sum();
        let got = values(out.logits);
        let err = max_abs_diff(&got, &want);
        let dense = values(forward(&base, &params, &dms, &PROMPT, &Mode::Teacher).logits);
        let moved = max_abs_diff(&dense, &want);
        println!(
            "{name}: {evicts} evictions; hard vs inference {err:.2e}; dense vs inference {moved:.2e}"
        );
        assert!(evicts > 0, "{name}: the conformance data must evict");
        assert!(moved > 1e-2, "{name}: eviction must change the logits");
        assert!(err <= TOL, "{name}: {err}");
    }
}

/// Seeded steps at a fixed target (CR 2 from step 1) lower the loss.
#[test]
fn a_few_steps_lower_the_loss() {
    let source = open_model(&fixture("tiny-qwen3")).expect("fixture");
    let config = TrainConfig {
        dms: dms_config(4, Variant::Adapter),
        target_cr: 2.0,
        steps_per_cr: 1,
        hold_steps: 30,
        seq_len: PROMPT.len(),
        lr: 1e-3,
        seed: 3,
        ..TrainConfig::default()
    };
    let mut t = Trainer::<A>::new(
        config,
        &source.config,
        source.weights.as_ref(),
        &Default::default(),
    )
    .expect("trainer");
    let mask = vec![true; PROMPT.len()];
    let losses: Vec<f64> = (0..24).map(|_| t.step(&PROMPT, &mask).loss).collect();
    println!("losses {losses:?}");
    let early = losses[1];
    let late = losses[20..].iter().sum::<f64>() / 4.0;
    assert!(late < 0.5 * early, "loss {early} -> {late}");
}

/// A batch of two sequences updates along the mean of their gradients,
/// each under its own noise stream: AdamW's first update is −lr·sign(ĝ)
/// wherever the gradient is clearly non-zero, so its signs must be those of
/// the mean of the two gradients computed by hand, including where the two
/// sequences pull opposite ways.
#[test]
fn a_batch_follows_the_mean_gradient_of_its_sequences() {
    let source = open_model(&fixture("tiny-qwen3")).expect("fixture");
    let dms = dms_config(4, Variant::Adapter);
    let config = TrainConfig {
        dms: dms.clone(),
        target_cr: 2.0,
        steps_per_cr: 1,
        seq_len: PROMPT.len(),
        batch: 2,
        lr: 1e-3,
        seed: 5,
        ..TrainConfig::default()
    };
    let second: Vec<u32> = PROMPT.iter().rev().copied().collect();
    let mask = vec![true; PROMPT.len()];
    // By hand: per-sequence gradients of the first layer's projection.
    let (cfg, base, params) = tiny(Variant::Adapter);
    let target = config.target_fraction(0);
    let grad_of = |tokens: &[u32], sample: usize| {
        let noise = logistic_noise::<A>(
            sample_seed(5, 0, sample),
            cfg.num_layers,
            tokens.len(),
            cfg.num_kv_heads,
            &base.device,
        );
        let teacher = forward(&base, &params, &dms, tokens, &Mode::Teacher);
        let student = forward(
            &base,
            &params,
            &dms,
            tokens,
            &Mode::Relaxed {
                noise,
                tau: dms.tau,
            },
        );
        let loss = kl_student_teacher(student.logits, teacher.logits.detach(), &mask)
            + compression_loss(evicted_fraction(&student.z), target);
        let grads = loss.backward();
        values(params.proj[0].val().grad(&grads).expect("gradient"))
    };
    let (g1, g2) = (grad_of(&PROMPT, 0), grad_of(&second, 1));
    let mean: Vec<f32> = g1.iter().zip(&g2).map(|(a, b)| (a + b) / 2.0).collect();
    // The trainer's update on the same batch.
    let mut t = Trainer::<A>::new(
        config,
        &source.config,
        source.weights.as_ref(),
        &base.device,
    )
    .expect("trainer");
    let before = values(t.params.proj[0].val());
    let log = t.step_batch(&[(&PROMPT, &mask), (&second, &mask)]);
    assert_eq!(log.tokens, 2 * PROMPT.len());
    let after = values(t.params.proj[0].val());
    // Clipping rescales the whole tensor, so compare against the largest.
    let scale = mean.iter().fold(0f32, |m, g| m.max(g.abs()));
    assert!(scale > 0.0, "no gradient");
    let (mut checked, mut opposed) = (0, 0);
    for i in 0..mean.len() {
        if mean[i].abs() < 1e-2 * scale {
            continue;
        }
        let step = after[i] - before[i];
        assert!(
            step * mean[i] < 0.0,
            "element {i}: update {step} against mean gradient {} ({} and {})",
            mean[i],
            g1[i],
            g2[i]
        );
        checked += 1;
        if g1[i] * g2[i] < 0.0 {
            opposed += 1;
        }
    }
    println!("{checked} elements checked, {opposed} where the sequences disagree");
    assert!(
        checked > 10 && opposed > 0,
        "{checked} checked, {opposed} opposed"
    );
}

/// An adapter checkpoint over a base file loads through `open_model` with
/// its DMS fields and reproduces the trained decisions; a wrong hash is a
/// clear error.
#[test]
fn adapter_checkpoint_loads_back_over_its_base() {
    // The tiny fixture is a directory, so exercise the adapter path with
    // the real GGUF when present, else with a stand-in "base file".
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.is_file(),
        "missing {} — run scripts/setup.sh",
        gguf.display()
    );
    let source = open_model(&gguf).expect("gguf");
    let dev = Default::default();
    let mut params = DecisionParams::<Flex>::load_or_init(
        Variant::Adapter,
        &source.config,
        source.weights.as_ref(),
        &dev,
    )
    .expect("params");
    // A recognisable adapter: layer 0's projection all 0.25.
    let [kv, hidden] = params.proj[0].val().dims();
    params.proj[0] = burn::module::Param::from_tensor(Tensor::full([kv, hidden], 0.25, &dev));
    let dir = tempfile::tempdir().expect("tempdir");
    let base = BaseModel::describe(&gguf, source.format).expect("describe");
    let config = TrainConfig {
        dms: dms_config(32, Variant::Adapter),
        ..TrainConfig::default()
    };
    let info = CheckpointInfo {
        step: 7,
        cr: 2.0,
        config: &config,
    };
    let out = dir.path().join("adapter");
    save_checkpoint(
        &out,
        &base,
        &source.config,
        source.weights.as_ref(),
        &params,
        &info,
    )
    .expect("save");
    // Base resolution: `models/` beside an ancestor of the adapter does not
    // exist in a tempdir, so place a link next to the adapter.
    std::os::unix::fs::symlink(&gguf, out.join("SmolLM2-135M-Instruct.Q4_1.gguf")).expect("link");
    let back = open_model(&out).expect("adapter opens");
    let dms = back.config.dms.clone().expect("dms fields");
    assert_eq!(
        (dms.window, dms.cr, dms.decision),
        (32, Some(2.0), DmsDecision::Adapter)
    );
    let w = back
        .weights
        .load("model.layers.0.self_attn.dms_proj_alpha.weight")
        .expect("adapter tensor");
    assert!(w.data.iter().all(|&x| x == 0.25));
    assert!(back.weights.contains("model.embed_tokens.weight"));
    let model =
        Transformer::<Flex>::load(&back.config, back.weights.as_ref(), &dev).expect("loads");
    assert!(model.dms_params().is_some());
    // A different hash is refused with both hashes named.
    let cfg_path = out.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).expect("config");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["dms_base"]["sha256"] = "00".repeat(32).into();
    std::fs::write(&cfg_path, v.to_string()).expect("write");
    let err = open_model(&out).expect_err("hash differs").to_string();
    assert!(
        err.contains("sha256") && err.contains(&"00".repeat(32)),
        "{err}"
    );
}

/// `hyperscale train-dms` on the tiny Hugging Face fixture with a text
/// file: one JSONL log line per step, a `cr2/` checkpoint that is a full
/// Hugging Face directory with the `dms_*` fields and adapter tensors, and
/// `eval-dms` on it.
#[test]
fn train_dms_command_writes_loadable_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("text.txt");
    std::fs::write(
        &data,
        "the quick brown fox jumps over the lazy dog. ".repeat(20),
    )
    .expect("data");
    let out = dir.path().join("run");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(["train-dms", "--model"])
        .arg(fixture("tiny-qwen3"))
        .arg("--out")
        .arg(&out)
        .args([
            "--target-cr",
            "2",
            "--steps-per-cr",
            "2",
            "--hold-steps",
            "2",
        ])
        .args(["--window", "4", "--seq-len", "16", "--lr", "1e-3", "--data"])
        .arg(&data)
        .status()
        .expect("runs");
    assert!(status.success());
    let log = std::fs::read_to_string(out.join("train_log.jsonl")).expect("log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    let targets: Vec<f64> = lines
        .iter()
        .map(|l| l["target_cr"].as_f64().expect("cr"))
        .collect();
    assert_eq!(targets, vec![1.0, 1.5, 2.0, 2.0]);
    for key in ["kl", "compression_loss", "achieved_cr", "tokens_per_second"] {
        assert!(lines[0][key].is_number(), "{key}");
    }
    let ckpt = out.join("cr2");
    let source = open_model(&ckpt).expect("checkpoint opens");
    let dms = source.config.dms.clone().expect("dms fields");
    assert_eq!(
        (dms.window, dms.decision, dms.cr),
        (4, DmsDecision::Adapter, Some(2.0))
    );
    assert!(
        source
            .weights
            .contains("model.layers.1.self_attn.dms_proj_alpha.weight")
    );
    assert!(ckpt.join("tokenizer.json").is_file());
    let model =
        Transformer::<Flex>::load(&source.config, source.weights.as_ref(), &Default::default())
            .expect("loads for inference");
    assert!(model.dms_params().is_some());
    assert!(out.join("final").join("config.json").is_file());
    let eval = std::process::Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(["eval-dms", "--json", "--seq-len", "16", "--model"])
        .arg(&ckpt)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("eval runs");
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).expect("json report");
    assert!(report["kl"].as_f64().expect("kl") >= 0.0);
    assert!(report["cache_cr"].as_f64().expect("cr") >= 1.0);
}

/// The committed SmolLM2 adapters open with no other input than their
/// directory (the base found in `models/` by name and sha256) and carry the
/// CR they were trained for.
#[test]
fn shipped_adapters_load_with_no_flags() {
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.is_file(),
        "missing {} — run scripts/setup.sh",
        gguf.display()
    );
    for cr in [2u32, 4, 8] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("adapters/smollm2-135m-instruct-dms-cr{cr}"));
        let source = open_model(&dir).expect("adapter opens");
        let dms = source.config.dms.clone().expect("dms fields");
        assert_eq!(
            (dms.window, dms.cr, dms.decision),
            (16, Some(f64::from(cr)), DmsDecision::Adapter)
        );
        assert!(
            source
                .weights
                .contains("model.layers.29.self_attn.dms_proj_alpha.weight")
        );
    }
}

/// Regression (gradients were clipped per tensor, not by their global norm
/// as the reference's HF Trainer does with `max_grad_norm = 1.0`): a norm
/// gradient (3, 0) and a projection gradient (0, 4) have a global norm of
/// 5, so both scale by 1/5 — per-tensor clipping would make them (1, 0) and
/// (0, 1); below the threshold nothing changes.
#[test]
fn gradients_clip_by_the_global_norm_not_per_tensor() {
    use burn::module::Param;
    use burn::optim::GradientsParams;
    use hyperscale::train::trainer::clip_global_norm;
    type Inner = Flex;
    let device = Default::default();
    let params = DecisionParams::<A> {
        norm: vec![Param::from_tensor(Tensor::from_floats([0.0, 0.0], &device))],
        proj: vec![Param::from_tensor(Tensor::from_floats(
            [[0.0, 0.0]],
            &device,
        ))],
        bias: vec![],
    };
    let grads = |scale: f32| {
        let mut g = GradientsParams::new();
        g.register(
            params.norm[0].id,
            Tensor::<Inner, 1>::from_floats([3.0 * scale, 0.0], &device),
        );
        g.register(
            params.proj[0].id,
            Tensor::<Inner, 2>::from_floats([[0.0, 4.0 * scale]], &device),
        );
        g
    };
    let mut g = grads(1.0);
    let norm = clip_global_norm(&mut g, &params, 1.0);
    assert!((norm - 5.0).abs() < 1e-6, "{norm}");
    let n = values(g.get::<Inner, 1>(params.norm[0].id).expect("norm grad"));
    let p = values(g.get::<Inner, 2>(params.proj[0].id).expect("proj grad"));
    assert!(max_abs_diff(&n, &[0.6, 0.0]) < 1e-6, "{n:?}");
    assert!(max_abs_diff(&p, &[0.0, 0.8]) < 1e-6, "{p:?}");
    let mut small = grads(0.1);
    clip_global_norm(&mut small, &params, 1.0);
    let n = values(small.get::<Inner, 1>(params.norm[0].id).expect("norm grad"));
    assert!(max_abs_diff(&n, &[0.3, 0.0]) < 1e-6, "{n:?}");
}

/// Regression (`train-dms --window 512 --seq-len 512` trained with no
/// eviction signal): the command refuses a sequence no longer than the
/// window, in one line naming both flags, before loading anything.
#[test]
fn train_dms_refuses_seq_len_within_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(["train-dms", "--model"])
        .arg(fixture("tiny-qwen3"))
        .arg("--out")
        .arg(dir.path().join("run"))
        .args(["--window", "16", "--seq-len", "16", "--data"])
        .arg(dir.path().join("absent.txt"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.trim();
    assert!(
        line.contains("--seq-len 16") && line.contains("--window 16"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(!dir.path().join("run").exists());
}
