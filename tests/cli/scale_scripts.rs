//! The "running at scale" recipes: the Slurm scripts parse (`bash -n`) and,
//! run with a stand-in `hyperscale` that logs its arguments, an array task
//! runs its shard and the merge job merges every shard and reports; the
//! Kubernetes Job maps the completion index to the shard and agrees with
//! itself on N.

use std::path::{Path, PathBuf};
use std::process::Command;

fn script(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(script(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn slurm_scripts_parse() {
    for rel in ["slurm/sweep.sbatch", "slurm/submit.sh"] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(script(rel))
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Run sweep.sbatch with `env`, a stub binary logging each call's arguments
/// as one line; returns the log.
fn run_sbatch(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("calls.log");
    let stub = dir.path().join("hyperscale");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
    )
    .expect("stub");
    Command::new("chmod")
        .arg("+x")
        .arg(&stub)
        .status()
        .expect("chmod");
    let out = Command::new("bash")
        .arg(script("slurm/sweep.sbatch"))
        .current_dir(dir.path())
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env("HYPERSCALE", &stub)
        .env("CONFIG", "configs/paper.toml")
        .envs(env.iter().copied())
        .output()
        .expect("run sweep.sbatch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn an_array_task_runs_its_shard_and_the_merge_job_merges_all() {
    let calls = run_sbatch(&[
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ]);
    assert_eq!(
        calls,
        "sweep configs/paper.toml --shard 2/4 --results results --progress log\n"
    );
    let calls = run_sbatch(&[("SHARDS", "3"), ("RESULTS", "out")]);
    assert_eq!(
        calls,
        "merge out/paper/shards/0-of-3 out/paper/shards/1-of-3 out/paper/shards/2-of-3 \
         --out out/paper\nreport out/paper\n"
    );
}

/// The value after `key:` on the first line holding it (comments cut).
fn yaml_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.split('#').next().unwrap_or("").trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no `{key}` in the manifest"))
}

#[test]
fn the_indexed_job_maps_the_completion_index_to_the_shard() {
    let job = read("k8s/sweep-job.yaml");
    assert!(!job.contains('\t'), "tabs in YAML");
    assert_eq!(yaml_value(&job, "completionMode:"), "Indexed");
    assert!(job.contains(r#"--shard "${JOB_COMPLETION_INDEX}/${SHARDS}""#));
    // N is written twice; they must agree.
    let completions = yaml_value(&job, "completions:");
    let after_shards = job.split("- name: SHARDS").nth(1).expect("SHARDS env");
    assert_eq!(yaml_value(after_shards, "value:"), completions);
    let merge = read("k8s/merge-job.yaml");
    assert!(!merge.contains('\t'), "tabs in YAML");
    let after_shards = merge.split("- name: SHARDS").nth(1).expect("SHARDS env");
    assert_eq!(yaml_value(after_shards, "value:"), completions);
    assert!(merge.contains("hyperscale merge") && merge.contains("hyperscale report"));
    assert!(
        job.contains("claimName: hyperscale-results")
            && merge.contains("claimName: hyperscale-results")
    );
}
