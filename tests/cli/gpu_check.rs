//! `scripts/gpu-check.sh` run with a stand-in binary: every stage writes its
//! log and status JSON as it finishes, the results gather into one file,
//! the binary is unpacked outside the output folder, one global deadline
//! caps the stages, a binary needing a newer glibc or a failing device
//! probe stops the check in one line. (CI also runs the real rehearsal,
//! `DEVICE=wgpu bash scripts/gpu-check.sh`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu-check.sh")
}

/// A stand-in `hyperscale`: logs its arguments to `calls.log`, writes `{}`
/// to the file after `--json`; fails on arguments containing `$FAIL_ON`,
/// sleeps on those containing `$SLEEP_ON`. `glibc` is the symbol version
/// its bytes name.
fn stub(dir: &Path, glibc: &str) -> PathBuf {
    let path = dir.join("hyperscale");
    let log = dir.join("calls.log");
    std::fs::write(
        &path,
        format!(
            r#"#!/bin/sh
# needs {glibc}
echo "$*" >> '{log}'
case "$*" in *"${{FAIL_ON:-@none@}}"*) echo "error: stand-in failure" >&2; exit 1;; esac
case "$*" in *"${{SLEEP_ON:-@none@}}"*) exec sleep 60;; esac
prev=""
for a in "$@"; do [ "$prev" = "--json" ] && printf '{{"stub": true}}\n' > "$a"; prev="$a"; done
exit 0
"#,
            log = log.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path
}

fn run(bin: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    Command::new("bash")
        .arg(script())
        .arg(bin)
        .arg(out)
        .env("DEVICE", "wgpu")
        .env_remove("FAIL_ON")
        .env_remove("SLEEP_ON")
        .envs(env.iter().copied())
        .output()
        .expect("run gpu-check.sh")
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_script_parses() {
    let out = Command::new("bash")
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_stage_writes_its_log_status_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "GLIBC_2.2.5");
    let out = dir.path().join("out");
    let o = run(&bin, &out, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let all = json(&out.join("gpu-check.json"));
    let stages = all["stages"].as_object().unwrap();
    for name in [
        "probe",
        "parity-tiny-qwen2-f32",
        "parity-tiny-qwen2-f16",
        "warmup",
        "decode-dense-64",
        "decode-dms-192",
        "throughput-tova-192",
        "throughput-dms-192",
    ] {
        let stage = &stages[name];
        assert_eq!(stage["status"]["result"], "ok", "{name}: {stage}");
        assert!(out.join(format!("{name}.log")).exists(), "{name}.log");
    }
    assert_eq!(stages["decode-dms-192"]["results"]["stub"], true);
    assert_eq!(all["environment"]["binary_glibc"], "2.2.5");
    // The decode stages profile, one process per context; the rehearsal's
    // half-precision parity runs f16 (CUDA's runs bf16).
    let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
    assert!(
        calls.contains("--device wgpu --decode-weights f16 --steps 8"),
        "{calls}"
    );
    assert!(
        calls.contains("--context 192 --steps 4 --warmup 1 --profile"),
        "{calls}"
    );
}

/// `ONLY` runs the probe and the stages it names by prefix, nothing else.
#[test]
fn only_runs_the_probe_and_the_stages_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "GLIBC_2.2.5");
    let out = dir.path().join("out");
    let o = run(&bin, &out, &[("ONLY", "throughput-dms,warmup")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all = json(&out.join("gpu-check.json"));
    let mut names: Vec<&String> = all["stages"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["probe", "throughput-dms-192", "warmup"]);
    assert!(!out.join("decode-dense-64.status.json").exists());
    let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
    assert_eq!(
        calls.lines().filter(|l| l.starts_with("bench")).count(),
        3,
        "{calls}"
    );
    assert!(
        calls.contains("bench throughput --model tests/fixtures/models/tiny-qwen3-dms-neuron --device wgpu --policy dms --context 192"),
        "{calls}"
    );
}

#[test]
fn a_compressed_binary_is_unpacked_outside_the_output_folder() {
    if Command::new("xz").arg("--version").output().is_err() {
        eprintln!("xz missing: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "GLIBC_2.2.5");
    Command::new("xz").arg("-k").arg(&bin).status().unwrap();
    let out = dir.path().join("out");
    let o = run(&dir.path().join("hyperscale.xz"), &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !out.join("hyperscale").exists(),
        "binary unpacked into the results"
    );
}

#[test]
fn the_global_deadline_caps_a_hung_stage_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "GLIBC_2.2.5");
    let out = dir.path().join("out");
    let t = std::time::Instant::now();
    let o = run(
        &bin,
        &out,
        &[("DEADLINE_S", "15"), ("SLEEP_ON", "--context 64 --steps 4")],
    );
    assert!(t.elapsed().as_secs() < 40, "ran {:?}", t.elapsed());
    assert!(!o.status.success());
    assert_eq!(
        json(&out.join("decode-dense-64.status.json"))["result"],
        "timeout"
    );
    assert_eq!(
        json(&out.join("decode-dms-192.status.json"))["result"],
        "skipped"
    );
    // What finished before the hang is kept.
    assert_eq!(json(&out.join("warmup.status.json"))["result"], "ok");
}

#[test]
fn a_binary_needing_a_newer_glibc_stops_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "GLIBC_99.0");
    let out = dir.path().join("out");
    let o = run(&bin, &out, &[]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("needs glibc 99.0"), "{stderr}");
    assert!(
        !dir.path().join("calls.log").exists()
            || !std::fs::read_to_string(dir.path().join("calls.log"))
                .unwrap()
                .contains("bench")
    );
}

#[test]
fn a_failing_device_probe_stops_before_any_other_stage() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "GLIBC_2.2.5");
    let out = dir.path().join("out");
    let o = run(&bin, &out, &[("FAIL_ON", "--steps 1 --json")]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("device probe failed"), "{stderr}");
    assert_eq!(json(&out.join("probe.status.json"))["result"], "failed");
    assert!(!out.join("warmup.status.json").exists());
}
