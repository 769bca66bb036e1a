//! `--dry-run`: the expanded plan as a table (one row per trial) with what
//! is left to decode and an upper bound on the tokens it will generate.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use super::expand::Expanded;
use super::options::SkippedGroup;
use super::plan::Plan;
use super::schedule::Schedule;

/// The plan, for people.
pub fn describe_plan(
    plan: &Plan,
    expanded: &Expanded,
    work: &Schedule,
    run_dir: &Path,
    skipped: &[SkippedGroup],
) -> String {
    // Per trial: records left to write, samples left to decode (by owner).
    let mut left: HashMap<&str, (u64, u64)> = HashMap::new();
    for b in &work.batches {
        let g = &expanded.groups[b.unit.group];
        let batch = &g.batches[b.batch];
        left.entry(&g.trials[batch.owner].id).or_default().1 += u64::from(batch.samples);
        for &(t, _) in &b.missing {
            left.entry(&g.trials[t].id).or_default().0 += 1;
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "run `{}` → {} ({} of {} records already there)",
        plan.run_name,
        run_dir.display(),
        work.skipped_records,
        work.planned_records
    );
    let _ = writeln!(
        s,
        "model {} ({}, {}){}",
        plan.model.path,
        plan.model.device,
        plan.model.dtype,
        plan.model
            .dms
            .iter()
            .map(|d| format!("; dms cr{} {}", d.cr, d.path))
            .collect::<String>()
    );
    for t in &expanded.tasks {
        let _ = writeln!(
            s,
            "task {} version {}: {} problems",
            t.name,
            t.version,
            t.problems.len()
        );
    }
    let _ = writeln!(
        s,
        "{} trials in {} width groups, {} repeat(s), nested widths: {}",
        expanded.trials().count(),
        expanded.groups.len(),
        expanded.repeats,
        if plan.nested_widths { "yes" } else { "no" }
    );
    let _ = writeln!(
        s,
        "{:<18} {:<14} {:<10} {:>5} {:>4} {:>6} {:>6} {:>8} {:>8} {:>8}",
        "trial", "task", "method", "cr", "W", "L", "seed", "problems", "records", "decode"
    );
    for g in &expanded.groups {
        let problems = g
            .problems
            .as_ref()
            .map_or(expanded.tasks[g.task].problems.len(), Vec::len);
        for t in &g.trials {
            let (records, decode) = left.get(t.id.as_str()).copied().unwrap_or_default();
            let _ = writeln!(
                s,
                "{:<18} {:<14} {:<10} {:>5} {:>4} {:>6} {:>6} {:>8} {:>8} {:>8}",
                t.id,
                t.spec.task,
                t.method,
                t.spec.cr.map_or("-".to_string(), |c| c.to_string()),
                t.spec.width,
                t.spec.max_tokens,
                t.sampling.seed,
                problems,
                records,
                decode
            );
        }
    }
    for g in skipped {
        let _ = writeln!(
            s,
            "skipped {} ({} trials): {}",
            g.label,
            g.trials.len(),
            g.reason
        );
    }
    let _ = writeln!(
        s,
        "to do: {} records, {} samples to decode, at most {} generated tokens (every sample to L)",
        work.records_to_write(),
        work.samples,
        work.tokens
    );
    s
}

/// The model's KV shape from `config.json` when the model is a local
/// directory holding one (a GGUF file: `None` until the model loads).
fn kv_shape(plan: &Plan) -> Option<crate::kv::KvShape> {
    crate::model::ModelConfig::from_hf_json(&Path::new(&plan.model.path).join("config.json"))
        .ok()
        .map(|c| crate::kv::KvShape {
            layers: c.num_layers,
            kv_heads: c.num_kv_heads,
            head_dim: c.head_dim,
        })
}

/// The KV memory a run of `plan` gets when none is named, as the dry run
/// can know it without loading the model
/// ([`crate::runtime::default_kv_memory`]; on CUDA the device's free memory
/// now, before the weights load: the run measures it again after); `Err`
/// says why it is unknown.
pub fn default_kv_memory(plan: &Plan) -> Result<crate::runtime::KvMemoryDefault, String> {
    use crate::device::DeviceKind;
    let device = plan.model.device;
    let layers = match device {
        DeviceKind::Cpu => 0,
        _ => kv_shape(plan)
            .ok_or("default: the device's, known once the model loads (its KV shape is unknown before)")?
            .layers,
    };
    let mut d = crate::runtime::default_kv_memory(device, layers)
        .ok_or_else(|| format!("the memory of {device} unknown"))?;
    if matches!(device, DeviceKind::Cuda(_)) {
        d.source
            .push_str("; measured before the weights load: the run measures it after them");
    }
    Ok(d)
}

/// The element a sweep's device stores keep K/V in (`--kv-dtype auto`:
/// bf16 on CUDA with compute capability ≥ 8.0, f32 elsewhere), with a note
/// when the device could not be asked.
fn stored_kv_dtype(plan: &Plan) -> (crate::kv::KvDtype, String) {
    use crate::kv::{KvDtype, KvDtypeChoice, KvTarget};
    match plan.model.device {
        crate::device::DeviceKind::Cpu => (KvDtype::F32, "f32".into()),
        device => match KvTarget::probe(device).map(|t| KvDtypeChoice::Auto.resolve(t)) {
            Ok(Ok(dtype)) => (dtype, format!("{dtype} (--kv-dtype auto on {device})")),
            _ if matches!(device, crate::device::DeviceKind::Cuda(_)) => (
                KvDtype::Bf16,
                format!(
                    "bf16 assumed ({device} could not be asked; auto is bf16 from compute \
                     capability 8.0, f32 below)"
                ),
            ),
            _ => (KvDtype::F32, format!("f32 (--kv-dtype auto on {device})")),
        },
    }
}

/// Prompt tokens the admission plan assumes: prompts are tokenised only
/// when the model loads, so the plan states its figures at this P.
pub const PLAN_PROMPT_TOKENS: usize = 256;

/// The admission plan, for `--dry-run`: sequences and KV memory (and where
/// the budget came from), then per trial group (method, CR, W, L) what one
/// request reserves ([`crate::generate::request_bound`]; DMS: its guess at
/// the checkpoint's target rate `1 / CR`, [`crate::generate::dms_guess`])
/// at P = [`PLAN_PROMPT_TOKENS`] prompt tokens, and how many such requests
/// (and sequences) fit at once. Bytes need the model's KV shape: read from
/// `config.json` when the model is a local directory holding one;
/// otherwise the figures are entries per KV row.
pub fn describe_admission(
    plan: &Plan,
    expanded: &Expanded,
    engine: crate::generate::SchedulerOptions,
    memory_source: &str,
) -> String {
    use crate::generate::{Request, SamplingParams, StopCriteria, dms_guess, request_bound};
    use crate::kv::{DmsParams, KvShape, KvStore};
    let mut s = String::new();
    let memory = engine.kv_memory;
    let (kv_dtype, kv_dtype_note) = stored_kv_dtype(plan);
    let _ = writeln!(
        s,
        "admission: up to {} sequences; KV memory {} ({memory_source}); K/V stored in \
         {kv_dtype_note}",
        engine.max_sequences,
        memory.map_or("unlimited".to_string(), |b| format!(
            "{b} B = {:.3} GiB",
            b as f64 / (1u64 << 30) as f64
        ))
    );
    let shape = kv_shape(plan);
    let unit = if shape.is_some() { "B" } else { "entries/row" };
    if shape.is_none() {
        let _ = writeln!(
            s,
            "  (KV shape unknown before the model loads: figures are entries per KV row; \
             bytes = entries × layers × KV heads × 2 × head_dim × {})",
            kv_dtype.bytes()
        );
    }
    let probe = shape.unwrap_or(KvShape {
        layers: 1,
        kv_heads: 1,
        head_dim: 1,
    });
    let _ = writeln!(
        s,
        "  {:<10} {:>5} {:>4} {:>6}  {:>14} {:>14}  {:>8} {:>9}  (P = {PLAN_PROMPT_TOKENS} prompt tokens)",
        "method", "cr", "W", "L", "per request", "per sequence", "requests", "sequences"
    );
    let mut seen = std::collections::HashSet::new();
    for t in expanded.groups.iter().flat_map(|g| &g.trials) {
        let key = (
            t.method.clone(),
            t.spec.cr.map(f64::to_bits),
            t.spec.width,
            t.spec.max_tokens,
        );
        if !seen.insert(key) {
            continue;
        }
        // The DMS window changes no bound; any valid one resolves.
        let dms = DmsParams {
            window: 1,
            shifted: false,
        };
        let Ok(policy) = t.spec.policy.resolve(Some(dms)) else {
            continue;
        };
        // Dense and DMS keep K/V in the device's dtype; the policies the
        // host serves, in f32.
        let Ok(store) = KvStore::with_resolved_policy(probe, policy).and_then(|st| {
            let dtype = if KvStore::device_served(st.policy()) {
                kv_dtype
            } else {
                crate::kv::KvDtype::F32
            };
            st.with_kv_dtype(dtype)
        }) else {
            continue;
        };
        let req = Request {
            prompt: vec![0; PLAN_PROMPT_TOKENS],
            samples: t.spec.width,
            first_sample: 0,
            max_tokens: t.spec.max_tokens,
            sampling: SamplingParams {
                temperature: 1.0,
                top_p: 1.0,
                top_k: 0,
                seed: 0,
            },
            stop: StopCriteria::default(),
        };
        let is_dms = store.policy().needs_decisions();
        let bytes = if is_dms {
            let rate = t.spec.cr.map_or(1.0, |cr| 1.0 / cr);
            dms_guess(&store, &req, rate).min(request_bound(&store, &req))
        } else {
            request_bound(&store, &req)
        };
        let w = t.spec.width.max(1);
        let figure = if shape.is_some() {
            bytes
        } else {
            bytes / store.entry_bytes()
        };
        let by_sequences = (engine.max_sequences.max(1) / w).max(1);
        let fit = match (memory, shape) {
            (Some(m), Some(_)) => Some(((m / bytes.max(1)) as usize).min(by_sequences).max(1)),
            (None, _) => Some(by_sequences),
            (Some(_), None) => None,
        };
        let _ = writeln!(
            s,
            "  {:<10} {:>5} {:>4} {:>6}  {:>11} {unit:<2} {:>11} {unit:<2}  {:>8} {:>9}{}",
            t.method,
            t.spec.cr.map_or("-".to_string(), |c| c.to_string()),
            t.spec.width,
            t.spec.max_tokens,
            figure,
            figure.div_ceil(w as u64),
            fit.map_or("?".to_string(), |n| n.to_string()),
            fit.map_or("?".to_string(), |n| (n * w).to_string()),
            if is_dms {
                "  (guess at 1/CR; measured rate at run time, preempted when wrong)"
            } else {
                ""
            }
        );
    }
    s
}
