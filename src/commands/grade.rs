//! `hyperscale grade`: saved completions graded again, without a model.

use std::collections::HashMap;

use crate::cli::GradeArgs;
use crate::grade::{Grader, Regrade, Sandbox, SandboxConfig};
use crate::prompt::template::answer_region;
use crate::report::{BootstrapConfig, GradeFormat, grade_report_with};
use crate::task::{Problem, SampleCtx, cli as task_cli};

use super::{CommandError, inputs::load_options};

/// Runs `grade`: per-problem verdicts and the estimators, as a table or
/// (`--json`) JSON.
pub fn grade(args: &GradeArgs) -> Result<String, CommandError> {
    let task = task_cli::resolve(&args.task)?;
    let report = task.load_problems(&load_options(&args.data))?;
    let region = args.region.unwrap_or(task.answer_region);
    let problems: HashMap<&str, &Problem> =
        report.problems.iter().map(|p| (p.id.as_str(), p)).collect();
    // Each sample against its own repeat's rendering (GPQA choice order).
    let expected = |id: &str, repeat: u32, _sample: u64| {
        problems
            .get(id)
            .and_then(|p| task.render(p, SampleCtx { repeat }).ok())
            .map(|r| r.expected)
    };
    let grader = Grader::for_task(&task.grader);
    let sandbox = match grader {
        Grader::Code { .. } => Some(Sandbox::new(SandboxConfig {
            allow_unsandboxed: args.unsafe_no_sandbox,
            ..SandboxConfig::default()
        })?),
        _ => None,
    };
    let regrade = Regrade {
        grader: &grader,
        sandbox: sandbox.as_ref(),
        expected: &expected,
        default_repeat: args.repeat,
        answer_region: &|text| answer_region(text, region),
    };
    let format = if args.json {
        GradeFormat::Json
    } else {
        GradeFormat::Text
    };
    Ok(grade_report_with(
        &args.completions,
        &regrade,
        format,
        &BootstrapConfig::default(),
        args.vote.into(),
    )?)
}
