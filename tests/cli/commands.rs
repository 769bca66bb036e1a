//! The binary end to end: real runs on the shipped fixtures and the real
//! SmolLM2 GGUF, and the error paths a user hits — each a one-line message
//! naming the problem and a non-zero exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn smollm2() -> PathBuf {
    let p = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh",
        p.display()
    );
    p
}

fn hyperscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(args)
        .output()
        .expect("run hyperscale")
}

/// The process failed with exactly one line on stderr containing every needle.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "`{n}` not in: {stderr}");
    }
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("fixture dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    dir
}

#[test]
fn generate_answers_with_smollm2() {
    let model = smollm2();
    let out = hyperscale(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "What is the capital of France?",
        "--max-tokens",
        "16",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "The capital of France is Paris."
    );
}

#[test]
fn generate_json_has_one_object_per_sample() {
    let model = root().join("tests/fixtures/models/tiny-qwen2");
    let out = hyperscale(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "hello",
        "--raw",
        "--samples",
        "3",
        "--max-tokens",
        "5",
        "--temperature",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["sample"], i);
        assert!(v["generated_tokens"].as_u64().unwrap() >= 1);
        assert_eq!(
            v["token_ids"].as_array().unwrap().len() as u64,
            v["generated_tokens"].as_u64().unwrap()
        );
        for key in ["text", "finish_reason", "prompt_tokens", "kv", "timing"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(
            v["kv"]["decode_reads"].as_u64().is_some()
                && v["kv"]["peak_resident"].as_u64().is_some()
        );
    }
}

#[test]
fn truncated_gguf_is_named() {
    let bytes = std::fs::read(smollm2()).expect("read model");
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = hyperscale(&[
        "generate",
        "--model",
        cut.to_str().unwrap(),
        "--prompt",
        "hi",
    ]);
    assert_one_line_error(&out, &["cut.gguf", "truncated"]);
}

#[test]
fn missing_tensor_is_named() {
    use safetensors::tensor::{SafeTensors, TensorView};
    let dir = copy_dir(&root().join("tests/fixtures/models/tiny-llama"));
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let drop = "model.layers.1.mlp.down_proj.weight";
    let kept: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != drop)
        .collect();
    assert_eq!(kept.len() + 1, st.len());
    std::fs::write(&path, safetensors::serialize(kept, None).unwrap()).unwrap();
    let out = hyperscale(&[
        "generate",
        "--model",
        dir.path().to_str().unwrap(),
        "--prompt",
        "hi",
        "--raw",
    ]);
    assert_one_line_error(&out, &[drop, "model.safetensors", "missing"]);
}

#[test]
fn bad_config_field_is_named() {
    let dir = copy_dir(&root().join("tests/fixtures/models/tiny-llama"));
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["num_key_value_heads"] = serde_json::json!("two");
    std::fs::write(&cfg, v.to_string()).unwrap();
    let out = hyperscale(&[
        "generate",
        "--model",
        dir.path().to_str().unwrap(),
        "--prompt",
        "hi",
        "--raw",
    ]);
    assert_one_line_error(&out, &["config.json", "num_key_value_heads"]);
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    let model = root().join("tests/fixtures/models/tiny-llama");
    let out = hyperscale(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "hi",
        "--device",
        "cuda",
    ]);
    assert_one_line_error(&out, &["cuda"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn kv_dtype_the_device_cannot_store_is_a_one_line_error() {
    let model = root().join("tests/fixtures/models/tiny-llama");
    let generate = |device: &str, dtype: &str| {
        hyperscale(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "hi",
            "--raw",
            "--device",
            device,
            "--kv-dtype",
            dtype,
        ])
    };
    assert_one_line_error(&generate("cpu", "f16"), &["--kv-dtype f16", "CPU"]);
    if cfg!(feature = "wgpu") {
        // The Vulkan loader and the adapter log lines of their own first:
        // the error is the last line, and the only one of ours.
        let out = generate("wgpu", "bf16");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        let last = stderr.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: --kv-dtype bf16") && last.contains("wgpu"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn tasks_list_names_every_builtin_task() {
    let out = hyperscale(&["tasks", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for t in ["aime24", "aime25", "gpqa-diamond", "livecodebench", "arith"] {
        assert!(text.contains(t), "{t} missing from: {text}");
    }
}

#[test]
fn generate_under_a_window_policy_keeps_fewer_entries() {
    let model = root().join("tests/fixtures/models/tiny-llama");
    let prompt = "the quick brown fox jumps over the lazy dog ".repeat(8);
    let run = |policy: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            &prompt,
            "--raw",
            "--max-tokens",
            "8",
            "--json",
        ];
        args.extend_from_slice(policy);
        let out = hyperscale(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap()
    };
    let dense = run(&[]);
    let window = run(&[
        "--policy",
        "window",
        "--cr",
        "4",
        "--min-tokens",
        "4",
        "--sink",
        "2",
    ]);
    assert_eq!(dense["token_ids"].as_array().unwrap().len(), 8);
    let peak = |v: &serde_json::Value| v["kv"]["peak_resident"].as_u64().unwrap();
    assert!(
        peak(&window) * 3 < peak(&dense),
        "window {} vs dense {}",
        peak(&window),
        peak(&dense)
    );
    let bad = hyperscale(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "x",
        "--policy",
        "lru",
    ]);
    assert_one_line_error(&bad, &["--policy", "lru"]);
    let no_dms = hyperscale(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "x",
        "--raw",
        "--policy",
        "dms",
    ]);
    assert!(!no_dms.status.success());
}

#[test]
fn bench_parity_compares_devices_and_reports_the_worst_step() {
    // Without a GPU in the build, the reference device against itself: the
    // plumbing and the table (the cubecl device is compared under `wgpu`).
    let model = root().join("tests/fixtures/models/tiny-llama");
    let device = if cfg!(feature = "wgpu") {
        "wgpu"
    } else {
        "cpu"
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("parity.json");
    let out = hyperscale(&[
        "bench",
        "parity",
        "--model",
        model.to_str().unwrap(),
        "--device",
        device,
        "--steps",
        "3",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("parity ok"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["report"]["steps"].as_array().unwrap().len(), 4);
    assert!(doc["worst_relative"].as_f64().unwrap() <= 1e-3);
}

#[test]
fn unknown_synthetic_preset_is_named() {
    let out = hyperscale(&[
        "bench",
        "decode",
        "--model",
        "synthetic:gpt5",
        "--steps",
        "1",
    ]);
    assert_one_line_error(&out, &["gpt5", "r1-distill-qwen-1.5b"]);
}

// Hostile numbers in flags, configs and task files: each is a one-line error
// naming the flag, or the file and field, before any work starts (no run
// directory), never a panic or an allocation abort.

fn tiny_qwen2() -> String {
    root()
        .join("tests/fixtures/models/tiny-qwen2")
        .to_string_lossy()
        .into_owned()
}

/// `hyperscale ARGS` with this machine's available memory pinned to 8 GiB,
/// so the memory bounds decide the same way everywhere.
fn hyperscale_8gib(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(args)
        .env("HYPERSCALE_AVAILABLE_MEMORY", (8u64 << 30).to_string())
        .output()
        .expect("run hyperscale")
}

/// The one-line error, without a panic's message or an abort's signal.
fn assert_refused(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_one_line_error(out, needles);
}

/// A built-in task file with one line replaced, written to a temp dir.
fn edited_task(name: &str, from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(root().join(format!("tasks/{name}.toml"))).unwrap();
    assert!(text.contains(from), "{from}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    (dir, path)
}

#[test]
fn task_test_timeout_1e20_is_refused_not_a_duration_panic() {
    // 1e20 panicked in `Duration::from_secs_f64`; 2^31 overflowed Python's
    // `signal.alarm` and graded every program runtime_error; 0.5 was
    // silently rounded to a whole second.
    for value in ["1e20", "2147483648.0", "0.5", "-6.0", "nan"] {
        let (_dir, path) = edited_task(
            "livecodebench",
            "test_timeout_s = 6.0",
            &format!("test_timeout_s = {value}"),
        );
        let out = hyperscale(&["tasks", "show", path.to_str().unwrap()]);
        assert_refused(
            &out,
            &["grader.test_timeout_s", "livecodebench.toml", "1..=3600"],
        );
    }
}

#[test]
fn arith_per_difficulty_1e11_is_refused_not_an_allocation_abort() {
    let (_dir, path) = edited_task(
        "arith",
        "per_difficulty = 20",
        "per_difficulty = 100000000000",
    );
    let out = hyperscale(&["tasks", "show", path.to_str().unwrap()]);
    assert_refused(&out, &["source.per_difficulty", "arith.toml", "1000000"]);
}

/// A zlib stream of `mib` MiB of zeros built from 1 MiB sync-flushed chunks
/// (the second chunk repeated), so no test has to compress a gigabyte.
fn zlib_bomb(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut z = Compress::new(Compression::best(), true);
    let chunk = |z: &mut Compress| {
        let mut out = Vec::with_capacity(64 << 10);
        let before = z.total_in();
        while z.total_in() - before < zeros.len() as u64 {
            let at = (z.total_in() - before) as usize;
            z.compress_vec(&zeros[at..], &mut out, FlushCompress::Sync)
                .unwrap();
            if out.len() == out.capacity() {
                out.reserve(64 << 10);
            }
        }
        // Drain what the sync flush still holds.
        loop {
            let len = out.len();
            z.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
            if out.len() == len {
                break;
            }
            out.reserve(64 << 10);
        }
        out
    };
    let first = chunk(&mut z);
    let steady = chunk(&mut z);
    let mut stream = first;
    for _ in 1..mib {
        stream.extend_from_slice(&steady);
    }
    stream
}

#[test]
fn livecodebench_private_tests_zlib_bomb_stops_at_the_cap() {
    use base64::Engine;
    // 1.1 GiB of zeros from about a megabyte: inflating stops at the 1 GiB
    // cap instead of growing to the bomb's size.
    let bomb = zlib_bomb(1100);
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    let record = serde_json::json!({
        "question_id": "bomb1",
        "question_content": "Q",
        "contest_date": "2024-09-01T00:00:00",
        "platform": "atcoder",
        "starter_code": "",
        "public_test_cases": "[{\"input\": \"1\\n\", \"output\": \"2\\n\", \"testtype\": \"stdin\"}]",
        "private_test_cases": base64::engine::general_purpose::STANDARD.encode(&bomb),
        "metadata": "{}",
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lcb.jsonl");
    std::fs::write(&data, format!("{record}\n")).unwrap();
    let out = hyperscale(&[
        "tasks",
        "show",
        "livecodebench",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_refused(
        &out,
        &[
            "private_test_cases",
            "bomb1",
            "more than 1024 MiB",
            "lcb.jsonl",
        ],
    );
}

#[test]
fn generate_refuses_sampling_flags_the_sweep_config_refuses() {
    let model = tiny_qwen2();
    for (flag, value, needle) in [
        ("--temperature", "-1", "is not a finite temperature >= 0"),
        ("--temperature", "nan", "is not a finite temperature >= 0"),
        ("--temperature", "inf", "is not a finite temperature >= 0"),
        ("--top-p", "-5", "is not a top-p in (0, 1]"),
        ("--top-p", "0", "is not a top-p in (0, 1]"),
        ("--top-p", "1.5", "is not a top-p in (0, 1]"),
    ] {
        let out = hyperscale(&["generate", "--model", &model, "--prompt", "hi", flag, value]);
        assert_refused(&out, &[flag, needle]);
    }
}

#[test]
fn generate_samples_1e8_is_refused_before_decoding() {
    let model = tiny_qwen2();
    let out = hyperscale_8gib(&[
        "generate",
        "--model",
        &model,
        "--prompt",
        "hi",
        "--max-tokens",
        "8",
        "--samples",
        "100000000",
    ]);
    assert_refused(&out, &["--samples", "needs at least", "8.0 GiB available"]);
    // Past the model's context (256 positions for tiny-qwen2).
    let out = hyperscale_8gib(&[
        "generate",
        "--model",
        &model,
        "--prompt",
        "hi",
        "--max-tokens",
        "100000000",
    ]);
    assert_refused(&out, &["--max-tokens", "context length of 256"]);
}

#[test]
fn bench_decode_batch_0_is_refused_not_an_empty_batch_panic() {
    let out = hyperscale(&[
        "bench",
        "decode",
        "--model",
        &tiny_qwen2(),
        "--batch",
        "0",
        "--context",
        "8",
    ]);
    assert_refused(&out, &["--batch", "0"]);
}

#[test]
fn bench_decode_context_1e8_is_refused_before_measuring() {
    let model = tiny_qwen2();
    let out = hyperscale_8gib(&[
        "bench",
        "decode",
        "--model",
        &model,
        "--batch",
        "1",
        "--context",
        "100000000",
    ]);
    assert_refused(&out, &["--context", "context length of 256"]);
    let out = hyperscale_8gib(&[
        "bench",
        "decode",
        "--model",
        &model,
        "--batch",
        "100000000",
        "--context",
        "8",
        "--steps",
        "1",
    ]);
    assert_refused(&out, &["--batch", "needs at least"]);
}

#[test]
fn policy_flags_out_of_range_are_refused() {
    let model = tiny_qwen2();
    for (args, needle) in [
        (&["--policy", "tova", "--cr", "nan"][..], "--cr"),
        (&["--policy", "tova", "--cr", "-2"][..], "--cr"),
        (&["--policy", "tova", "--cr", "0.5"][..], "--cr"),
        (
            &["--policy", "quest", "--page-size", "0"][..],
            "--page-size",
        ),
        (
            &["--policy", "tova", "--budget-tokens", "0"][..],
            "--budget-tokens",
        ),
        // A page longer than the context aborted on a 51 GB allocation.
        (
            &["--policy", "quest", "--cr", "2", "--page-size", "100000000"][..],
            "--page-size",
        ),
    ] {
        let mut all = vec!["generate", "--model", &model, "--prompt", "hi"];
        all.extend_from_slice(args);
        let out = hyperscale(&all);
        assert_refused(&out, &[needle]);
    }
}

/// A sweep config in a temp dir whose results directory must stay absent.
fn sweep_config(text: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hostile.toml");
    std::fs::write(&config, text).unwrap();
    let results = dir.path().join("results");
    (dir, config, results)
}

/// `sweep CONFIG` and `sweep CONFIG --dry-run` both refuse with `needles`
/// and create no results directory.
fn assert_sweep_refused(text: &str, needles: &[&str]) {
    let (_dir, config, results) = sweep_config(text);
    for dry in [true, false] {
        let mut args = vec![
            "sweep",
            config.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--progress",
            "none",
        ];
        if dry {
            args.push("--dry-run");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
            .args(&args)
            .current_dir(root())
            .env("HYPERSCALE_AVAILABLE_MEMORY", (8u64 << 30).to_string())
            .output()
            .expect("run hyperscale");
        let mut all = vec!["hostile.toml"];
        all.extend_from_slice(needles);
        assert_refused(&out, &all);
        assert!(
            !results.exists(),
            "a run directory was created (dry run: {dry})"
        );
    }
}

fn remote_config(extra: &str) -> String {
    format!(
        "[model]\npath = \"tests/fixtures/models/tiny-qwen2\"\nbackend = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n{extra}\n\n[[tasks]]\nname = \"arith\"\nlimit = 1\n\n[grid]\nwidths = [1]\nlengths = [8]\n[[grid.methods]]\npolicy = \"dense\"\n"
    )
}

#[test]
fn remote_timeout_and_backoff_1e20_are_refused_not_a_duration_panic() {
    for (key, needle) in [
        ("timeout_seconds = 1e20", "model.timeout_seconds"),
        ("backoff_seconds = 1e20", "model.backoff_seconds"),
        ("timeout_seconds = -1.0", "model.timeout_seconds"),
        ("backoff_seconds = nan", "model.backoff_seconds"),
        ("concurrency = 1000000000000000000", "model.concurrency"),
        ("retries = 4000000000", "model.retries"),
    ] {
        assert_sweep_refused(&remote_config(key), &[needle]);
    }
}

fn local_config(grid: &str) -> String {
    format!(
        "[model]\npath = \"tests/fixtures/models/tiny-qwen2\"\n\n[[tasks]]\nname = \"arith\"\nlimit = 1\nanswer_region = \"whole\"\n\n[grid]\n{grid}\n[[grid.methods]]\npolicy = \"dense\"\n"
    )
}

#[test]
fn sweep_widths_1e8_is_refused_before_the_run_directory_exists() {
    // It passed --dry-run, then aborted on allocation after creating the
    // run directory.
    assert_sweep_refused(
        &local_config("widths = [100000000]\nlengths = [8]"),
        &["grid.widths", "needs at least", "8.0 GiB available"],
    );
    // Past tiny-qwen2's 256 positions.
    assert_sweep_refused(
        &local_config("widths = [1]\nlengths = [100000000]"),
        &["grid.lengths", "context length of 256"],
    );
    // Schedules too large to hold, whatever the model.
    assert_sweep_refused(
        &local_config("widths = [1]\nlengths = [8]\nrepeats = 4000000000"),
        &["grid.repeats", "100000000"],
    );
}

#[test]
fn sweep_sampling_errors_match_generate_flag_errors() {
    assert_sweep_refused(
        &local_config("widths = [1]\nlengths = [8]")
            .replace("[grid]", "[sampling]\ntemperature = nan\n\n[grid]"),
        &["sampling.temperature", "is not a finite temperature >= 0"],
    );
    assert_sweep_refused(
        &local_config("widths = [1]\nlengths = [8]")
            .replace("[grid]", "[sampling]\ntop_p = 0.0\n\n[grid]"),
        &["sampling.top_p", "is not a top-p in (0, 1]"],
    );
}

#[test]
fn dtype_f32_decodes_f32_weights_and_quantized_the_blocks_with_the_same_tokens() {
    // `dtype = "f32"` used to load the GGUF's Q4_1 blocks; now it decodes the
    // dequantized f32 weights and `quantized` names the blocks. Their logits
    // agree bit for bit, so the tokens and the trial ids do too.
    let model = smollm2();
    let run = |dtype: &str| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("dtype.toml");
        std::fs::write(
            &config,
            format!(
                "[model]\npath = {:?}\ndtype = \"{dtype}\"\n\n[[tasks]]\nname = \"arith\"\nlimit = 1\nanswer_region = \"whole\"\n\n[grid]\nwidths = [1]\nlengths = [6]\n[[grid.methods]]\npolicy = \"dense\"\n",
                model.to_str().unwrap()
            ),
        )
        .unwrap();
        let results = dir.path().join("results");
        let out = hyperscale(&[
            "sweep",
            config.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--progress",
            "none",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let samples = std::fs::read_to_string(results.join("dtype/samples.jsonl")).unwrap();
        let record: serde_json::Value =
            serde_json::from_str(samples.lines().next().unwrap()).unwrap();
        (stderr, record)
    };
    let (f32_log, f32_record) = run("f32");
    let (blocks_log, blocks_record) = run("quantized");
    assert!(f32_log.contains("(f32 weights)"), "{f32_log}");
    assert!(blocks_log.contains("(quantized weights)"), "{blocks_log}");
    for field in ["token_hash", "text", "trial"] {
        assert_eq!(f32_record[field], blocks_record[field], "{field}");
    }
}

#[test]
fn empty_raw_prompt_is_refused_not_an_empty_prefill_panic() {
    let model = tiny_qwen2();
    let out = hyperscale(&["generate", "--model", &model, "--raw", "--prompt", ""]);
    assert_refused(&out, &["--prompt", "no tokens"]);
    let out = hyperscale(&["bench", "parity", "--model", &model, "--prompt", ""]);
    assert_refused(&out, &["--prompt", "no tokens"]);
}

#[test]
fn bench_parity_nan_tolerance_is_refused_not_a_pass() {
    let out = hyperscale(&[
        "bench",
        "parity",
        "--model",
        &tiny_qwen2(),
        "--tolerance",
        "nan",
    ]);
    assert_refused(&out, &["--tolerance"]);
}

#[test]
fn dms_window_beyond_the_context_is_refused_not_an_allocation_abort() {
    let model = root().join("tests/fixtures/models/tiny-qwen3-dms-adapter");
    let out = hyperscale(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "hi",
        "--max-tokens",
        "4",
        "--policy",
        "dms",
        "--window",
        "1000000000000000000",
    ]);
    assert_refused(&out, &["--window", "context length"]);
}

/// How many times `needle` occurs in the process's stderr.
fn occurrences(out: &Output, needle: &str) -> usize {
    String::from_utf8_lossy(&out.stderr).matches(needle).count()
}

/// A sweep config whose `[model]` is the tiny fixture and whose grid has
/// `grid` (a TOML line), with one aime24 task reading `data`.
fn tiny_sweep_config(dir: &Path, data: &str, grid: &str) -> PathBuf {
    let model = root().join("tests/fixtures/models/tiny-llama");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\npath = {model:?}\n\n[[tasks]]\nname = \"aime24\"\ndata = {data:?}\nlimit = 1\n\n[sampling]\nseeds = [0]\n\n[grid]\n{grid}\nlengths = [4]\n[[grid.methods]]\npolicy = \"dense\"\n",
            model = model.display().to_string(),
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn sweep_config_with_a_bad_field_names_the_file_line_and_field_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("tests/data/aime24/qwen25math_aime24_test.jsonl");
    let cfg = tiny_sweep_config(dir.path(), data.to_str().unwrap(), "widths = \"two\"");
    let out = hyperscale(&["sweep", cfg.to_str().unwrap(), "--dry-run"]);
    let file = cfg.display().to_string();
    assert_one_line_error(&out, &[&format!("{file}:13: grid.widths: invalid type")]);
    assert_eq!(occurrences(&out, &file), 1);
    assert_eq!(occurrences(&out, "grid.widths"), 1);
    assert_eq!(occurrences(&out, "invalid type"), 1);
}

#[test]
fn sweep_config_that_cannot_be_read_prints_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("absent.toml");
    let out = hyperscale(&["sweep", cfg.to_str().unwrap(), "--dry-run"]);
    let file = cfg.display().to_string();
    assert_one_line_error(&out, &[&format!("failed to read config `{file}`: ")]);
    assert_eq!(occurrences(&out, &file), 1);
    assert_eq!(occurrences(&out, "os error 2"), 1);
}

#[test]
fn nested_error_prints_each_cause_once() {
    // sweep config → task → task data → I/O: four messages, each once.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("no-such-file.jsonl");
    let cfg = tiny_sweep_config(dir.path(), data.to_str().unwrap(), "widths = [1]");
    let out = hyperscale(&["sweep", cfg.to_str().unwrap(), "--dry-run"]);
    assert_one_line_error(&out, &["tasks[0]", "aime24", "no-such-file.jsonl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(occurrences(&out, "no-such-file.jsonl"), 1, "{stderr}");
    assert_eq!(
        occurrences(&out, "failed to load the problems"),
        1,
        "{stderr}"
    );
    assert_eq!(occurrences(&out, "error: "), 1, "{stderr}");
}

// Enumerated flags are clap value enums (or parsed by a value parser): a bad
// value is clap's refusal on one line, naming the flag and the value, exit 2,
// before any work.

#[test]
fn bad_enumerated_flag_values_are_one_line_usage_errors() {
    let cases: [(&[&str], &str, &str); 9] = [
        (
            &["sweep", "configs/smoke.toml", "--progress", "loud"],
            "--progress",
            "loud",
        ),
        (
            &["sweep", "configs/smoke.toml", "--shard", "4/4"],
            "--shard",
            "4/4",
        ),
        (
            &["compare", "a", "b", "--format", "html"],
            "--format",
            "html",
        ),
        (
            &[
                "grade",
                "--task",
                "aime24",
                "--completions",
                "c.jsonl",
                "--region",
                "middle",
            ],
            "--region",
            "middle",
        ),
        (
            &["generate", "--prompt", "x", "--device", "tpu"],
            "--device",
            "tpu",
        ),
        (
            &["generate", "--prompt", "x", "--decode-weights", "fp8"],
            "--decode-weights",
            "fp8",
        ),
        (
            &["generate", "--prompt", "x", "--policy", "lru"],
            "--policy",
            "lru",
        ),
        (
            &["train-dms", "--out", "o", "--variant", "head"],
            "--variant",
            "head",
        ),
        (&["report", "r", "--vote", "max"], "--vote", "max"),
    ];
    for (args, flag, value) in cases {
        let out = hyperscale(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_one_line_error(&out, &[flag, value]);
    }
    // `markdown` stays an alias of `md`; help still prints in full.
    let help = hyperscale(&["compare", "--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--format") && text.contains("Usage:"),
        "{text}"
    );
}

#[test]
fn bench_decode_prints_its_tables_and_writes_the_json_it_always_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("decode.json");
    let out = hyperscale(&[
        "bench",
        "decode",
        "--model",
        &tiny_qwen2(),
        "--batch",
        "1,2",
        "--context",
        "8",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--profile",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("model ") && lines[0].contains("device cpu"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("| batch | context | prefill tok/s"),
        "{stdout}"
    );
    assert_eq!(lines[3], r#"policy: {"policy":"dense"}"#, "{stdout}");
    assert!(
        lines[4].starts_with("| 1 | 8 | ") && lines[5].starts_with("| 2 | 8 | "),
        "{stdout}"
    );
    assert!(
        stdout.contains("| batch | context | step ms | projections"),
        "{stdout}"
    );
    assert!(stdout.contains("standalone projections"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mut keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cpu_kernels",
            "device",
            "fma_peak_gflops",
            "model",
            "points",
            "policy",
            "read_bandwidth_gbs",
            "roofline_tokens_per_second",
            "threads",
            "weight_bytes_per_step",
            "weights"
        ]
    );
    assert_eq!(doc["device"], "cpu");
    assert_eq!(doc["points"].as_array().unwrap().len(), 2);
}

// A NaN tolerance made every comparison pass; a negative one fails
// identical runs. Both are refused before any work, naming the flag.
#[test]
fn compare_refuses_nan_and_negative_tolerances() {
    for (flag, value) in [
        ("--tolerance", "nan"),
        ("--budget-tolerance", "-0.1"),
        ("--runtime-tolerance", "inf"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
            .args(["compare", "a", "b", &format!("{flag}={value}")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(value), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}
