//! [`run`]: `hyperscale sweep CONFIG` with the real stages behind the
//! sweep's boundary traits.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::remote::{PromptModel, RemoteCatalog, RemoteGenerator, RemoteRenderer};
use super::{
    ChatRenderer, FileCatalog, ModelCache, ModelGenerator, TaskGrader, TaskRegistry, WiringError,
};
use crate::grade::SandboxConfig;
use crate::sweep::{
    Backend, ConfigError, Dtype, Plan, RemoteSpec, RunSummary, SweepConfig, SweepDeps, SweepError,
    SweepOptions, run_plan,
};

/// Run, resume or `--dry-run` the sweep of `config_path` on the real model,
/// tasks and graders: the config is read once ([`SweepConfig::load`]),
/// validated into a [`Plan`], and the plan run. Nothing is loaded for a dry
/// run but the tasks' data (and each model file is hashed).
pub fn run(config_path: &Path, options: &SweepOptions) -> Result<RunSummary, SweepError> {
    let config = SweepConfig::load(config_path)?;
    let file = config_path.display().to_string();
    let plan = Plan::from_config(&config, &file, &options.filters)?;
    if let Backend::OpenAi(spec) = &plan.model.backend {
        let spec = spec.clone();
        return run_remote(&plan, &file, spec, options);
    }
    let tasks = Arc::new(TaskRegistry::default());
    let models = Rc::new(ModelCache::default());
    let mut renderer = ChatRenderer::new(models.clone(), tasks.clone());
    let mut generator = ModelGenerator::new(models, plan.model.device);
    let grader = Arc::new(TaskGrader::new(tasks.clone(), sandbox_config(options)));
    run_plan(
        &plan,
        &file,
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
    plan: &Plan,
    file: &str,
    spec: RemoteSpec,
    options: &SweepOptions,
) -> Result<RunSummary, SweepError> {
    let setup = |e: WiringError| {
        SweepError::Config(ConfigError {
            file: file.to_string(),
            key: "model".into(),
            message: crate::error_chain(&e),
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
    run_plan(
        plan,
        file,
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

/// The sandbox of a sweep: `--unsafe-no-sandbox` allows unisolated runs.
fn sandbox_config(options: &SweepOptions) -> SandboxConfig {
    SandboxConfig {
        allow_unsandboxed: options.unsafe_no_sandbox,
        ..SandboxConfig::default()
    }
}
