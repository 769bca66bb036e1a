//! The `hyperscale train-dms` and `eval-dms` commands as library calls:
//! resolve the data, build the backend for the device, run, report.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::backend::flex::Flex;
use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::BaseModel;
use super::data::{Document, pack, read_documents};
use super::distill::{DistillPlan, self_distill};
use super::{
    DecisionParams, DmsTrainConfig, EvalReport, FrozenModel, StepLog, TrainConfig, TrainError,
    Trainer, Variant,
};
use crate::device::DeviceKind;
use crate::model::{DmsDecision, ModelSource, open_model};
use crate::runtime::LoadedModel;

/// Where training or evaluation text comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// A text file (one document) or JSONL (`text`, or `prompt` + `completion`).
    File(PathBuf),
    /// The base answers task prompts.
    SelfDistill(DistillPlan),
}

/// Token sequences of `seq_len` from `data`, and the ids excluded from the
/// KL (EOS). Self-distillation generates with `model_path` on the CPU and,
/// given `keep`, writes its documents there as JSONL (`tokens`, `text`),
/// reusable with `--data`.
pub fn sequences(
    model_path: &Path,
    source: &ModelSource,
    data: &DataSource,
    seq_len: usize,
    keep: Option<&Path>,
    mut note: impl FnMut(String),
) -> Result<(Vec<Vec<u32>>, Vec<u32>), TrainError> {
    let tok = &source.tokenizer;
    let eos = tok.eos_ids().to_vec();
    let docs: Vec<Vec<u32>> = match data {
        DataSource::File(path) => read_documents(path)?
            .into_iter()
            .map(|d| match d {
                Document::Tokens(ids) => Ok(ids),
                Document::Text(t) => tok
                    .encode(&t, true)
                    .map_err(|e| TrainError::Tokenize(e.to_string())),
            })
            .collect::<Result<_, _>>()?,
        DataSource::SelfDistill(plan) => {
            let model = LoadedModel::load(model_path, DeviceKind::Cpu).map_err(|e| {
                TrainError::Setting {
                    field: "self-distill",
                    reason: crate::error_chain(&e),
                }
            })?;
            let docs = self_distill(&model, plan, |done, total| {
                note(format!("self-distillation: {done}/{total} completions"));
            })?;
            if let Some(path) = keep {
                write_documents(path, &docs, source)?;
            }
            docs
        }
    };
    let seqs = pack(&docs, eos.first().copied(), seq_len);
    if seqs.is_empty() {
        return Err(TrainError::NoData);
    }
    Ok((seqs, eos))
}

/// Writes token documents as JSONL (`tokens`, and `text` for reading).
fn write_documents(path: &Path, docs: &[Vec<u32>], source: &ModelSource) -> Result<(), TrainError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Write {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    let mut text = String::new();
    for d in docs {
        let decoded = source.tokenizer.decode(d, false).unwrap_or_default();
        let line = serde_json::json!({ "tokens": d, "text": decoded });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| TrainError::Write {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Trains on the CPU (Flex autodiff) or, in a `cuda` build, on a GPU.
pub fn train_dms(
    model_path: &Path,
    out: &Path,
    config: TrainConfig,
    data: &DataSource,
    device: DeviceKind,
    on_step: impl FnMut(&StepLog),
    note: impl FnMut(String),
) -> Result<Vec<PathBuf>, TrainError> {
    config.validate()?;
    let source = open_model(model_path)?;
    let keep = out.join("self_distill.jsonl");
    let (seqs, eos) = sequences(model_path, &source, data, config.seq_len, Some(&keep), note)?;
    let base = BaseModel::describe(model_path, source.format)?;
    let run = TrainRun {
        source: &source,
        base: &base,
        config,
        seqs: &seqs,
        eos: &eos,
        out,
    };
    match device {
        DeviceKind::Cpu => train_on::<Autodiff<Flex>>(&Default::default(), run, on_step),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda(index) => train_on::<Autodiff<crate::kv::CudaBackend>>(
            &cubecl::cuda::CudaDevice { index },
            run,
            on_step,
        ),
        #[allow(unreachable_patterns, reason = "reachable without the cuda feature")]
        other => Err(TrainError::Setting {
            field: "device",
            reason: format!(
                "training on `{other}` needs a `--features cuda` build (cpu works everywhere)"
            ),
        }),
    }
}

/// What a training run reads, whichever device it runs on.
struct TrainRun<'a> {
    source: &'a ModelSource,
    base: &'a BaseModel,
    config: TrainConfig,
    seqs: &'a [Vec<u32>],
    eos: &'a [u32],
    out: &'a Path,
}

fn train_on<B: AutodiffBackend>(
    device: &B::Device,
    run: TrainRun<'_>,
    on_step: impl FnMut(&StepLog),
) -> Result<Vec<PathBuf>, TrainError> {
    let TrainRun {
        source,
        base,
        config,
        seqs,
        eos,
        out,
    } = run;
    let mut trainer = Trainer::<B>::new(config, &source.config, source.weights.as_ref(), device)?;
    super::run::run(
        &mut trainer,
        seqs,
        eos,
        base,
        &source.config,
        source.weights.as_ref(),
        out,
        on_step,
    )
}

/// Evaluates a DMS model (adapter or full directory) on held-out text
/// against its own base with dense attention, on the CPU.
pub fn eval_dms(
    model_path: &Path,
    data: &DataSource,
    seq_len: usize,
    limit: Option<usize>,
    note: impl FnMut(String),
) -> Result<EvalReport, TrainError> {
    let source = open_model(model_path)?;
    let Some(dms) = source.config.dms.clone() else {
        return Err(TrainError::Setting {
            field: "model",
            reason: format!("`{}` has no DMS parameters", model_path.display()),
        });
    };
    let (mut seqs, eos) = sequences(model_path, &source, data, seq_len, None, note)?;
    if let Some(n) = limit {
        seqs.truncate(n);
    }
    let cfg = DmsTrainConfig {
        variant: match dms.decision {
            DmsDecision::Adapter => Variant::Adapter,
            DmsDecision::QueryNeuron => Variant::Neuron,
        },
        window: dms.window,
        alpha_scale: dms.alpha_scale,
        alpha_offset: dms.alpha_offset,
        ..DmsTrainConfig::default()
    };
    let device = Default::default();
    let base = FrozenModel::<Flex>::load(&source.config, source.weights.as_ref(), &device)?;
    let params = DecisionParams::<Flex>::load_or_init(
        cfg.variant,
        &source.config,
        source.weights.as_ref(),
        &device,
    )?;
    Ok(super::evaluate(&base, &params, &cfg, &seqs, &eos))
}
