//! Config files: every bad config is a one-line error naming its key; the
//! shipped configs are valid; CR and DMS checkpoints expand as documented.

use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use crate::sweep_mocks::{FakeGrader, MockCatalog, MockRenderer, MockTasks};
use hyperscale::kv::{Budget, CachePolicy, TovaGranularity};
use hyperscale::sweep::wiring::{ModelCache, ModelGenerator};
use hyperscale::sweep::{
    BoxError, Checkpoint, Filters, LoadedTask, ModelCatalog, ModelInfo, Plan, ProgressMode,
    RunSummary, SweepConfig, SweepDeps, SweepOptions, TaskPlan, TaskSource, expand, run_sweep,
};
use hyperscale::task::{Problem, Reference};

const GOOD: &str = r#"
[run]
name = "t"

[model]
path = "models/tiny.gguf"

[[model.dms]]
cr = 4
path = "models/tiny-dms-4x"

[[tasks]]
name = "arith"

[[tasks]]
name = "aime24"

[sampling]
seeds = [0]

[grid]
cr = [2]
widths = [1, 2]
lengths = [8]

[[grid.methods]]
policy = "dense"

[[grid.methods]]
policy = "tova"

[[grid.methods]]
policy = "dms"
"#;

/// Parse, validate and expand against the mocks; the error as displayed.
fn check(text: &str) -> Result<hyperscale::sweep::Expanded, String> {
    let config = SweepConfig::parse(text, "cfg.toml").map_err(|e| e.to_string())?;
    let plan =
        Plan::from_config(&config, "cfg.toml", &Filters::default()).map_err(|e| e.to_string())?;
    expand(&plan, "cfg.toml", &MockCatalog, &MockTasks::default()).map_err(|e| e.to_string())
}

fn edit(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "`{from}` not in GOOD");
    GOOD.replacen(from, to, 1)
}

#[test]
fn bad_configs_are_one_line_errors_naming_the_key() {
    assert!(check(GOOD).is_ok(), "{:?}", check(GOOD).err());
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown top-level key",
            format!("colour = 1\n{GOOD}"),
            "colour",
        ),
        (
            "unknown grid key",
            edit("lengths = [8]", "lengths = [8]\nwidht = [3]"),
            "grid.widht",
        ),
        (
            "unknown model key",
            edit(
                "path = \"models/tiny.gguf\"",
                "path = \"models/tiny.gguf\"\ndevise = \"cpu\"",
            ),
            "model.devise",
        ),
        (
            "unknown method field",
            edit("policy = \"tova\"", "policy = \"tova\"\nwindw = 3"),
            "grid.methods[1].windw",
        ),
        (
            "unknown policy",
            edit("policy = \"tova\"", "policy = \"lru\""),
            "grid.methods[1].policy",
        ),
        (
            "cr on dense",
            edit("policy = \"dense\"", "policy = \"dense\"\ncr = [2]"),
            "grid.methods[0].cr",
        ),
        (
            "W = 0",
            edit("widths = [1, 2]", "widths = [1, 0]"),
            "grid.widths[1]",
        ),
        (
            "negative W",
            edit("widths = [1, 2]", "widths = [-1]"),
            "grid.widths[0]",
        ),
        (
            "W not a list",
            edit("widths = [1, 2]", "widths = \"2\""),
            "grid.widths",
        ),
        (
            "no widths",
            edit("widths = [1, 2]", "widths = []"),
            "grid.widths",
        ),
        (
            "repeated W",
            edit("widths = [1, 2]", "widths = [2, 2]"),
            "grid.widths",
        ),
        (
            "L = 0",
            edit("lengths = [8]", "lengths = [0]"),
            "grid.lengths[0]",
        ),
        ("missing lengths", edit("lengths = [8]", ""), "grid"),
        ("cr below 1", edit("cr = [2]", "cr = [0.5]"), "grid.cr[0]"),
        (
            "budgeted method without cr",
            edit("cr = [2]", "cr = []"),
            "grid.cr",
        ),
        (
            "empty method cr",
            edit("policy = \"tova\"", "policy = \"tova\"\ncr = []"),
            "grid.methods[1].cr",
        ),
        (
            "dms cr without checkpoint",
            edit("policy = \"dms\"", "policy = \"dms\"\ncr = [8]"),
            "grid.methods[2].cr[0]",
        ),
        (
            "dms without checkpoints",
            edit("[[model.dms]]\ncr = 4\npath = \"models/tiny-dms-4x\"", ""),
            "grid.methods[2]",
        ),
        (
            "dms checkpoint without dms params",
            edit("models/tiny-dms-4x", "models/tiny-4x"),
            "model.dms[0].path",
        ),
        (
            "repeated dms cr",
            edit(
                "[[tasks]]\nname = \"arith\"",
                "[[model.dms]]\ncr = 4\npath = \"x-dms\"\n\n[[tasks]]\nname = \"arith\"",
            ),
            "model.dms[1].cr",
        ),
        (
            "unreadable model",
            edit("models/tiny.gguf", "models/missing.gguf"),
            "model.path",
        ),
        (
            "unknown device",
            edit(
                "path = \"models/tiny.gguf\"",
                "path = \"models/tiny.gguf\"\ndevice = \"tpu\"",
            ),
            "model.device",
        ),
        (
            "unknown dtype",
            edit(
                "path = \"models/tiny.gguf\"",
                "path = \"models/tiny.gguf\"\ndtype = \"int3\"",
            ),
            "model.dtype",
        ),
        (
            "top_p = 0",
            edit("seeds = [0]", "seeds = [0]\ntop_p = 0.0"),
            "sampling.top_p",
        ),
        (
            "negative temperature",
            edit("seeds = [0]", "seeds = [0]\ntemperature = -1.0"),
            "sampling.temperature",
        ),
        (
            "no seeds",
            edit("seeds = [0]", "seeds = []"),
            "sampling.seeds",
        ),
        (
            "repeats = 0",
            edit("lengths = [8]", "lengths = [8]\nrepeats = 0"),
            "grid.repeats",
        ),
        (
            "task twice",
            edit("name = \"aime24\"", "name = \"arith\""),
            "tasks[1].name",
        ),
        (
            "limit = 0",
            edit("name = \"arith\"", "name = \"arith\"\nlimit = 0"),
            "tasks[0].limit",
        ),
        (
            "unknown problem id",
            edit(
                "name = \"arith\"",
                "name = \"arith\"\nproblems = [\"arith-99\"]",
            ),
            "tasks[0].problems",
        ),
        (
            "unknown task",
            edit("name = \"aime24\"", "name = \"aime99\""),
            "tasks[1]",
        ),
        (
            "no tasks",
            format!(
                "tasks = []\n{}",
                edit(
                    "[[tasks]]\nname = \"arith\"\n\n[[tasks]]\nname = \"aime24\"",
                    ""
                )
            ),
            "tasks",
        ),
        (
            "run name with a slash",
            edit("name = \"t\"", "name = \"a/b\""),
            "run.name",
        ),
        (
            "two methods one name",
            format!("{GOOD}\n[[grid.methods]]\npolicy = \"tova\"\nmin_tokens = 4\n"),
            "grid.methods[3].name",
        ),
        (
            "one policy twice",
            format!("{GOOD}\n[[grid.methods]]\npolicy = \"tova\"\nname = \"tova2\"\n"),
            "grid.methods[3]",
        ),
        (
            "quest pages of 0",
            format!("{GOOD}\n[[grid.methods]]\npolicy = \"quest\"\npage_size = 0\n"),
            "grid.methods[3].page_size",
        ),
        (
            "window without sink",
            format!("{GOOD}\n[[grid.methods]]\npolicy = \"window\"\n"),
            "grid.methods[3]",
        ),
    ];
    let mut failures = Vec::new();
    for (what, text, key) in &cases {
        match check(text) {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(e) => {
                println!("{what:<36} {e}");
                let names_key = e.contains(&format!(": {key}: "));
                if !names_key || e.contains('\n') {
                    failures.push(format!("{what}: `{e}` should be one line naming `{key}`"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn cr_applies_to_budgeted_methods_and_dms_runs_its_checkpoints() {
    let text = GOOD.replace("cr = [2]", "cr = [2, 8]").replace(
        "[[tasks]]\nname = \"arith\"",
        "[[model.dms]]\ncr = 8\npath = \"models/tiny-dms-8x\"\n\n[[tasks]]\nname = \"arith\"",
    );
    let e = check(&text).unwrap();
    let trials: Vec<_> = e
        .trials()
        .filter(|t| t.spec.task == "arith" && t.spec.width == 1)
        .collect();
    let summary: Vec<(String, Option<f64>, String)> = trials
        .iter()
        .map(|t| (t.method.clone(), t.spec.cr, t.model_path.clone()))
        .collect();
    // Base-model trials first (one model load), then each DMS checkpoint.
    assert_eq!(
        summary,
        vec![
            ("dense".into(), None, "models/tiny.gguf".into()),
            ("tova".into(), Some(2.0), "models/tiny.gguf".into()),
            ("tova".into(), Some(8.0), "models/tiny.gguf".into()),
            ("dms".into(), Some(4.0), "models/tiny-dms-4x".into()),
            ("dms".into(), Some(8.0), "models/tiny-dms-8x".into()),
        ]
    );
    assert_eq!(
        trials[1].spec.policy,
        CachePolicy::Tova {
            budget: Budget::Ratio {
                cr: 2.0,
                min_tokens: 16
            },
            granularity: TovaGranularity::Layer,
        }
    );
    assert_eq!(trials[3].checkpoint, Checkpoint::Dms(0));
    assert!(trials[3].spec.model.starts_with("models/tiny-dms-4x@"));
    // A method's own cr list selects among the checkpoints.
    let only8 = text.replacen("policy = \"dms\"", "policy = \"dms\"\ncr = [8]", 1);
    let crs: Vec<_> = check(&only8)
        .unwrap()
        .trials()
        .filter(|t| t.method == "dms")
        .map(|t| t.spec.cr)
        .collect();
    assert!(crs.iter().all(|&c| c == Some(8.0)) && !crs.is_empty());
}

/// Any task name, 300 problems (and any problem id the config names);
/// every model has DMS parameters. The real loaders are checked against the
/// smoke config in `sweep_e2e.rs`.
struct Permissive;

impl ModelCatalog for Permissive {
    fn inspect(&self, path: &str) -> Result<ModelInfo, BoxError> {
        Ok(ModelInfo {
            identity: format!("{path}@sha256:0"),
            has_dms: true,
        })
    }
}

impl TaskSource for Permissive {
    fn load(&self, task: &TaskPlan) -> Result<LoadedTask, BoxError> {
        let name = task.name.as_str();
        let named = task.problems.clone().unwrap_or_default();
        let ids = named
            .into_iter()
            .chain((0..300).map(|i| format!("{name}-{i}")));
        Ok(LoadedTask {
            version: "1".into(),
            problems: ids
                .map(|id| Problem {
                    id,
                    question: String::new(),
                    reference: Reference::Math { answer: "0".into() },
                    metadata: Default::default(),
                })
                .collect(),
        })
    }
}

#[test]
fn shipped_configs_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "toml") || name == "demo.toml" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config = SweepConfig::parse(&text, &name).unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::from_config(&config, &name, &Filters::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let e = expand(&plan, &name, &Permissive, &Permissive).unwrap_or_else(|e| panic!("{e}"));
        let tokens: u64 = e.units().into_iter().map(|u| e.unit_tokens(u)).sum();
        println!(
            "{name}: {} trials, {} work units, at most {tokens} generated tokens",
            e.trials().count(),
            e.units().len()
        );
        seen.push((name, e));
    }
    let smoke = &seen
        .iter()
        .find(|(n, _)| n == "smoke.toml")
        .expect("configs/smoke.toml")
        .1;
    // 4 tasks × (dense + window×2 CRs + tova×2 CRs) × W ∈ {1, 2}.
    assert_eq!(smoke.trials().count(), 4 * 5 * 2);
    assert_eq!(
        smoke.tasks.iter().map(|t| t.problems.len()).sum::<usize>(),
        5
    );
    for paper in [
        "r1-distill-qwen-1.5b.toml",
        "r1-distill-qwen-7b.toml",
        "r1-distill-qwen-32b.toml",
        "qwen3-8b-dms-8x.toml",
    ] {
        assert!(
            seen.iter().any(|(n, _)| n == paper),
            "configs/{paper} missing"
        );
    }
}

#[test]
fn dtype_names_the_weight_form_and_quantized_keeps_the_f32_trial_ids() {
    let with = |dtype: &str| {
        check(&edit(
            "path = \"models/tiny.gguf\"",
            &format!("path = \"models/tiny.gguf\"\ndtype = \"{dtype}\""),
        ))
    };
    let ids =
        |e: &hyperscale::sweep::Expanded| e.trials().map(|t| t.id.clone()).collect::<Vec<_>>();
    let f32s = with("f32").unwrap();
    let blocks = with("quantized").unwrap();
    assert_eq!(
        blocks.trials().next().unwrap().spec.dtype.to_string(),
        "quantized"
    );
    // Same numerics, same trial ids (as recorded when `f32` meant the blocks).
    assert_eq!(ids(&f32s), ids(&blocks));
    assert_ne!(ids(&f32s), ids(&with("bf16").unwrap()));
    let err = with("q4").unwrap_err();
    assert!(
        err.contains("model.dtype") && err.contains("quantized"),
        "{err}"
    );
}

/// A config's `dtype` takes the forms `--decode-weights` takes on its
/// device: half-precision projections in f16 where the device has no bf16
/// (wgpu), bf16 on CUDA and the CPU; `bf16` on wgpu is one line naming the
/// file and the field, before anything runs.
#[test]
fn half_precision_dtype_follows_the_device() {
    let with = |device: &str, dtype: &str| {
        check(&edit(
            "path = \"models/tiny.gguf\"",
            &format!("path = \"models/tiny.gguf\"\ndevice = \"{device}\"\ndtype = \"{dtype}\""),
        ))
    };
    for (device, dtype) in [
        ("wgpu", "f16"),
        ("cuda", "bf16"),
        ("cuda", "f16"),
        ("cpu", "f16"),
    ] {
        let expanded = with(device, dtype).unwrap_or_else(|e| panic!("{device} {dtype}: {e}"));
        assert!(
            expanded.trials().all(|t| t.spec.dtype.to_string() == dtype),
            "{device} {dtype}"
        );
    }
    let err = with("wgpu", "bf16").unwrap_err();
    assert!(err.starts_with("cfg.toml: model.dtype: "), "{err}");
    assert!(
        err.contains("WGSL has no bf16") && err.contains("f16"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn quantized_dtype_with_a_remote_engine_is_refused() {
    let text = "[model]\npath = \"m\"\nbackend = \"openai\"\nbase_url = \"http://localhost:8000/v1\"\nmodel = \"m\"\ndtype = \"quantized\"\n[[tasks]]\nname = \"arith\"\n[grid]\nwidths = [1]\nlengths = [8]\n[[grid.methods]]\npolicy = \"dense\"\n";
    let err = check(text).unwrap_err();
    assert!(err.contains("model.dtype"), "{err}");
}

#[test]
fn smoke_config_keeps_the_committed_baseline_trial_ids() {
    // configs/smoke.toml says `dtype = "quantized"` since `f32` means f32
    // weights; its trials must still be the baseline's, or `compare` in CI
    // would find nothing in common.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hyperscale"))
        .current_dir(root)
        .args(["sweep", "configs/smoke.toml", "--dry-run", "--results"])
        .arg(results.path())
        .output()
        .expect("run hyperscale");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned: std::collections::BTreeSet<String> = plan
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() == 17 && w.starts_with('t'))
        .map(str::to_string)
        .collect();
    let baseline =
        std::fs::read_to_string(root.join("results/baseline-smoke/samples.jsonl")).unwrap();
    let recorded: std::collections::BTreeSet<String> = baseline
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["trial"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!planned.is_empty(), "{plan}");
    assert_eq!(planned, recorded);
}

/// `hyperscale sweep CONFIG --dry-run` as a user runs it, with the real
/// generator's checks ([`ModelGenerator::supports`]: every policy's
/// parameters and the device), on `device`; only the model catalog and the
/// tasks are synthetic (the checks load nothing, so the real weights need
/// not be here).
fn dry_run(config: &Path, text: &str, device: &str) -> RunSummary {
    let dir = tempfile::tempdir().unwrap();
    let name = config.file_name().unwrap();
    let path = dir.path().join(name);
    let text = text
        .replace("device = \"cuda\"", &format!("device = \"{device}\""))
        .replace("device = \"cpu\"", &format!("device = \"{device}\""));
    std::fs::write(&path, text).unwrap();
    let options = SweepOptions {
        dry_run: true,
        results_dir: Some(dir.path().join("results")),
        progress: ProgressMode::Hidden,
        git_revision: Some("test".into()),
        ..SweepOptions::default()
    };
    let device = device.parse().unwrap();
    let mut generator = ModelGenerator::new(Rc::new(ModelCache::default()), device);
    run_sweep(
        &path,
        &options,
        SweepDeps {
            catalog: &Permissive,
            tasks: &Permissive,
            renderer: &mut MockRenderer,
            generator: &mut generator,
            grader: Arc::new(FakeGrader::default()),
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", config.display()))
}

/// The method column of the dry run's trial table.
fn planned_methods(summary: &RunSummary) -> BTreeSet<String> {
    let plan = summary.plan.as_deref().expect("a dry run prints its plan");
    plan.lines()
        .skip_while(|l| !l.starts_with("trial "))
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        // Trial rows: `t` + 16 hex digits, task, method, …
        .take_while(|w| {
            w.first()
                .is_some_and(|id| id.len() == 17 && id.starts_with('t'))
        })
        .filter_map(|w| w.get(2).map(|m| m.to_string()))
        .collect()
}

/// Regression (H2O silently dropped from every paper config: `recent =
/// 128` above the floor of 16 was refused, and the permissive check of
/// `shipped_configs_are_valid` did not see it): every shipped config
/// dry-runs on the CPU with every configured method planned and no group
/// skipped.
#[test]
fn shipped_configs_dry_run_every_method_on_the_cpu() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config = SweepConfig::parse(&text, "cfg").unwrap();
        let plan = Plan::from_config(&config, "cfg", &Filters::default()).unwrap();
        let want: BTreeSet<String> = plan.methods.iter().map(|m| m.name.clone()).collect();
        let summary = dry_run(&path, &text, "cpu");
        let name = path.display();
        assert!(
            summary.skipped_groups.is_empty(),
            "{name}: skipped on the CPU: {:#?}",
            summary.skipped_groups
        );
        assert_eq!(planned_methods(&summary), want, "{name}");
        println!("{name}: {want:?} planned");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} configs");
}

/// Regression (a sweep on CUDA stopped mid-run on a policy the device does
/// not support: `ModelGenerator::supports` ignored the device): on a device
/// engine the host-attention policies' groups are skipped before anything
/// runs and listed, with the reason, in the dry run's plan; dense and DMS
/// stay planned. No GPU is needed: the check loads nothing.
#[test]
fn device_policy_support_is_checked_at_plan_time() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/r1-distill-qwen-7b.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("dtype = \"bf16\""));
    for device in ["cuda", "wgpu"] {
        // wgpu runs the half-precision projections in f16 (no bf16 in
        // WGSL): the same dense and DMS groups planned, none skipped for
        // the weight form.
        let text = match device {
            "wgpu" => text.replace("dtype = \"bf16\"", "dtype = \"f16\""),
            _ => text.clone(),
        };
        let summary = dry_run(&path, &text, device);
        let planned = planned_methods(&summary);
        assert_eq!(
            planned,
            BTreeSet::from(["dense".to_string(), "dms".to_string()])
        );
        let skipped: BTreeSet<&str> = summary
            .skipped_groups
            .iter()
            .map(|g| g.label.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(skipped, BTreeSet::from(["h2o", "quest", "tova"]));
        let plan = summary.plan.unwrap();
        for g in &summary.skipped_groups {
            assert!(g.reason.contains("CPU engine only"), "{}", g.reason);
            assert!(plan.contains(&format!("skipped {} (", g.label)), "{plan}");
        }
    }
}
