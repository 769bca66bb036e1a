//! `bench decode --profile` on wgpu counts what a decode step costs the
//! device: kernel launches (the fused cubecl kernels keep a layer at ≤ 12,
//! dense and DMS), uploads (the ids, the two RoPE tables and one buffer of
//! every layer's slot tables), and read-backs (host synchronisations: one
//! per step, the logits and DMS's decisions).
#![cfg(feature = "wgpu")]

use std::path::PathBuf;
use std::process::Command;

/// `bench decode --profile` of `fixture` on wgpu at W = 2 (with `extra`
/// arguments): its profile object.
fn profile(fixture: &str, extra: &[&str]) -> serde_json::Value {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(fixture);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("decode.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyperscale"));
    cmd.args(["bench", "decode", "--model"])
        .arg(&model)
        .args([
            "--device",
            "wgpu",
            "--batch",
            "2",
            "--context",
            "16",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--profile",
            "--json",
        ])
        .arg(&json)
        .args(extra);
    let out = cmd.output().expect("run hyperscale");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    doc["points"][0]["profile"].clone()
}

#[test]
fn dense_decode_step_counts_on_wgpu() {
    let profile = profile("tiny-qwen3", &[]);
    let layers = 2.0;
    // Per step: the embedding gather, the first norm and the lm head.
    let launches = profile["launches_per_step"]
        .as_f64()
        .expect("launches counted");
    assert!(
        launches <= 12.0 * layers + 3.0,
        "{launches} launches per step"
    );
    let transfers = &profile["transfers_per_step"];
    assert_eq!(transfers["reads"].as_f64(), Some(1.0), "{transfers}");
    // The logits of 2 rows over a 512-token vocabulary.
    assert_eq!(transfers["read_bytes"].as_f64(), Some(2.0 * 512.0 * 4.0));
    // Ids and two RoPE tables per step, and every layer's slot tables in
    // one upload.
    assert_eq!(transfers["uploads"].as_f64(), Some(4.0), "{transfers}");
}

/// DMS on the device, both decision heads: the adapter's decision is one
/// fused launch (its norm, projection, scale and offset), the query
/// neuron's is read in the q/k/v kernel; the placement's slot copies go up
/// with the step's tables; one read-back per step.
#[test]
fn dms_decode_step_counts_on_wgpu() {
    for fixture in ["tiny-qwen3-dms-adapter", "tiny-qwen3-dms-neuron"] {
        let profile = profile(fixture, &["--policy", "dms"]);
        let layers = 2.0;
        let launches = profile["launches_per_step"]
            .as_f64()
            .expect("launches counted");
        assert!(
            launches <= 12.0 * layers + 3.0,
            "{fixture}: {launches} launches per step"
        );
        let transfers = &profile["transfers_per_step"];
        assert_eq!(
            transfers["reads"].as_f64(),
            Some(1.0),
            "{fixture}: {transfers}"
        );
        assert_eq!(
            transfers["uploads"].as_f64(),
            Some(4.0),
            "{fixture}: {transfers}"
        );
    }
}

/// Half-precision projections (`--decode-weights f16`, wgpu's stand-in for
/// CUDA's bf16): the fused kernels read and write the projections' dtype,
/// so the only casts left are the output projection's input (attention
/// writes f32) and the lm head's two — a layer stays at ≤ 12 launches.
#[test]
fn half_precision_projections_stay_at_twelve_launches_a_layer_on_wgpu() {
    let layers = 2.0;
    let launches = |extra: &[&str]| {
        profile("tiny-qwen3", extra)["launches_per_step"]
            .as_f64()
            .expect("launches counted")
    };
    let (f32_form, f16_form) = (
        launches(&["--decode-weights", "f32"]),
        launches(&["--decode-weights", "f16"]),
    );
    assert_eq!(f16_form - f32_form, layers + 2.0, "{f32_form} → {f16_form}");
    assert!(
        f16_form <= 12.0 * layers + 5.0,
        "{f16_form} launches per step"
    );
}

/// bf16 projections on wgpu are refused in one line before any work (WGSL
/// has no bf16).
#[test]
fn bf16_projections_are_refused_on_wgpu() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-qwen3");
    let out = Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .args(["bench", "decode", "--model"])
        .arg(&model)
        .args([
            "--device",
            "wgpu",
            "--decode-weights",
            "bf16",
            "--batch",
            "1",
        ])
        .args(["--context", "8", "--steps", "1", "--warmup", "0"])
        .output()
        .expect("run hyperscale");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WGSL has no bf16"), "{err}");
}
