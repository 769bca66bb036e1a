//! Logit parity with Hugging Face transformers on tiny random checkpoints
//! (tests/fixtures/models, written by scripts/make_model_fixtures.py), the
//! decode batch invariance over the KV store, and the load error paths.

use std::path::{Path, PathBuf};

use burn::backend::flex::Flex;
use burn::prelude::*;
use hyperscale::kv::{KvStore, SeqId};
use hyperscale::model::{LoadError, Transformer, open_model};

type B = Flex;

/// Max abs logit error allowed against transformers (f32).
const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

#[derive(serde::Deserialize)]
struct Expected {
    prompt_ids: Vec<u32>,
    prompt_logits: Vec<Vec<f32>>,
    greedy_ids: Vec<u32>,
    decode_logits: Vec<Vec<f32>>,
}

fn expected(name: &str) -> Expected {
    let path = fixture(name).join("expected.json");
    let text = std::fs::read_to_string(&path).expect("expected.json");
    serde_json::from_str(&text).expect("valid expected.json")
}

fn load(dir: &Path) -> Result<Transformer<B>, LoadError> {
    let source = open_model(dir)?;
    Transformer::load(&source.config, source.weights.as_ref(), &Default::default())
}

fn rows(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, vocab] = t.dims();
    let data = t.into_data().into_vec::<f32>().expect("f32 logits");
    data.chunks(vocab).map(<[f32]>::to_vec).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "row lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Prefill the prompt, then greedy-decode with the reference's tokens;
/// returns the max abs errors (prefill, decode).
fn parity(name: &str) -> (f32, f32) {
    let model = load(&fixture(name)).expect("fixture loads");
    let exp = expected(name);
    let mut store = KvStore::new(model.kv_shape());
    let seq = store.add_sequence();

    let got = rows(model.prefill(&mut store, seq, &exp.prompt_ids));
    assert_eq!(got.len(), exp.prompt_logits.len());
    let prefill_err = got
        .iter()
        .zip(&exp.prompt_logits)
        .map(|(g, e)| max_abs_diff(g, e))
        .fold(0.0, f32::max);
    assert_eq!(store.position(seq), exp.prompt_ids.len());

    let mut decode_err = 0.0f32;
    let mut next = argmax(got.last().expect("rows"));
    for (step, (&token, want)) in exp.greedy_ids.iter().zip(&exp.decode_logits).enumerate() {
        assert_eq!(next, token, "{name}: greedy token {step}");
        let got = rows(model.decode(&mut store, &[seq], &[token]));
        decode_err = decode_err.max(max_abs_diff(&got[0], want));
        next = argmax(&got[0]);
    }
    eprintln!("{name}: max abs logit error prefill {prefill_err:.2e}, decode {decode_err:.2e}");
    assert!(
        prefill_err <= TOLERANCE,
        "{name}: prefill error {prefill_err}"
    );
    assert!(decode_err <= TOLERANCE, "{name}: decode error {decode_err}");
    (prefill_err, decode_err)
}

#[test]
fn llama_tied_llama3_rope_matches_transformers() {
    parity("tiny-llama");
}

#[test]
fn qwen2_biases_untied_matches_transformers() {
    parity("tiny-qwen2");
}

#[test]
fn qwen3_qk_norm_bf16_matches_transformers() {
    parity("tiny-qwen3");
}

#[test]
fn prefill_last_and_chunked_prefill_match_full_prefill() {
    let name = "tiny-qwen2";
    let model = load(&fixture(name)).expect("fixture loads");
    let exp = expected(name);
    let ids = &exp.prompt_ids;
    let mut store = KvStore::new(model.kv_shape());

    let whole = store.add_sequence();
    let last = rows(model.prefill_last(&mut store, whole, ids));
    assert_eq!(last.len(), 1);
    let want_last = exp.prompt_logits.last().expect("rows");
    assert!(max_abs_diff(&last[0], want_last) <= TOLERANCE);

    // A second chunk continues a sequence that already holds entries.
    let split = 10;
    let chunked = store.add_sequence();
    let first = rows(model.prefill(&mut store, chunked, &ids[..split]));
    let second = rows(model.prefill(&mut store, chunked, &ids[split..]));
    assert_eq!(store.position(chunked), ids.len());
    for (i, row) in first.iter().chain(&second).enumerate() {
        let err = max_abs_diff(row, &exp.prompt_logits[i]);
        assert!(err <= TOLERANCE, "chunked prefill row {i}: error {err}");
    }
}

/// Decodes `steps` tokens for each sequence in one batch, returning the
/// logits per sequence per step.
fn decode_steps(
    model: &Transformer<B>,
    store: &mut KvStore,
    seqs: &[SeqId],
    tokens: &[Vec<u32>],
) -> Vec<Vec<Vec<f32>>> {
    let steps = tokens[0].len();
    let mut out = vec![Vec::new(); seqs.len()];
    for step in 0..steps {
        let step_tokens: Vec<u32> = tokens.iter().map(|t| t[step]).collect();
        for (i, row) in rows(model.decode(store, seqs, &step_tokens))
            .into_iter()
            .enumerate()
        {
            out[i].push(row);
        }
    }
    out
}

/// One sequence's logits, a row per decode step.
type Steps = Vec<Vec<f32>>;

/// Each prompt prefilled into one store and decoded there in one batch
/// (`tokens[i]` for sequence `i`, a step per column), and again alone in a
/// store of its own: per sequence, `(alone, batched)` logits per step.
fn batched_and_alone<P: AsRef<[u32]>>(
    model: &Transformer<B>,
    prompts: &[P],
    tokens: &[Vec<u32>],
) -> Vec<(Steps, Steps)> {
    let mut batch_store = KvStore::new(model.kv_shape());
    let seqs: Vec<SeqId> = prompts
        .iter()
        .map(|p| {
            let s = batch_store.add_sequence();
            model.prefill_last(&mut batch_store, s, p.as_ref());
            s
        })
        .collect();
    let batched = decode_steps(model, &mut batch_store, &seqs, tokens);
    prompts
        .iter()
        .zip(batched)
        .enumerate()
        .map(|(i, (prompt, batched))| {
            let mut store = KvStore::new(model.kv_shape());
            let s = store.add_sequence();
            model.prefill_last(&mut store, s, prompt.as_ref());
            let mut alone = decode_steps(model, &mut store, &[s], &tokens[i..=i]);
            (alone.remove(0), batched)
        })
        .collect()
}

#[test]
fn batched_decode_equals_each_sequence_alone() {
    for name in ["tiny-llama", "tiny-qwen3"] {
        let model = load(&fixture(name)).expect("fixture loads");
        let exp = expected(name);
        let prompts = [&exp.prompt_ids[..], &exp.prompt_ids[3..11]];
        assert_ne!(prompts[0].len(), prompts[1].len());
        let tokens = [vec![5u32, 77, 300, 2], vec![400u32, 9, 9, 128]];
        for (i, (alone, batched)) in batched_and_alone(&model, &prompts, &tokens)
            .iter()
            .enumerate()
        {
            for (step, (a, b)) in alone.iter().zip(batched).enumerate() {
                let err = max_abs_diff(a, b);
                assert!(
                    err <= 1e-5,
                    "{name}: seq {i} step {step}: batch differs by {err}"
                );
            }
        }
    }
}

/// A decode step of more rows than the projection kernels take at once
/// (`hyperscale::model::kernels::gemv::MAX_ROWS`, 16) gives each sequence
/// the logits it gets alone, bit for bit: a sweep's records must not depend
/// on how many sequences `--max-sequences` lets into one step.
#[test]
fn a_decode_step_of_more_rows_than_a_kernel_takes_equals_each_sequence_alone() {
    let n = hyperscale::model::kernels::gemv::MAX_ROWS + 5;
    for name in ["tiny-llama", "tiny-qwen3"] {
        let model = load(&fixture(name)).expect("fixture loads");
        let exp = expected(name);
        // Prompts of different lengths and contents; two decode steps.
        let prompts: Vec<Vec<u32>> = (0..n)
            .map(|i| exp.prompt_ids[i % 7..(i % 7) + 3 + i % 11].to_vec())
            .collect();
        let tokens: Vec<Vec<u32>> = (0..n as u32)
            .map(|i| vec![3 + 17 * i, 500 - 13 * i])
            .collect();
        for (i, (alone, batched)) in batched_and_alone(&model, &prompts, &tokens)
            .iter()
            .enumerate()
        {
            for (step, (a, b)) in alone.iter().zip(batched).enumerate() {
                assert!(
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{name}: seq {i} of {n}, step {step}: batched logits differ by up to {}",
                    max_abs_diff(a, b)
                );
            }
        }
    }
}

/// Copies a fixture directory into a temp dir.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture(name)).expect("fixture dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    dir
}

/// Rewrites `model.safetensors` in `dir` without the tensor `drop`.
fn drop_tensor(dir: &Path, drop: &str) {
    use safetensors::tensor::{SafeTensors, TensorView};
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let kept: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != drop)
        .collect();
    assert_eq!(kept.len() + 1, st.len(), "{drop} was in the fixture");
    let out = safetensors::serialize(kept, None).expect("serialize");
    std::fs::write(&path, out).expect("write");
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_fixture("tiny-qwen2");
    let name = "model.layers.1.self_attn.k_proj.bias";
    drop_tensor(dir.path(), name);
    match load(dir.path()) {
        Err(err @ LoadError::MissingTensor { .. }) => {
            let msg = err.to_string();
            assert!(
                msg.contains(name) && msg.contains("model.safetensors"),
                "{msg}"
            );
        }
        other => panic!("expected a missing-tensor error, got {:?}", other.err()),
    }
}

/// Rewrites one field of `config.json` in `dir` (`None` removes it).
fn patch_config(dir: &Path, field: &str, value: Option<serde_json::Value>) {
    let path = dir.join("config.json");
    let mut config: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    match value {
        Some(v) => config.insert(field.to_string(), v),
        None => config.remove(field),
    };
    std::fs::write(&path, serde_json::to_string(&config).expect("json")).expect("write");
}

#[test]
fn shape_mismatch_is_named() {
    let dir = copy_fixture("tiny-llama");
    patch_config(dir.path(), "intermediate_size", Some(96.into()));
    let msg = load(dir.path()).expect_err("load fails").to_string();
    assert!(
        msg.contains("model.layers.0.mlp.gate_proj.weight") && msg.contains("[96, 64]"),
        "{msg}"
    );
}

#[test]
fn bad_config_fields_are_named() {
    let cases: [(&str, Option<serde_json::Value>, &str); 3] = [
        ("num_attention_heads", Some(5.into()), "num_attention_heads"),
        ("hidden_size", Some("64".into()), "hidden_size"),
        ("vocab_size", None, "vocab_size"),
    ];
    for (field, value, named) in cases {
        let dir = copy_fixture("tiny-llama");
        // Without an explicit head_dim, the head count must divide hidden_size.
        patch_config(dir.path(), "head_dim", None);
        patch_config(dir.path(), field, value);
        match load(dir.path()) {
            Err(err @ LoadError::BadField { .. }) => {
                let msg = err.to_string();
                assert!(msg.contains(&format!("`{named}`")), "{msg}");
                assert!(msg.contains("config.json"), "{msg}");
            }
            other => panic!("{field}: expected a bad-field error, got {:?}", other.err()),
        }
    }
}

#[test]
fn truncated_weights_are_reported() {
    let dir = copy_fixture("tiny-llama");
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    match load(dir.path()) {
        Err(err @ LoadError::Truncated { .. }) => {
            assert!(err.to_string().contains("model.safetensors"), "{err}");
        }
        other => panic!("expected a truncation error, got {:?}", other.err()),
    }
}

struct NoText;
impl hyperscale::generate::TextDecoder for NoText {
    fn decode(&self, _: &[u32]) -> String {
        String::new()
    }
}

#[test]
fn greedy_generation_reproduces_transformers_ids() {
    use hyperscale::generate::{Request, SamplingParams, StopCriteria, generate};
    let name = "tiny-qwen3";
    let model = load(&fixture(name)).expect("fixture loads");
    let exp = expected(name);
    let request = Request {
        prompt: exp.prompt_ids.clone(),
        samples: 3,
        first_sample: 0,
        max_tokens: exp.greedy_ids.len(),
        sampling: SamplingParams::default(),
        stop: StopCriteria {
            eos_ids: vec![],
            stop_strings: vec![],
        },
    };
    let mut store = KvStore::new(model.kv_shape());
    let done = generate(&model, &NoText, &mut store, &[request], |_| {});
    assert_eq!(done.len(), 3);
    for c in done {
        assert_eq!(c.token_ids, exp.greedy_ids, "sample {}", c.sample);
    }
}

#[derive(serde::Deserialize)]
struct SmolReference {
    prompt: String,
    prompt_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    first_step_top5: Vec<(u32, f64)>,
}

/// The real SmolLM2-135M-Instruct GGUF (Q4_1, llama with permuted Q/K rows)
/// against the numpy reference on the same dequantized weights.
#[test]
fn smollm2_gguf_matches_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gguf = root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        gguf.is_file(),
        "{} is missing: run scripts/setup.sh",
        gguf.display()
    );
    let reference = root.join("tests/data/models/ref_smollm2_135m.json");
    let text = std::fs::read_to_string(&reference).expect("reference json");
    let reference: SmolReference = serde_json::from_str(&text).expect("valid reference");

    let source = open_model(&gguf).expect("GGUF opens");
    let ids = source
        .tokenizer
        .encode(&reference.prompt, false)
        .expect("encodes");
    assert_eq!(ids, reference.prompt_ids, "GGUF tokenizer vs reference ids");
    let model: Transformer<B> =
        Transformer::load(&source.config, source.weights.as_ref(), &Default::default())
            .expect("SmolLM2 loads");

    let mut store = KvStore::new(model.kv_shape());
    let seq = store.add_sequence();
    let first = rows(model.prefill_last(&mut store, seq, &reference.prompt_ids)).remove(0);
    let mut worst = 0.0f64;
    for &(id, want) in &reference.first_step_top5 {
        let err = (f64::from(first[id as usize]) - want).abs();
        worst = worst.max(err);
        assert!(
            err <= 1e-2,
            "token {id}: logit {} vs {want}",
            first[id as usize]
        );
    }
    let mut top: Vec<u32> = (0..first.len() as u32).collect();
    top.sort_by(|&a, &b| first[b as usize].total_cmp(&first[a as usize]));
    let want_top: Vec<u32> = reference.first_step_top5.iter().map(|t| t.0).collect();
    assert_eq!(top[..5], want_top[..], "top-5 order");

    let mut generated = vec![argmax(&first)];
    while generated.len() < reference.greedy_ids.len() {
        let last = *generated.last().expect("a token");
        let logits = rows(model.decode(&mut store, &[seq], &[last])).remove(0);
        generated.push(argmax(&logits));
    }
    eprintln!("smollm2: max abs top-5 logit error {worst:.2e}, greedy {generated:?}");
    assert_eq!(generated, reference.greedy_ids);
}

#[test]
fn hf_dir_tokenizer_and_generation_config_are_loaded() {
    let dir = fixture("tiny-llama");
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
    let prompt: String = serde_json::from_str::<serde_json::Value>(&text).expect("json")["prompt"]
        .as_str()
        .expect("prompt")
        .to_string();
    let source = open_model(&dir).expect("fixture opens");
    let ids = source.tokenizer.encode(&prompt, false).expect("encodes");
    assert_eq!(ids, expected("tiny-llama").prompt_ids);
    assert_eq!(source.generation.eos_token_ids, vec![2]);
    assert!(source.tokenizer.eos_ids().contains(&2));
}
