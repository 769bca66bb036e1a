//! [`run`]: `hyperscale sweep CONFIG` with the real stages behind the
//! sweep's boundary traits.

use std::path::Path;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

use super::remote::{PromptModel, RemoteCatalog, RemoteGenerator, RemoteRenderer};
use super::{
    ChatRenderer, FileCatalog, ModelCache, ModelGenerator, TaskGrader, TaskRegistry, WiringError,
};
use crate::device::DeviceKind;
use crate::grade::SandboxConfig;
use crate::sweep::config::BackendKind;
use crate::sweep::{
    Backend, ConfigError, Dtype, Plan, RunSummary, SweepConfig, SweepDeps, SweepError,
    SweepOptions, run_sweep,
};

/// Run, resume or `--dry-run` the sweep of `config_path` on the real model,
/// tasks and graders. Nothing is loaded for a dry run but the tasks' data
/// (and each model file is hashed).
pub fn run(config_path: &Path, options: &SweepOptions) -> Result<RunSummary, SweepError> {
    if let Some(config) = parsed(config_path)
        && config.model.backend == BackendKind::Openai
    {
        return run_remote(config_path, &config, options);
    }
    let tasks = Arc::new(TaskRegistry::default());
    let models = Rc::new(ModelCache::default());
    let mut renderer = ChatRenderer::new(models.clone(), tasks.clone());
    let mut generator = ModelGenerator::new(models, configured_device(config_path));
    let grader = Arc::new(TaskGrader::new(tasks.clone(), sandbox_config(options)));
    run_sweep(
        config_path,
        options,
        SweepDeps {
            catalog: &FileCatalog,
            tasks: &*tasks,
            renderer: &mut renderer,
            generator: &mut generator,
            grader,
        },
    )
}

/// The sweep with generation on an OpenAI-compatible server.
fn run_remote(
    config_path: &Path,
    config: &SweepConfig,
    options: &SweepOptions,
) -> Result<RunSummary, SweepError> {
    let file = config_path.display().to_string();
    let plan = Plan::from_config(config, &file, &options.filters)?;
    let Backend::OpenAi(spec) = plan.model.backend.clone() else {
        unreachable!("called for backend = \"openai\" only")
    };
    let setup = |e: WiringError| {
        SweepError::Config(ConfigError {
            file: file.clone(),
            key: "model".into(),
            message: e.to_string(),
        })
    };
    let model = Arc::new(PromptModel::load(Path::new(&plan.model.path)).map_err(setup)?);
    let bytes = match plan.model.dtype {
        Dtype::F32 | Dtype::Quantized | Dtype::Q8Act => 4,
        Dtype::F16 | Dtype::Bf16 => 2,
    };
    let tasks = Arc::new(TaskRegistry::default());
    let mut renderer = RemoteRenderer::new(model.clone(), tasks.clone());
    let mut generator = RemoteGenerator::new(spec.clone(), model, bytes).map_err(setup)?;
    let grader = Arc::new(TaskGrader::new(tasks.clone(), sandbox_config(options)));
    run_sweep(
        config_path,
        options,
        SweepDeps {
            catalog: &RemoteCatalog { spec },
            tasks: &*tasks,
            renderer: &mut renderer,
            generator: &mut generator,
            grader,
        },
    )
}

fn parsed(config_path: &Path) -> Option<SweepConfig> {
    let text = std::fs::read_to_string(config_path).ok()?;
    SweepConfig::parse(&text, "").ok()
}

/// `model.device` of the config, for records; `cpu` when the file does not
/// parse ([`run_sweep`] then reports why).
fn configured_device(config_path: &Path) -> DeviceKind {
    std::fs::read_to_string(config_path)
        .ok()
        .and_then(|text| SweepConfig::parse(&text, "").ok())
        .and_then(|c| DeviceKind::from_str(&c.model.device).ok())
        .unwrap_or(DeviceKind::Cpu)
}

/// The sandbox of a sweep: `--unsafe-no-sandbox` allows unisolated runs.
fn sandbox_config(options: &SweepOptions) -> SandboxConfig {
    SandboxConfig {
        allow_unsandboxed: options.unsafe_no_sandbox,
        ..SandboxConfig::default()
    }
}
