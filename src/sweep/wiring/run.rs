//! [`run`]: `hyperscale sweep CONFIG` with the real stages behind the
//! sweep's boundary traits.

use std::path::Path;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

use super::{ChatRenderer, FileCatalog, ModelCache, ModelGenerator, TaskGrader, TaskRegistry};
use crate::device::DeviceKind;
use crate::grade::SandboxConfig;
use crate::sweep::{RunSummary, SweepConfig, SweepDeps, SweepError, SweepOptions, run_sweep};

/// Run, resume or `--dry-run` the sweep of `config_path` on the real model,
/// tasks and graders. Nothing is loaded for a dry run but the tasks' data
/// (and each model file is hashed).
pub fn run(config_path: &Path, options: &SweepOptions) -> Result<RunSummary, SweepError> {
    let tasks = Arc::new(TaskRegistry::default());
    let models = Rc::new(ModelCache::default());
    let mut renderer = ChatRenderer::new(models.clone(), tasks.clone());
    let mut generator = ModelGenerator::new(models, configured_device(config_path));
    let grader = Arc::new(TaskGrader::new(tasks.clone(), SandboxConfig::default()));
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

/// `model.device` of the config, for records; `cpu` when the file does not
/// parse ([`run_sweep`] then reports why).
fn configured_device(config_path: &Path) -> DeviceKind {
    std::fs::read_to_string(config_path)
        .ok()
        .and_then(|text| SweepConfig::parse(&text, "").ok())
        .and_then(|c| DeviceKind::from_str(&c.model.device).ok())
        .unwrap_or(DeviceKind::Cpu)
}
