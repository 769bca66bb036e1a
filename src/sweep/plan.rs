//! The config as run: [`SweepConfig`] validated into a typed [`Plan`], with
//! the command line's work filters applied. Impossible combinations are
//! one-line [`ConfigError`]s naming the key.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::backend::{Backend, backend_plan};
use super::config::{BackendKind, SweepConfig};
use super::methods::{check_cr, distinct, method_plan, positive_list};
use crate::device::DeviceKind;
use crate::generate::check_sampling;
use crate::kv::CachePolicy;
use crate::prompt::template::RegionMode;

/// The form of the model's projection weights (`model.dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    /// f32 weights (a GGUF's quantized blocks dequantized once at load).
    F32,
    F16,
    Bf16,
    /// A GGUF's Q4_0/Q4_1/Q8_0 blocks as stored, read by CPU decode steps:
    /// the logits of [`Dtype::F32`] bit for bit with 4–7× fewer bytes per
    /// step (prefill, other formats and GPUs use f32). Same name as
    /// `--decode-weights quantized`.
    Quantized,
    /// The blocks of [`Dtype::Quantized`] with 8-bit activations and
    /// integer dot products (`--decode-weights q8act`): its own numerics.
    #[serde(rename = "q8act")]
    Q8Act,
}

impl Dtype {
    /// The arithmetic the weights give: `quantized` blocks compute f32's
    /// logits bit for bit, so their numerics are `f32`.
    pub fn numerics(self) -> Dtype {
        match self {
            Dtype::Quantized => Dtype::F32,
            other => other,
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
            Dtype::Quantized => "quantized",
            Dtype::Q8Act => "q8act",
        })
    }
}

/// Which model a trial runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Checkpoint {
    /// `model.path`.
    Base,
    /// `model.dms[i]`.
    Dms(usize),
}

/// Work filters from the command line: they select work, the run stays the
/// same (a later unfiltered session resumes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Keep only these task names.
    pub tasks: Option<Vec<String>>,
    /// Keep only methods with these names or policies.
    pub methods: Option<Vec<String>>,
    /// At most this many problems per task.
    pub limit: Option<usize>,
}

impl Filters {
    /// `--tasks a,b --methods c --limit 2`, or `None` without filters.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(t) = &self.tasks {
            parts.push(format!("--tasks {}", t.join(",")));
        }
        if let Some(m) = &self.methods {
            parts.push(format!("--methods {}", m.join(",")));
        }
        if let Some(l) = self.limit {
            parts.push(format!("--limit {l}"));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// A validated sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub run_name: String,
    pub results_dir: PathBuf,
    pub save_text: bool,
    pub model: ModelPlan,
    /// All configured tasks (identities need every one).
    pub tasks: Vec<TaskPlan>,
    pub sampling: SamplingPlan,
    /// Methods selected by the filters, in config order.
    pub methods: Vec<MethodPlan>,
    /// Ascending.
    pub widths: Vec<usize>,
    pub lengths: Vec<usize>,
    pub repeats: u32,
    pub nested_widths: bool,
    /// `[engine] max_sequences`, validated ≥ 1; `None`: not set.
    pub max_sequences: Option<usize>,
    /// `[engine] kv_memory` in bytes; `None`: not set.
    pub kv_memory: Option<u64>,
    /// `[engine] prefill_chunk`, validated ≥ 1; `None`: not set.
    pub prefill_chunk: Option<usize>,
    /// The config as parsed, defaults filled in, unfiltered (for the manifest).
    pub resolved_config: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    /// The model files (for `openai`: its tokenizer and chat template).
    pub path: String,
    pub backend: Backend,
    pub device: DeviceKind,
    pub dtype: Dtype,
    pub dms: Vec<DmsCheckpoint>,
}

impl ModelPlan {
    /// The path of a checkpoint.
    pub fn path_of(&self, c: Checkpoint) -> &str {
        match c {
            Checkpoint::Base => &self.path,
            Checkpoint::Dms(i) => &self.dms[i].path,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DmsCheckpoint {
    pub cr: f64,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskPlan {
    pub name: String,
    pub data: Option<String>,
    /// Effective limit: the config's and `--limit`, the smaller.
    pub limit: Option<usize>,
    pub problems: Option<Vec<String>>,
    /// Overrides the task's answer region.
    pub answer_region: Option<RegionMode>,
    /// False when `--tasks` leaves this task out.
    pub selected: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingPlan {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub seeds: Vec<u64>,
}

/// One configured method and the policies it expands to (one per CR).
#[derive(Debug, Clone, PartialEq)]
pub struct MethodPlan {
    pub name: String,
    pub variants: Vec<MethodVariant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MethodVariant {
    pub policy: CachePolicy,
    /// Target CR (`None` for dense).
    pub cr: Option<f64>,
    pub checkpoint: Checkpoint,
}

impl Plan {
    /// Validate `config` (read from `file`, whose stem names the run by
    /// default) and apply `filters`.
    pub fn from_config(
        config: &SweepConfig,
        file: &str,
        filters: &Filters,
    ) -> Result<Plan, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: file.to_string(),
            key: key.to_string(),
            message,
        };
        let run_name = match &config.run.name {
            Some(n) => n.clone(),
            None => std::path::Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("run")
                .to_string(),
        };
        if run_name.is_empty() || run_name.starts_with('.') || run_name.contains(['/', '\\']) {
            return Err(err(
                "run.name",
                format!("`{run_name}` is not a directory name (no `/`, no leading `.`)"),
            ));
        }

        let m = &config.model;
        if m.path.trim().is_empty() {
            return Err(err("model.path", "must not be empty".into()));
        }
        let device =
            DeviceKind::from_str(&m.device).map_err(|e| err("model.device", e.to_string()))?;
        let dtype = match m.dtype.as_str() {
            "f32" => Dtype::F32,
            "f16" => Dtype::F16,
            "bf16" => Dtype::Bf16,
            "quantized" => Dtype::Quantized,
            "q8act" => Dtype::Q8Act,
            other => {
                return Err(err(
                    "model.dtype",
                    format!(
                        "unknown dtype `{other}` (expected f32, bf16, f16, quantized or q8act)"
                    ),
                ));
            }
        };
        // The weight forms `--decode-weights` takes on the device; what
        // only a probe can tell (shader-f16, compute capability) is
        // refused when the model loads.
        if config.model.backend == BackendKind::Local
            && device == DeviceKind::Wgpu
            && dtype == Dtype::Bf16
        {
            return Err(err(
                "model.dtype",
                "`bf16` on wgpu: WGSL has no bf16; use `f16` (half-precision projections, as on CUDA in bf16) or `f32`".into(),
            ));
        }
        let mut dms = Vec::new();
        for (i, d) in m.dms.iter().enumerate() {
            check_cr(d.cr).map_err(|msg| err(&format!("model.dms[{i}].cr"), msg))?;
            if d.path.trim().is_empty() {
                return Err(err(
                    &format!("model.dms[{i}].path"),
                    "must not be empty".into(),
                ));
            }
            if let Some(j) = dms.iter().position(|x: &DmsCheckpoint| x.cr == d.cr) {
                return Err(err(
                    &format!("model.dms[{i}].cr"),
                    format!("cr {} is already model.dms[{j}]", d.cr),
                ));
            }
            dms.push(DmsCheckpoint {
                cr: d.cr,
                path: d.path.clone(),
            });
        }

        if config.tasks.is_empty() {
            return Err(err(
                "tasks",
                "at least one [[tasks]] entry is needed".into(),
            ));
        }
        let mut tasks: Vec<TaskPlan> = Vec::new();
        for (i, t) in config.tasks.iter().enumerate() {
            let key = |f: &str| format!("tasks[{i}].{f}");
            if t.name.trim().is_empty() {
                return Err(err(&key("name"), "must not be empty".into()));
            }
            if tasks.iter().any(|x| x.name == t.name) {
                return Err(err(
                    &key("name"),
                    format!("task `{}` is listed twice", t.name),
                ));
            }
            if t.limit == Some(0) {
                return Err(err(&key("limit"), "must be at least 1".into()));
            }
            if let Some(ids) = &t.problems {
                if ids.is_empty() {
                    return Err(err(
                        &key("problems"),
                        "must not be empty (omit it for all)".into(),
                    ));
                }
                if let Some(dup) = ids
                    .iter()
                    .enumerate()
                    .find(|(j, id)| ids[..*j].contains(id))
                {
                    return Err(err(
                        &key("problems"),
                        format!("`{}` is listed twice", dup.1),
                    ));
                }
            }
            tasks.push(TaskPlan {
                name: t.name.clone(),
                data: t.data.clone(),
                limit: match (t.limit, filters.limit) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                problems: t.problems.clone(),
                answer_region: t.answer_region,
                selected: true,
            });
        }

        let s = &config.sampling;
        check_sampling(f64::from(s.temperature), f64::from(s.top_p))
            .map_err(|e| err(&format!("sampling.{}", e.param()), e.to_string()))?;
        if s.seeds.is_empty() {
            return Err(err("sampling.seeds", "at least one seed is needed".into()));
        }
        distinct(&s.seeds).map_err(|m| err("sampling.seeds", m))?;

        let g = &config.grid;
        let widths = positive_list(&g.widths, "width")
            .map_err(|(k, m)| err(&format!("grid.widths{k}"), m))?;
        let lengths = positive_list(&g.lengths, "length")
            .map_err(|(k, m)| err(&format!("grid.lengths{k}"), m))?;
        if widths.iter().any(|&w| w > u32::MAX as usize) {
            return Err(err("grid.widths", "widths must fit in 32 bits".into()));
        }
        if g.repeats == 0 || g.repeats > u32::MAX as usize {
            return Err(err("grid.repeats", "must be at least 1".into()));
        }
        for (i, &cr) in g.cr.iter().enumerate() {
            check_cr(cr).map_err(|m| err(&format!("grid.cr[{i}]"), m))?;
        }
        distinct(&g.cr).map_err(|m| err("grid.cr", m))?;
        if g.methods.is_empty() {
            return Err(err(
                "grid.methods",
                "at least one [[grid.methods]] entry is needed".into(),
            ));
        }

        let mut methods: Vec<(usize, MethodPlan)> = Vec::new();
        for (i, section) in g.methods.iter().enumerate() {
            let plan = method_plan(section, &g.cr, &dms, &format!("grid.methods[{i}]"))
                .map_err(|(k, m)| err(&k, m))?;
            if let Some((j, _)) = methods.iter().find(|(_, p)| p.name == plan.name) {
                return Err(err(
                    &format!("grid.methods[{i}].name"),
                    format!(
                        "method name `{}` is already grid.methods[{j}]; set a distinct name",
                        plan.name
                    ),
                ));
            }
            for (j, other) in &methods {
                let same = other
                    .variants
                    .iter()
                    .any(|a| plan.variants.iter().any(|b| a == b));
                if same {
                    return Err(err(
                        &format!("grid.methods[{i}]"),
                        format!(
                            "runs the same policy as grid.methods[{j}] (`{}`)",
                            other.name
                        ),
                    ));
                }
            }
            methods.push((i, plan));
        }
        let mut methods: Vec<MethodPlan> = methods.into_iter().map(|(_, p)| p).collect();

        let cli = |key: &str, message: String| ConfigError {
            file: "command line".into(),
            key: key.into(),
            message,
        };
        if let Some(names) = &filters.tasks {
            for n in names {
                if !tasks.iter().any(|t| &t.name == n) {
                    let have: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
                    return Err(cli(
                        "--tasks",
                        format!("no task `{n}` in {file} (have: {})", have.join(", ")),
                    ));
                }
            }
            for t in &mut tasks {
                t.selected = names.contains(&t.name);
            }
        }
        if let Some(names) = &filters.methods {
            for n in names {
                let known = methods
                    .iter()
                    .any(|m| &m.name == n || m.variants.iter().any(|v| v.policy.method() == n));
                if !known {
                    let have: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
                    return Err(cli(
                        "--methods",
                        format!("no method `{n}` in {file} (have: {})", have.join(", ")),
                    ));
                }
            }
            methods.retain(|m| {
                names.contains(&m.name)
                    || m.variants
                        .iter()
                        .any(|v| names.iter().any(|n| n == v.policy.method()))
            });
        }
        if filters.limit == Some(0) {
            return Err(cli("--limit", "must be at least 1".into()));
        }

        let backend = backend_plan(m, &g.methods, file)?;
        if config.engine.max_sequences == Some(0) {
            return Err(err("engine.max_sequences", "must be at least 1".into()));
        }
        if config.engine.prefill_chunk == Some(0) {
            return Err(err("engine.prefill_chunk", "must be at least 1".into()));
        }
        let kv_memory = match &config.engine.kv_memory {
            Some(text) => Some(
                crate::bench::throughput::parse_bytes(text)
                    .map_err(|message| err("engine.kv_memory", message))?,
            ),
            None => None,
        };
        let resolved_config =
            serde_json::to_value(config).map_err(|e| err("(top level)", e.to_string()))?;
        Ok(Plan {
            run_name,
            results_dir: PathBuf::from(&config.run.results_dir),
            save_text: config.run.save_text,
            model: ModelPlan {
                path: m.path.clone(),
                backend,
                device,
                dtype,
                dms,
            },
            tasks,
            sampling: SamplingPlan {
                temperature: s.temperature,
                top_p: s.top_p,
                top_k: s.top_k,
                seeds: s.seeds.clone(),
            },
            methods,
            widths,
            lengths,
            repeats: g.repeats as u32,
            nested_widths: g.nested_widths,
            max_sequences: config.engine.max_sequences,
            kv_memory,
            prefill_chunk: config.engine.prefill_chunk,
            resolved_config,
        })
    }
}
