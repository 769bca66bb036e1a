//! DMS checkpoints through the model (tests/fixtures/models/tiny-qwen3-dms-*,
//! written by scripts/make_dms_fixtures.py): both decision variants load
//! with their config fields and run under the DMS policy with real
//! eviction; all-keep equals dense; chunked prefill equals one shot; a model
//! without DMS parameters refuses the DMS policy; training-free policies run
//! through the model.

use std::path::{Path, PathBuf};

use burn::backend::flex::Flex;
use burn::prelude::*;
use hyperscale::kv::{
    Budget, CachePolicy, DmsParams, KvStore, QUEST_DENSE_LAYERS, QuestGranularity, SeqId,
    TovaGranularity,
};
use hyperscale::model::{DmsDecision, Transformer, open_model};

type B = Flex;

const PROMPT: [u32; 24] = [
    1, 17, 99, 240, 3, 45, 311, 8, 77, 5, 130, 64, 12, 400, 256, 31, 7, 88, 190, 2, 46, 301, 11, 95,
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn load(dir: &Path) -> Transformer<B> {
    let source = open_model(dir).expect("fixture opens");
    Transformer::load(&source.config, source.weights.as_ref(), &Default::default())
        .expect("fixture loads")
}

/// A copy of a fixture with `config.json` fields replaced.
fn patched(name: &str, fields: &[(&str, serde_json::Value)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(fixture(name)).expect("fixture dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("json");
    for (k, v) in fields {
        config[*k] = v.clone();
    }
    std::fs::write(&path, config.to_string()).expect("write config");
    dir
}

fn rows(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, vocab] = t.dims();
    let data = t.into_data().into_vec::<f32>().expect("f32 logits");
    data.chunks(vocab).map(<[f32]>::to_vec).collect()
}

fn argmax(row: &[f32]) -> u32 {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b }) as u32
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Prefill `PROMPT` (in `chunks`), then `steps` greedy tokens; returns the
/// last prompt row and every decode row, and the sequence.
fn greedy(
    model: &Transformer<B>,
    store: &mut KvStore,
    chunks: &[usize],
    steps: usize,
) -> (Vec<Vec<f32>>, SeqId) {
    let seq = store.add_sequence();
    let mut at = 0;
    let mut last = Vec::new();
    for &c in chunks {
        last = rows(model.prefill(store, seq, &PROMPT[at..at + c]));
        at += c;
    }
    assert_eq!(at, PROMPT.len());
    let mut out = vec![last.pop().expect("rows")];
    for _ in 0..steps {
        let tok = argmax(out.last().expect("row"));
        out.push(rows(model.decode(store, &[seq], &[tok])).remove(0));
    }
    (out, seq)
}

fn dms_store(model: &Transformer<B>) -> KvStore {
    let policy = CachePolicy::Dms {
        window: None,
        shifted: None,
    };
    KvStore::with_policy(model.kv_shape(), &policy, model.dms_params()).expect("dms policy")
}

#[test]
fn both_variants_load_with_their_config_fields() {
    for (name, variant) in [
        ("tiny-qwen3-dms-neuron", DmsDecision::QueryNeuron),
        ("tiny-qwen3-dms-adapter", DmsDecision::Adapter),
    ] {
        let model = load(&fixture(name));
        let dms = model.config().dms.clone().expect("a DMS model");
        assert_eq!(dms.decision, variant, "{name}");
        assert_eq!(
            (dms.alpha_scale, dms.alpha_offset, dms.cr),
            (100.0, 5.0, Some(2.0))
        );
        assert_eq!(
            model.dms_params(),
            Some(DmsParams {
                window: 4,
                shifted: true
            })
        );
    }
}

/// Both variants decode under DMS with real eviction: fewer entries than
/// positions, every row within the live bound, a clean audit.
#[test]
fn both_variants_run_under_dms_and_evict() {
    for name in ["tiny-qwen3-dms-neuron", "tiny-qwen3-dms-adapter"] {
        let model = load(&fixture(name));
        let mut store = dms_store(&model);
        let (out, seq) = greedy(&model, &mut store, &[PROMPT.len()], 16);
        assert!(out.iter().flatten().all(|x| x.is_finite()));
        let st = store.stats(seq);
        println!(
            "{name}: rows kept {:?} of {} positions",
            st.row_len, st.positions
        );
        assert_eq!(st.positions, 40);
        assert!(
            st.compression_ratio() > 1.2,
            "{name}: CR {}",
            st.compression_ratio()
        );
        assert!(
            st.row_len.iter().all(|&l| l >= 5),
            "a window of 4 + 1 stays"
        );
        store.audit().expect("audit");
    }
}

/// With an offset no logit reaches, DMS keeps everything: greedy tokens
/// equal dense and logits within 1e-5 (the neuron variant's channel is
/// zeroed in both runs: it is part of the model).
#[test]
fn all_keep_equals_dense() {
    for name in ["tiny-qwen3-dms-neuron", "tiny-qwen3-dms-adapter"] {
        let dir = patched(name, &[("dms_initial_alpha_offset", 1e9.into())]);
        let model = load(dir.path());
        let mut dms = dms_store(&model);
        let mut dense = KvStore::new(model.kv_shape());
        let (a, sa) = greedy(&model, &mut dms, &[PROMPT.len()], 12);
        let (b, _) = greedy(&model, &mut dense, &[PROMPT.len()], 12);
        let tokens = |r: &[Vec<f32>]| r.iter().map(|x| argmax(x)).collect::<Vec<_>>();
        assert_eq!(tokens(&a), tokens(&b), "{name}");
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| max_abs_diff(x, y))
            .fold(0.0, f32::max);
        println!("{name}: all-keep vs dense max logit error {err:.2e}");
        assert!(err <= 1e-5, "{name}: {err}");
        assert_eq!(dms.stats(sa).compression_ratio(), 1.0);
    }
}

/// Chunked prefill of the prompt gives the one-shot result under DMS.
#[test]
fn chunked_prefill_equals_one_shot() {
    let model = load(&fixture("tiny-qwen3-dms-neuron"));
    let mut one = dms_store(&model);
    let mut many = dms_store(&model);
    let (a, sa) = greedy(&model, &mut one, &[PROMPT.len()], 6);
    let (b, sb) = greedy(&model, &mut many, &[5, 1, 11, 7], 6);
    let err = a
        .iter()
        .zip(&b)
        .map(|(x, y)| max_abs_diff(x, y))
        .fold(0.0, f32::max);
    assert!(err <= 1e-5, "chunked vs one shot: {err}");
    assert_eq!(one.stats(sa).row_len, many.stats(sb).row_len);
}

#[test]
fn a_model_without_dms_refuses_the_dms_policy() {
    let model = load(&fixture("tiny-qwen3"));
    assert_eq!(model.dms_params(), None);
    let policy = CachePolicy::Dms {
        window: None,
        shifted: None,
    };
    let err = KvStore::with_policy(model.kv_shape(), &policy, model.dms_params())
        .expect_err("no DMS parameters")
        .to_string();
    assert!(err.contains("DMS parameters"), "{err}");
}

/// The training-free policies run through the model at CR 2 and keep the
/// budget; Quest keeps everything.
#[test]
fn training_free_policies_run_through_the_model() {
    let model = load(&fixture("tiny-qwen3"));
    let budget = Budget::Ratio {
        cr: 2.0,
        min_tokens: 4,
    };
    for policy in [
        CachePolicy::Window { sink: 2, budget },
        CachePolicy::Tova {
            budget,
            granularity: TovaGranularity::Layer,
        },
        CachePolicy::H2o { recent: 4, budget },
        CachePolicy::Quest {
            page_size: 4,
            budget,
            granularity: QuestGranularity::QueryHead,
            dense_layers: QUEST_DENSE_LAYERS,
        },
    ] {
        let mut store = KvStore::with_policy(model.kv_shape(), &policy, None).expect("policy");
        let (out, seq) = greedy(&model, &mut store, &[PROMPT.len()], 16);
        assert!(out.iter().flatten().all(|x| x.is_finite()));
        let st = store.stats(seq);
        let want = if policy.method() == "quest" { 40 } else { 20 };
        assert!(
            st.row_len.iter().all(|&l| l == want),
            "{}: {:?}",
            policy.method(),
            st.row_len
        );
        store.audit().expect("audit");
    }
}
