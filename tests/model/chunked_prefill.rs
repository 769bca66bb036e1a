//! Is a prompt prefilled in chunks the same, bit for bit, as prefilled in
//! one piece? Per cache policy on the CPU (tiny Qwen3 fixtures): the last
//! prompt row's logits, then a few greedy decode steps (whose logits read
//! every entry the prefill kept), and the sequence's counters (prefill and
//! decode reads, resident and peak entries, rows' lengths) and the store's
//! peak. The scheduler chunks a prompt only under the policies found
//! chunk-invariant here (`hyperscale::generate::chunks_prefill`): today
//! none. DMS keeps the same entries and counts the same reads, within
//! 1e-5 of the logits (`dms::chunked_prefill_equals_one_shot`), but not
//! bit for bit.

use std::path::{Path, PathBuf};

use burn::backend::flex::Flex;
use burn::prelude::*;
use hyperscale::generate::chunks_prefill;
use hyperscale::kv::{Budget, CachePolicy, KvStats, KvStore, TovaGranularity};
use hyperscale::model::{Transformer, open_model};

type B = Flex;

const PROMPT: [u32; 29] = [
    1, 17, 99, 240, 3, 45, 311, 8, 77, 5, 130, 64, 12, 400, 256, 31, 7, 88, 190, 2, 46, 301, 11,
    95, 4, 60, 33, 71, 9,
];

fn load(name: &str) -> Transformer<B> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name);
    let source = open_model(&dir).expect("fixture opens");
    Transformer::load(&source.config, source.weights.as_ref(), &Default::default())
        .expect("fixture loads")
}

/// What a run leaves behind: every logits row as bits, the sequence's
/// counters and the store's peak.
#[derive(Debug, PartialEq)]
struct Run {
    logits: Vec<Vec<u32>>,
    stats: KvStats,
    store_peak: u64,
}

/// Prefill `PROMPT` in `chunks`, then 8 greedy decode steps.
fn run(model: &Transformer<B>, policy: &CachePolicy, chunks: &[usize]) -> Run {
    let mut store =
        KvStore::with_policy(model.kv_shape(), policy, model.dms_params()).expect("policy");
    let seq = store.add_sequence();
    let rows = |t: Tensor<B, 2>| -> Vec<Vec<f32>> {
        let [_, vocab] = t.dims();
        let data = t.into_data().into_vec::<f32>().expect("f32 logits");
        data.chunks(vocab).map(<[f32]>::to_vec).collect()
    };
    let mut at = 0;
    let mut last = Vec::new();
    for &c in chunks {
        last = rows(model.prefill_last(&mut store, seq, &PROMPT[at..at + c])).remove(0);
        at += c;
    }
    assert_eq!(at, PROMPT.len());
    let mut out = vec![last];
    for _ in 0..8 {
        let row = out.last().expect("row");
        let tok = (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b }) as u32;
        out.push(rows(model.decode(&mut store, &[seq], &[tok])).remove(0));
    }
    Run {
        logits: out
            .iter()
            .map(|r| r.iter().map(|x| x.to_bits()).collect())
            .collect(),
        stats: store.stats(seq),
        store_peak: store.peak_resident(),
    }
}

#[test]
fn chunked_prefill_is_bit_identical_where_the_scheduler_chunks() {
    let budget = Budget::Ratio {
        cr: 2.0,
        min_tokens: 4,
    };
    let cases = [
        ("tiny-qwen3", CachePolicy::Dense {}),
        ("tiny-qwen3", CachePolicy::Window { sink: 2, budget }),
        (
            "tiny-qwen3",
            CachePolicy::Tova {
                budget,
                granularity: TovaGranularity::Layer,
            },
        ),
        ("tiny-qwen3", CachePolicy::H2o { recent: 4, budget }),
        (
            "tiny-qwen3-dms-adapter",
            CachePolicy::Dms {
                window: None,
                shifted: None,
            },
        ),
        (
            "tiny-qwen3-dms-neuron",
            CachePolicy::Dms {
                window: None,
                shifted: None,
            },
        ),
    ];
    let mut report = Vec::new();
    for (name, policy) in &cases {
        let model = load(name);
        let one = run(&model, policy, &[PROMPT.len()]);
        let mut same = true;
        for chunks in [&[5, 1, 11, 12][..], &[8, 8, 8, 5], &[16, 13], &[1; 29]] {
            let many = run(&model, policy, chunks);
            let logits = many.logits == one.logits;
            let stats = many.stats == one.stats && many.store_peak == one.store_peak;
            report.push(format!(
                "{name} {}: chunks {chunks:?}: logits {}, counters {}{}",
                policy.method(),
                if logits { "identical" } else { "differ" },
                if stats { "identical" } else { "differ" },
                if stats {
                    String::new()
                } else {
                    format!(" ({:?} vs one shot {:?})", many.stats, one.stats)
                }
            ));
            same &= logits && stats;
            if policy.method() == "dms" {
                assert!(
                    stats,
                    "DMS keeps and counts the same: {}",
                    report.join("\n")
                );
            }
        }
        let resolved = policy.resolve(model.dms_params()).expect("policy resolves");
        // The scheduler may chunk only where chunking changes nothing.
        assert!(
            !chunks_prefill(&resolved) || same,
            "{name} {} is chunked but not chunk-invariant:\n{}",
            policy.method(),
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
}
