//! The binary against the loopback mock Hub: `hyperscale data fetch` into a
//! temporary HF_HOME and then loading the task without flags, and
//! `--model hf:ORG/NAME` fetching a sharded tiny checkpoint and generating
//! exactly what the local directory generates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::hub_mock::{MockFile, MockHub, repo_at};

const C1: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in `cwd` with a clean Hugging Face environment.
fn hyperscale(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyperscale"));
    cmd.current_dir(cwd).args(args);
    for var in [
        "HF_HOME",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "HYPERSCALE_DATA",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run hyperscale")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn data_fetch_then_the_task_loads_without_flags() {
    let hub = MockHub::start();
    let jsonl = std::fs::read(root().join("tests/data/aime25/nemo_skills_aime25_test.jsonl"))
        .expect("shared aime25 data");
    hub.add_repo(
        "datasets",
        "math-ai/aime25",
        repo_at(C1, vec![MockFile::new("test.jsonl", jsonl.clone(), true)]),
    );
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("hf");
    let endpoint = hub.endpoint();
    let env = [
        ("HF_HOME", home.to_str().unwrap()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];

    // Before: not found, and the message says how to get it.
    let out = hyperscale(work.path(), &env, &["tasks", "show", "aime25"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("hyperscale data fetch aime25"), "{err}");

    let out = hyperscale(
        work.path(),
        &env,
        &["data", "fetch", "aime25", "--out", "copy"],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    let snapshot = home
        .join("hub/datasets--math-ai--aime25/snapshots")
        .join(C1)
        .join("test.jsonl");
    assert!(
        stdout.contains(C1) && stdout.contains(&snapshot.display().to_string()),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&snapshot).unwrap(), jsonl);
    assert_eq!(
        std::fs::read(work.path().join("copy/test.jsonl")).unwrap(),
        jsonl
    );

    // After: found in the cache with no flag, even offline.
    let offline = [env[0], env[1], ("HF_HUB_OFFLINE", "1")];
    let out = hyperscale(
        work.path(),
        &offline,
        &["tasks", "show", "aime25", "--limit", "1"],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    assert!(stdout.contains("problems: 30 (skipped 0"), "{stdout}");
    assert!(
        stdout.contains(&format!("read {}", snapshot.display())),
        "{stdout}"
    );
}

#[test]
fn data_fetch_errors_are_one_clear_line() {
    let hub = MockHub::start();
    let mut gated = repo_at(
        C1,
        vec![MockFile::new("gpqa_diamond.csv", "not,real\n", true)],
    );
    gated.gated = true;
    hub.add_repo("datasets", "Idavidrein/gpqa", gated);
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("hf");
    let endpoint = hub.endpoint();
    let env = [
        ("HF_HOME", home.to_str().unwrap()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];
    /// (arguments, extra environment, expected output fragments)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case<'_>; 4] = [
        (
            &["data", "fetch", "arith"],
            &env,
            &["`arith`", "generated", "no data to fetch"],
        ),
        (
            &["data", "fetch", "aime24"],
            &env,
            &["`aime24`", "[source.hub]", "--data"],
        ),
        (
            &["data", "fetch", "gpqa-diamond"],
            &env,
            &["Idavidrein/gpqa", "gated", "HF_TOKEN"],
        ),
        (
            &["data", "fetch", "aime25"],
            &[env[0], env[1], ("HF_HUB_OFFLINE", "1")],
            &[
                "`test.jsonl`",
                "HF_HUB_OFFLINE",
                "datasets--math-ai--aime25",
            ],
        ),
    ];
    for (args, env, needles) in cases {
        let out = hyperscale(work.path(), env, args);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: `{n}` not in {err}");
        }
    }
}

/// Splits the fixture's `model.safetensors` into two shards and an index.
fn sharded(dir: &Path) -> Vec<MockFile> {
    use safetensors::SafeTensors;
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let half = names.len() / 2;
    let mut files = Vec::new();
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [&names[..half], &names[half..]].into_iter().enumerate() {
        let shard = format!("model-0000{}-of-00002.safetensors", i + 1);
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = part
            .iter()
            .map(|n| (n.clone(), st.tensor(n).unwrap()))
            .collect();
        for n in part {
            weight_map.insert(n.clone(), shard.clone().into());
        }
        let data = safetensors::serialize(views, None).unwrap();
        files.push(MockFile::new(&shard, data, true));
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string();
    files.push(MockFile::new("model.safetensors.index.json", index, false));
    files
}

/// A tiny fixture checkpoint as Hub files, its weights in two shards.
fn checkpoint_files(fixture: &Path) -> Vec<MockFile> {
    let mut files = sharded(fixture);
    for name in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ] {
        files.push(MockFile::new(
            name,
            std::fs::read(fixture.join(name)).unwrap(),
            false,
        ));
    }
    files
}

#[test]
fn a_sweep_config_model_path_may_be_hf() {
    let hub = MockHub::start();
    let fixture = root().join("tests/fixtures/models/tiny-llama");
    hub.add_repo(
        "models",
        "org/tiny-llama",
        repo_at(C1, checkpoint_files(&fixture)),
    );
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("hf");
    let endpoint = hub.endpoint();
    let env = [
        ("HF_HOME", home.to_str().unwrap()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];
    let config = r#"[run]
name = "hub"

[model]
path = "hf:org/tiny-llama"

[[tasks]]
name = "arith"
limit = 1

[sampling]
temperature = 0.8
top_p = 0.95
seeds = [3]

[grid]
cr = [2]
widths = [1]
lengths = [8]
repeats = 1

[[grid.methods]]
policy = "dense"
"#;
    std::fs::write(work.path().join("sweep.toml"), config).unwrap();
    let out = hyperscale(
        work.path(),
        &env,
        &[
            "sweep",
            "sweep.toml",
            "--progress",
            "none",
            "--results",
            "results",
        ],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{stdout}{err}");
    let named: Vec<PathBuf> = walk(&work.path().join("results"))
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("org/tiny-llama@sha256:")))
        .collect();
    assert!(
        !named.is_empty(),
        "no result file names the hub model's identity: {err}"
    );
    assert!(home.join("hub/models--org--tiny-llama/refs/main").is_file());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn hf_model_is_fetched_then_generates_like_the_local_dir() {
    let fixture = root().join("tests/fixtures/models/tiny-qwen2");
    let mut files = checkpoint_files(&fixture);
    // Not a checkpoint file: never fetched.
    files.push(MockFile::new("expected.json", "{}", true));
    let hub = MockHub::start();
    hub.add_repo("models", "org/tiny-qwen2", repo_at(C1, files));
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("hf");
    let endpoint = hub.endpoint();
    let env = [
        ("HF_HOME", home.to_str().unwrap()),
        ("HF_ENDPOINT", endpoint.as_str()),
    ];
    let args = |model: &str| {
        [
            "generate",
            "--model",
            model,
            "--prompt",
            "hello there",
            "--max-tokens",
            "6",
            "--json",
        ]
        .map(str::to_string)
    };
    let run = |env: &[(&str, &str)], model: &str| {
        let a = args(model);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = hyperscale(work.path(), env, &a);
        let (stdout, err) = text(&out);
        assert!(out.status.success(), "{model}: {stdout}{err}");
        let v: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        v["text"].as_str().unwrap().to_string()
    };
    let local = run(&env, fixture.to_str().unwrap());
    let hub_text = run(&env, &format!("hf:org/tiny-qwen2@{C1}"));
    assert_eq!(hub_text, local);
    let snapshot = home.join("hub/models--org--tiny-qwen2/snapshots").join(C1);
    for f in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "chat_template.jinja",
    ] {
        assert!(snapshot.join(f).is_file(), "{f}");
    }
    assert!(!snapshot.join("expected.json").exists());

    // Offline, by branch name: from the cache (`main` was never fetched,
    // so the commit-id fetch above is what is found only by commit).
    let offline = [env[0], env[1], ("HF_HUB_OFFLINE", "1")];
    assert_eq!(run(&offline, &format!("hf:org/tiny-qwen2@{C1}")), local);
    let out = hyperscale(
        work.path(),
        &offline,
        &args("hf:org/tiny-qwen2")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("config.json") && err.contains("refs/main"),
        "{err}"
    );
    let gets = hub
        .log()
        .iter()
        .filter(|l| l.starts_with("GET ") && l.contains("/resolve/"))
        .count();
    assert_eq!(gets, 8, "each file once: {:?}", hub.log());
}
