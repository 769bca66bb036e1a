//! The CPU projection kernels' instruction sets (`hyperscale::model::kernels::isa`)
//! give the same SmolLM2 logits bit for bit, with the GGUF's quantized
//! blocks and with f32 weights, single-sequence and batched.
//!
//! Its own test binary: `isa::force` is process-wide.

use std::path::Path;

use burn::backend::flex::Flex;
use hyperscale::kv::{KvStore, SeqId};
use hyperscale::model::formats::gguf::GgufFile;
use hyperscale::model::kernels::isa::{self, Isa};
use hyperscale::model::{DecodeWeights, ModelConfig, Transformer};

/// Prefill of five short prompts, then two decode steps of one sequence
/// alone and of all five (two AVX-512 row pairs and a half pair); the
/// logits of every decode call.
fn run(model: &Transformer<Flex>) -> Vec<Vec<f32>> {
    let mut store = KvStore::new(model.kv_shape());
    let seqs: Vec<SeqId> = (0..5u32)
        .map(|i| {
            let prompt: Vec<u32> = (0..3 + i).map(|t| 1 + (97 * i + 389 * t) % 49000).collect();
            let s = store.add_sequence();
            model.prefill_last(&mut store, s, &prompt);
            s
        })
        .collect();
    let mut out = Vec::new();
    for step in 0..2u32 {
        for batch in [&seqs[..1], &seqs[..]] {
            let tokens: Vec<u32> = (0..batch.len() as u32)
                .map(|i| 100 + 31 * step + 7 * i)
                .collect();
            let logits = model.decode(&mut store, batch, &tokens);
            out.push(logits.into_data().into_vec::<f32>().unwrap());
        }
    }
    out
}

fn bits(calls: &[Vec<f32>]) -> Vec<Vec<u32>> {
    calls
        .iter()
        .map(|c| c.iter().map(|x| x.to_bits()).collect())
        .collect()
}

#[test]
fn every_instruction_set_gives_the_same_logits() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh to download the SmolLM2 GGUF",
        path.display()
    );
    let file = GgufFile::open(&path).unwrap();
    let config = ModelConfig::from_gguf(&file).unwrap();
    for decode in [DecodeWeights::Quantized, DecodeWeights::F32] {
        let model =
            Transformer::<Flex>::load_with(&config, &file, &Default::default(), decode).unwrap();
        isa::force(Some(Isa::Portable)).unwrap();
        let want = bits(&run(&model));
        // The portable path (the reference: ≈ 9 s here, its `mul_add` is a
        // library call without FMA enabled at build time) against each
        // vector path this CPU runs.
        for isa in Isa::supported().into_iter().filter(|i| *i != Isa::Portable) {
            isa::force(Some(isa)).unwrap();
            let got = bits(&run(&model));
            for (call, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g == w,
                    "{decode:?} {isa}: decode call {call} differs from portable"
                );
            }
        }
        isa::force(None).unwrap();
    }
}
