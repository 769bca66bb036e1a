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

/// The 2-layer fixtures' layers.
const LAYERS: f64 = 2.0;

/// What every decode step of a 2-layer fixture keeps to, asserted on
/// `profile` (`what` names the run in a failure): at most 12 launches a
/// layer and 3 a step (the embedding gather, the first norm and the lm
/// head), one read-back (the step's host synchronisation) and 4 uploads
/// (the ids, two RoPE tables and every layer's slot tables in one).
/// Returns the launches per step.
fn assert_step_counts(what: &str, profile: &serde_json::Value) -> f64 {
    let launches = profile["launches_per_step"]
        .as_f64()
        .expect("launches counted");
    assert!(
        launches <= 12.0 * LAYERS + 3.0,
        "{what}: {launches} launches per step"
    );
    let transfers = &profile["transfers_per_step"];
    assert_eq!(
        transfers["reads"].as_f64(),
        Some(1.0),
        "{what}: {transfers}"
    );
    assert_eq!(
        transfers["uploads"].as_f64(),
        Some(4.0),
        "{what}: {transfers}"
    );
    launches
}

#[test]
fn dense_decode_step_counts_on_wgpu() {
    let profile = profile("tiny-qwen3", &[]);
    assert_step_counts("tiny-qwen3", &profile);
    // The logits of 2 rows over a 512-token vocabulary.
    let read_bytes = profile["transfers_per_step"]["read_bytes"].as_f64();
    assert_eq!(read_bytes, Some(2.0 * 512.0 * 4.0));
}

/// DMS on the device, both decision heads: the adapter's decision is one
/// fused launch (its norm, projection, scale and offset), the query
/// neuron's is read in the q/k/v kernel; the placement's slot copies go up
/// with the step's tables; one read-back per step.
#[test]
fn dms_decode_step_counts_on_wgpu() {
    for fixture in ["tiny-qwen3-dms-adapter", "tiny-qwen3-dms-neuron"] {
        assert_step_counts(fixture, &profile(fixture, &["--policy", "dms"]));
    }
}

/// Half-precision projections (`--decode-weights f16`, wgpu's stand-in for
/// CUDA's bf16) launch as many kernels as f32: the fused kernels read and
/// write the projections' dtype, attention's merge writes the output
/// projection's input, the final norm writes the lm head's, and the
/// logits come back in f16 (half the bytes) to be widened on the host.
#[test]
fn half_precision_projections_launch_as_many_kernels_as_f32_on_wgpu() {
    let f32_profile = profile("tiny-qwen3", &["--decode-weights", "f32"]);
    let f16_profile = profile("tiny-qwen3", &["--decode-weights", "f16"]);
    let f32_form = assert_step_counts("f32", &f32_profile);
    let f16_form = assert_step_counts("f16", &f16_profile);
    assert_eq!(f16_form, f32_form, "{f32_form} → {f16_form}");
    // The logits of 2 rows over a 512-token vocabulary, 2 bytes a value.
    let read_bytes = f16_profile["transfers_per_step"]["read_bytes"].as_f64();
    assert_eq!(read_bytes, Some(2.0 * 512.0 * 2.0));
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
