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
